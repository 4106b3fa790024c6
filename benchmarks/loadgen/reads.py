"""Read-side measurements on the same data in each system: one metric's full history, a 1,000-point view
of a long series, and a runs search with a metric filter. Seeding happens first and is not timed."""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

import httpx

from .systems import System

__all__ = ["seed_runs", "seed_series", "time_history", "time_search", "timed_ms"]


def timed_ms(fn: Callable[[], Any], calls: int) -> dict[str, float]:
    fn()  # warm-up
    ms = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        ms.append((time.perf_counter() - t0) * 1000)
    ms.sort()
    return {"median_ms": round(statistics.median(ms), 2), "p95_ms": round(ms[min(len(ms) - 1, int(len(ms) * 0.95))], 2)}


def _value(step: int) -> float:
    return 1000.0 if step % 99_991 == 77_777 else math.sin(step / 1000)


def seed_series(system: System, points: int) -> str:
    """One run with metric ``series`` of ``points`` steps (a spike every ~100k steps); returns the run id."""
    if system.kind == "runledger":
        import producer

        with producer.start_run("bench-history", tracking_uri=system.tracking_uri,
                                spill_dir=tempfile.mkdtemp(prefix="rl-bench-")) as run:
            for step in range(points):
                run.log_metrics({"series": _value(step)}, step=step)
        return run.run_id
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(system.tracking_uri)
    ml_run_id = client.create_run(client.create_experiment("bench-history")).info.run_id
    now = int(time.time() * 1000)
    for start in range(0, points, 1000):
        client.log_batch(ml_run_id, metrics=[Metric("series", _value(s), now, s)
                                             for s in range(start, min(points, start + 1000))])
    return ml_run_id


def time_history(system: System, run_id: str, points: int, calls: int) -> dict[str, Any]:
    """Full history of ``series`` and a 1,000-point downsampled view of it (runledger: ``max_points``;
    MLflow: ``get-history-bulk-interval`` with ``max_results=1000``, its UI's sampled read)."""
    if system.kind == "runledger":
        with httpx.Client(base_url=system.query_url, timeout=120) as c:
            def full() -> None:
                assert len(c.get(f"/api/v1/runs/{run_id}/metrics/series").json()["values"]) == points

            def down() -> None:
                vals = c.get(f"/api/v1/runs/{run_id}/metrics/series", params={"max_points": 1000}).json()["values"]
                assert len(vals) <= 1000

            return {"full": timed_ms(full, calls), "downsampled": timed_ms(down, calls)}
    from mlflow import MlflowClient

    client = MlflowClient(system.tracking_uri)
    with httpx.Client(base_url=system.query_url, timeout=300) as c:
        def full_ml() -> None:
            assert len(client.get_metric_history(run_id, "series")) == points

        def down_ml() -> None:
            r = c.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                      params={"run_ids": run_id, "metric_key": "series", "max_results": 1000})
            r.raise_for_status()
            assert 0 < len(r.json()["metrics"]) <= 1000

        return {"full": timed_ms(full_ml, max(3, calls // 4)), "downsampled": timed_ms(down_ml, calls)}


def seed_runs(system: System, runs: int) -> str:
    """``runs`` runs, each with params and one ``loss`` value in [0, 1); returns the experiment id."""
    if system.kind == "runledger":
        import producer
        from producer.ids import experiment_id_for

        p = producer.get_producer(system.tracking_uri, spill_dir=tempfile.mkdtemp(prefix="rl-bench-"))
        for i in range(runs):
            run = producer.start_run("bench-search", run_name=f"r{i}", tracking_uri=system.tracking_uri)
            run.log_params({"lr": i % 7, "seed": i})
            run.log_metrics({"loss": (i * 7919 % runs) / runs}, step=0)
        p.flush(timeout_s=300)  # the runs stay RUNNING; finishing each would flush once per run
        return experiment_id_for("bench-search")
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(system.tracking_uri)
    eid = client.create_experiment("bench-search")
    now = int(time.time() * 1000)
    for i in range(runs):
        r = client.create_run(eid, run_name=f"r{i}")
        client.log_batch(r.info.run_id, metrics=[Metric("loss", (i * 7919 % runs) / runs, now, 0)],
                         params=[Param("lr", str(i % 7)), Param("seed", str(i))])
    return eid


def time_search(system: System, experiment_id: str, runs: int, calls: int) -> dict[str, Any]:
    """Search with ``metrics.loss < 0.01`` over the experiment's runs; checks the number found."""
    expected = sum(1 for i in range(runs) if (i * 7919 % runs) / runs < 0.01)
    if system.kind == "runledger":
        with httpx.Client(base_url=system.query_url, timeout=120) as c:
            def search() -> None:
                got = c.get(f"/api/v1/experiments/{experiment_id}/runs",
                            params={"filter": "metrics.loss < 0.01", "max_results": 1000}).json()["runs"]
                assert len(got) == expected, (len(got), expected)

            return timed_ms(search, calls)
    from mlflow import MlflowClient

    client = MlflowClient(system.tracking_uri)

    def search_ml() -> None:
        assert len(client.search_runs([experiment_id], "metrics.loss < 0.01", max_results=1000)) == expected

    return timed_ms(search_ml, calls)
