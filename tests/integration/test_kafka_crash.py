"""Exactly-once effects from at-least-once delivery: SIGKILL the ingest worker again and again.

Two producer processes stream 200,000 points into Kafka (Tansu) for ~25 s.
Meanwhile ``runledger ingest`` (chDB) is SIGKILLed at random moments after it
got its partitions, and restarted, at least six times (at least three of them
while it was writing; up to twelve while the producers still stream — on a
loaded machine they may outlast the kills, and the last worker goes on). Then
``runledger serve --kafka ... --ingest`` opens the same folder, its worker
(same group) drains the rest, and every count, latest value, min/max and full
history must be exactly what the producers logged: nothing lost, nothing
doubled, although batches were written and not committed, half-fetched, or
re-read after every kill. The random seed is printed (set RUNLEDGER_CRASH_SEED
to replay a schedule).
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_broker import (
    BROKERS,
    Broker,
    IngestProcess,
    eventually_exact,
    finish_job,
    kafka_uri,
    open_broker,
    prometheus_value,
    server_env,
    start_job,
    worker_args,
)
from servers import ServerProcess

pytestmark = pytest.mark.integration

TOPIC = "crash"
RUNS, KEYS, STEPS = 2, 10, 5000  # per producer process; two processes: 200,000 points


@pytest.fixture(scope="module", params=BROKERS)
def kafka_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from open_broker(request.param, tmp_path_factory)


def _wait_assigned(worker: IngestProcess, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if prometheus_value(worker.metrics(), "runledger_ingest_assigned_partitions") > 0:
            return
        time.sleep(0.05)


@pytest.mark.timeout(240)
def test_sigkilled_worker_restarted_six_times_leaves_every_query_exact(kafka_broker: Broker,
                                                                       tmp_path: Path) -> None:
    seed = int(os.environ.get("RUNLEDGER_CRASH_SEED", time.time_ns() % 1_000_000))
    print(f"crash schedule seed: {seed}")
    rng = random.Random(seed)
    data = tmp_path / "data"
    uri = kafka_uri(kafka_broker, topic=TOPIC)

    def worker() -> IngestProcess:
        return IngestProcess(data, kafka_broker.bootstrap, TOPIC, worker_args(kafka_broker)).start()

    current = worker()  # creates the topic before the producers send
    jobs = [start_job(uri, f"crash-{p}", RUNS, KEYS, STEPS, tmp_path / f"spill{p}", "--slow-ms", "250")
            for p in range(2)]
    kills: list[tuple[float, float]] = []  # (seconds after assignment, points this incarnation had written)

    def more_kills() -> bool:
        """At least 6 kills, 3 of them mid-write; and more while the producers stream (at most 12 then)."""
        mid_write = sum(1 for _, w in kills if w > 0)
        return len(kills) < 6 or mid_write < 3 or (any(j.poll() is None for j in jobs) and len(kills) < 12)

    try:
        while more_kills():
            assert len(kills) < 20, "the workers never got to write between kills"
            _wait_assigned(current, 15)
            delay_s = rng.uniform(0.0, 2.0)
            time.sleep(delay_s)
            written = prometheus_value(current.metrics(), "runledger_ingest_points_total")
            assert current.stop(signal.SIGKILL) == -signal.SIGKILL
            kills.append((round(delay_s, 2), written))
            current = worker()
        results = [finish_job(j, timeout_s=150) for j in jobs]  # on a loaded machine: the last worker keeps going
    finally:
        print(f"kills (delay after assignment s, points written by that incarnation): {kills}")
        current.stop(signal.SIGKILL)
        for j in jobs:
            if j.poll() is None:
                j.kill()
    assert len(kills) >= 6 and all(r["flushed"] for r in results)

    server = ServerProcess(data, ["--kafka", kafka_broker.bootstrap, "--ingest"],
                           env=server_env(kafka_broker, TOPIC)).start()
    try:
        with server.client() as c:
            for p in range(2):
                eventually_exact(c, f"crash-{p}", RUNS, KEYS, STEPS, 90)
            dead = c.get("/api/v1/dead-letters").json()["dead_letters"]
            assert [d for d in dead if d["origin"] == "kafka"] == []
    finally:
        server.stop()
