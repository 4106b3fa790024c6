"""The systems under test, started by the benchmark itself: runledger embedded, runledger over Kafka
(a Tansu broker), and a stock ``mlflow server`` on SQLite. Each says how a rank logs to it and counts the
points a query can see."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Protocol

import httpx

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from kafka_broker import TansuBroker, kafka_uri, server_env
from servers import ServerProcess, free_port, wait_http

from .postgres import Postgres, unavailable_reason

__all__ = ["MlflowServer", "RunledgerEmbedded", "RunledgerKafka", "System", "mlflow_backend", "tree_peak_rss_mb"]


class System(Protocol):
    name: str
    kind: str
    """'runledger' or 'mlflow'."""

    @property
    def tracking_uri(self) -> str: ...
    @property
    def query_url(self) -> str: ...
    def start(self) -> System: ...
    def stop(self) -> None: ...
    def server_pid(self) -> int: ...


def tree_peak_rss_mb(pid: int) -> float:
    """Sum of the peak RSS (VmHWM) of ``pid`` and its descendants, in MiB (Linux /proc)."""
    total_kb, todo, seen = 0, [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total_kb += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))
            for task in Path(f"/proc/{p}/task").iterdir():
                children = (task / "children").read_text().split()
                todo.extend(int(c) for c in children)
        except (OSError, StopIteration, ValueError):
            continue
    return total_kb / 1024


class RunledgerEmbedded:
    name, kind = "runledger embedded", "runledger"

    def __init__(self, workdir: Path) -> None:
        self.server = ServerProcess(workdir / "rl-embedded")

    @property
    def tracking_uri(self) -> str:
        return self.server.url

    @property
    def query_url(self) -> str:
        return self.server.url

    def start(self) -> RunledgerEmbedded:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def server_pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid


class RunledgerKafka:
    name, kind = "runledger kafka", "runledger"

    def __init__(self, workdir: Path, partitions: int = 8) -> None:
        self.broker = TansuBroker(workdir / "tansu.log")
        self.partitions = partitions
        self.server: ServerProcess | None = None
        self.workdir = workdir

    @property
    def tracking_uri(self) -> str:
        return kafka_uri(self.broker, topic="bench")

    @property
    def query_url(self) -> str:
        assert self.server is not None
        return self.server.url

    def start(self) -> RunledgerKafka:
        self.broker.start()
        self.server = ServerProcess(self.workdir / "rl-kafka", ["--kafka", self.broker.bootstrap, "--ingest"],
                                    env=server_env(self.broker, "bench", self.partitions))
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        self.broker.stop()

    def server_pid(self) -> int:
        assert self.server is not None and self.server.proc is not None
        return self.server.proc.pid


def mlflow_backend(requested: str) -> tuple[str, str]:
    """('postgresql' or 'sqlite', why) for ``requested`` in auto/postgresql/sqlite: auto takes PostgreSQL
    where it can run here (DESIGN's MLflow numbers were taken on it), SQLite otherwise."""
    if requested == "sqlite":
        return "sqlite", "asked for"
    reason = unavailable_reason()
    if reason is None:
        return "postgresql", "available"
    if requested == "postgresql":
        raise RuntimeError(f"--mlflow-backend postgresql: {reason}")
    return "sqlite", f"PostgreSQL unavailable: {reason}"


class MlflowServer:
    """``mlflow server`` with a SQLite or PostgreSQL backend store and proxied artifacts in a temporary
    folder. Its own PostgreSQL cluster is started and removed with it."""

    kind = "mlflow"

    def __init__(self, workdir: Path, backend: str = "sqlite", name: str = "mlflow") -> None:
        self.name = name
        self.backend = backend
        self.dir = workdir / f"mlflow-server-{backend}"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.postgres: Postgres | None = None

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    query_url = tracking_uri

    def start(self, timeout_s: float = 120.0) -> MlflowServer:
        self.dir.mkdir(parents=True, exist_ok=True)
        mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
        store = f"sqlite:///{self.dir / 'mlflow.db'}"
        if self.backend == "postgresql":
            self.postgres = Postgres().start()
            store = self.postgres.sqlalchemy_uri
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - the handle outlives this block
        self.proc = subprocess.Popen(
            [mlflow_bin, "server", "--backend-store-uri", store,
             "--artifacts-destination", str(self.dir / "artifacts"), "--host", "127.0.0.1", "--port", str(self.port)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wait_http(self.tracking_uri + "/health", timeout_s, self.proc)
        return self

    def stop(self) -> None:
        try:
            if self.proc is not None and self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGTERM)
                try:
                    self.proc.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                    self.proc.wait()
        finally:
            if self.postgres is not None:
                self.postgres.stop()

    def server_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid


def count_points(system: System, runs: dict[str, list[str]]) -> int:
    """Points a query sees now: run id -> its metric keys."""
    if system.kind == "runledger":
        total = 0
        with httpx.Client(base_url=system.query_url, timeout=60) as c:
            for run_id in runs:
                r = c.get(f"/api/v1/runs/{run_id}")
                if r.status_code == 200:
                    total += sum(m["count"] for m in r.json()["metrics"].values())
        return total
    from mlflow import MlflowClient

    client = MlflowClient(system.tracking_uri)
    return sum(len(client.get_metric_history(run_id, key)) for run_id, keys in runs.items() for key in keys)


def wait_visible(system: System, runs: dict[str, list[str]], expected: int, timeout_s: float,
                 settle_s: float = 3.0) -> tuple[int, float]:
    """Poll until ``expected`` points are visible (or the count stops growing for ``settle_s``, or time runs
    out): (points seen, wall time when the last of them became visible)."""
    deadline = time.time() + timeout_s
    seen, seen_at, changed_at = -1, time.time(), time.time()
    while True:
        now_seen = count_points(system, runs)
        now = time.time()
        if now_seen != seen:
            seen, seen_at, changed_at = now_seen, now, now
        if seen >= expected or now - changed_at > settle_s or now > deadline:
            return seen, seen_at
        time.sleep(0.05 if system.kind == "runledger" else 0.5)


