"""Two ingest workers in one consumer group share the partitions and hand them over on join and on leave.

Why two folders: with a ClickHouse server both workers would write the same
database, but chDB admits one process per folder, so here each
``runledger ingest`` process writes its own chDB folder. That keeps the test
honest about what the group does: afterwards both folders are read back
through ``runledger serve`` and their union must be exactly what the
producers logged (nothing lost across two rebalances), each worker must have
done part of the work, and — because a revoked worker writes and commits its
batch in flight before letting go — no record may have been processed by
both, unless an offset commit failed (then re-reading it is the designed,
harmless at-least-once path, and the test says so).

Timeline: worker A alone; producers start; worker B joins (rebalance: A
revokes, finishes and commits its batch, the group splits the partitions);
A gets SIGTERM (it drains, commits and leaves; B takes every partition);
producers finish; B drains and stops.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka_broker import (
    BROKERS,
    Broker,
    IngestProcess,
    finish_job,
    kafka_uri,
    open_broker,
    prometheus_value,
    start_job,
    worker_args,
)
from servers import ServerProcess

from producer.ids import experiment_id_for

pytestmark = pytest.mark.integration

TOPIC = "rebalance"
PRODUCERS, RUNS, KEYS, STEPS = 2, 4, 5, 2000  # 80,000 points over 16 runs


@pytest.fixture(scope="module", params=BROKERS)
def kafka_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from open_broker(request.param, tmp_path_factory)


def _assigned(worker: IngestProcess) -> int:
    return int(prometheus_value(worker.metrics(), "runledger_ingest_assigned_partitions"))


def _wait(predicate: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _final_stats(worker: IngestProcess) -> dict[str, int]:
    m = re.search(r"ingest worker stopped: (\d+) records, (\d+) events, (\d+) points, (\d+) dead letters, "
                  r"(\d+) failed commits", worker.logs())
    assert m, worker.logs()[-2000:]
    names = ("records", "events", "points", "dead_letters", "commit_failures")
    return dict(zip(names, map(int, m.groups()), strict=True))


def _points_by_folder(*data_dirs: Path) -> list[dict[tuple[str, str], dict[int, float]]]:
    """Per folder: every (run, key) -> {step: value} it holds, read through ``runledger serve``.

    A run is listed by the folder whose worker ingested its ``run_created``; its
    points may sit in either folder, so every folder is asked for every run.
    """
    servers = [ServerProcess(d).start() for d in data_dirs]
    try:
        clients = [s.client() for s in servers]
        run_ids = {run["run_id"] for c in clients for p in range(PRODUCERS)
                   for run in c.get(f"/api/v1/experiments/{experiment_id_for(f'rebalance-{p}')}/runs").json()["runs"]}
        assert len(run_ids) == PRODUCERS * RUNS
        out: list[dict[tuple[str, str], dict[int, float]]] = []
        for c in clients:
            series: dict[tuple[str, str], dict[int, float]] = {}
            for rid in sorted(run_ids):
                for key in (f"k{i}" for i in range(KEYS)):
                    resp = c.get(f"/api/v1/runs/{rid}/metrics/{key}")
                    if resp.status_code == 404:
                        continue
                    h = resp.json()
                    if h["steps"]:
                        series[(rid, key)] = dict(zip(h["steps"], h["values"], strict=True))
            out.append(series)
            c.close()
        return out
    finally:
        for s in servers:
            s.stop()


@pytest.mark.timeout(180)
def test_two_workers_share_partitions_and_hand_them_over(kafka_broker: Broker, tmp_path: Path) -> None:
    a = IngestProcess(tmp_path / "a" / "data", kafka_broker.bootstrap, TOPIC, worker_args(kafka_broker)).start()
    b = IngestProcess(tmp_path / "b" / "data", kafka_broker.bootstrap, TOPIC, worker_args(kafka_broker))
    jobs = []
    try:
        _wait(lambda: _assigned(a) == 4, 20, "worker A to own all 4 partitions")
        uri = kafka_uri(kafka_broker, topic=TOPIC)
        jobs = [start_job(uri, f"rebalance-{p}", RUNS, KEYS, STEPS, tmp_path / f"s{p}", "--slow-ms", "150")
                for p in range(PRODUCERS)]
        _wait(lambda: prometheus_value(a.metrics(), "runledger_ingest_points_total") > 0, 30, "A to write")
        b.start()
        _wait(lambda: _assigned(b) > 0 and _assigned(a) + _assigned(b) == 4, 30, "the group to split the partitions")
        _wait(lambda: prometheus_value(b.metrics(), "runledger_ingest_points_total") > 0, 30, "B to write")
        assert a.stop(signal.SIGTERM) == 0  # drains, commits, leaves
        _wait(lambda: _assigned(b) == 4, 30, "B to take every partition")
        results = [finish_job(j) for j in jobs]
        assert all(r["flushed"] for r in results)
        idle_since = [time.monotonic(), -1.0]

        def b_idle() -> bool:
            records = prometheus_value(b.metrics(), "runledger_ingest_records_total")
            if records != idle_since[1]:
                idle_since[:] = [time.monotonic(), records]
            return time.monotonic() - idle_since[0] > 2.0

        _wait(b_idle, 60, "B to drain the topic")
        assert b.stop(signal.SIGTERM) == 0
    finally:
        for w in (a, b):
            w.stop(signal.SIGKILL)
        for j in jobs:
            if j.poll() is None:
                j.kill()

    stats_a, stats_b = _final_stats(a), _final_stats(b)
    assert stats_a["points"] > 0 and stats_b["points"] > 0, (stats_a, stats_b)
    series_a, series_b = _points_by_folder(a.data_dir, b.data_dir)
    union: dict[tuple[str, str], dict[int, float]] = {}
    for series in (series_a, series_b):
        for sk, points in series.items():
            merged = union.setdefault(sk, {})
            for step, value in points.items():
                assert merged.setdefault(step, value) == value  # a point written twice is the same point
    assert len(union) == PRODUCERS * RUNS * KEYS
    for (_run, key), points in union.items():
        assert sorted(points) == list(range(STEPS))
        i = int(key[1:])
        offsets = {v - s * 0.5 - i for s, v in points.items()}
        assert len(offsets) == 1 and offsets.pop() in range(RUNS)  # value = step * 0.5 + key + run index
    total = PRODUCERS * RUNS * KEYS * STEPS
    written_twice = stats_a["points"] + stats_b["points"] - total
    print(f"A wrote {stats_a['points']} points, B {stats_b['points']}; processed twice: {written_twice}; "
          f"failed commits: A {stats_a['commit_failures']}, B {stats_b['commit_failures']}")
    assert written_twice >= 0
    if stats_a["commit_failures"] + stats_b["commit_failures"] == 0:
        assert written_twice == 0, "a revoked batch was re-read although every commit succeeded"


def test_health_of_a_worker_is_json(kafka_broker: Broker, tmp_path: Path) -> None:
    w = IngestProcess(tmp_path / "data", kafka_broker.bootstrap, "health-check", worker_args(kafka_broker, 2)).start()
    try:
        h = w.health()
        assert h["status"] == "ok"
        [worker] = h["workers"]  # type: ignore[misc]
        assert worker["topic"] == "health-check" and worker["group"] == "runledger-ingest"
        assert httpx.get(f"http://127.0.0.1:{w.metrics_port}/nope", timeout=5).status_code == 404
    finally:
        assert w.stop(signal.SIGTERM) == 0
