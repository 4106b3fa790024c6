"""R rank processes logging one workload into a system; end-to-end points/s verified by counting.

The clock starts at the first rank's first ``log_metrics`` call and stops
when a query sees every point (or, when some never arrive, when the count
stops growing): points lost are reported, never hidden. If the very first
count after the ranks finished already sees everything, the visibility time
is when the last rank's client returned (its data was readable then).
"""

from __future__ import annotations

import multiprocessing
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .systems import System, count_points, tree_peak_rss_mb, wait_visible
from .workload import Workload, key_names, mlflow_rank, runledger_rank

__all__ = ["JobResult", "run_job"]


@dataclass
class JobResult:
    system: str
    mode: str
    workload: dict[str, Any]
    expected: int
    visible: int
    seconds: float
    call_us_median: float
    call_us_p99: float
    us_per_point: float
    producer_peak_rss_mb: float
    server_peak_rss_mb: float
    errors: list[str]

    @property
    def lost(self) -> int:
        return self.expected - self.visible

    @property
    def points_per_s(self) -> float:
        return self.visible / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "lost": self.lost, "lost_pct": round(100 * self.lost / self.expected, 2),
                "points_per_s": round(self.points_per_s)}


def _create_shared_run(system: System, experiment: str) -> str:
    if system.kind == "runledger":
        import producer

        run = producer.start_run(experiment, run_name="shared", tracking_uri=system.tracking_uri,
                                 spill_dir=tempfile.mkdtemp(prefix="rl-spill-"))
        run.flush(timeout_s=60)
        return run.run_id
    from mlflow import MlflowClient

    client = MlflowClient(system.tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    eid = exp.experiment_id if exp else client.create_experiment(experiment)
    return client.create_run(eid, run_name="shared").info.run_id


def _runs_of(system: System, experiment: str, run_id: str, w: Workload) -> dict[str, list[str]]:
    """run id -> keys, for counting."""
    if run_id:
        return {run_id: [k for r in range(w.ranks) for k in key_names(r, w.keys)]}
    if system.kind == "runledger":
        import httpx

        from producer.ids import experiment_id_for

        with httpx.Client(base_url=system.query_url, timeout=60) as c:
            runs = c.get(f"/api/v1/experiments/{experiment_id_for(experiment)}/runs",
                         params={"max_results": 10_000}).json()["runs"]
        return {r["run_id"]: key_names(int(r["name"].split("-")[1]), w.keys) for r in runs}
    from mlflow import MlflowClient

    client = MlflowClient(system.tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=10_000) if exp else []
    return {r.info.run_id: key_names(int(r.info.run_name.split("-")[1]), w.keys) for r in runs}


def run_job(system: System, w: Workload, mode: str, experiment: str, *, timeout_s: float = 600.0) -> JobResult:
    """``mode``: 'producer' (runledger), 'sync' or 'async' (mlflow)."""
    run_id = _create_shared_run(system, experiment) if w.shared_run else ""
    ctx = multiprocessing.get_context("spawn")
    spill = Path(tempfile.mkdtemp(prefix="rl-bench-spill-"))
    with ctx.Pool(w.ranks) as pool:
        if system.kind == "runledger":
            jobs = [pool.apply_async(runledger_rank, (system.tracking_uri, run_id, r, w, str(spill / str(r)),
                                                       experiment)) for r in range(w.ranks)]
        else:
            jobs = [pool.apply_async(mlflow_rank, (system.tracking_uri, run_id, r, w, mode == "sync", experiment))
                    for r in range(w.ranks)]
        ranks = [j.get(timeout_s) for j in jobs]
    runs = _runs_of(system, experiment, run_id, w)
    done = max(r["done_s"] for r in ranks)
    first = min(r["first_call_s"] for r in ranks if r["first_call_s"]) if any(r["first_call_s"] for r in ranks) \
        else done
    seen_now = count_points(system, runs)
    if seen_now >= w.points:
        visible, visible_at = seen_now, done
    else:
        visible, visible_at = wait_visible(system, runs, w.points, timeout_s)
    calls = sorted(ns for r in ranks for ns in r["call_ns"])
    p99 = calls[min(len(calls) - 1, int(len(calls) * 0.99))] if calls else 0
    return JobResult(
        system=system.name, mode=mode, workload=w.__dict__.copy(), expected=w.points, visible=visible,
        seconds=max(visible_at - first, 1e-6),
        call_us_median=statistics.median(calls) / 1000 if calls else 0.0, call_us_p99=p99 / 1000,
        us_per_point=(statistics.median(calls) / 1000 / w.keys) if calls else 0.0,
        producer_peak_rss_mb=max(r["peak_rss_kb"] for r in ranks) / 1024,
        server_peak_rss_mb=tree_peak_rss_mb(system.server_pid()),
        errors=sorted({r["error"] for r in ranks if r["error"]}))


