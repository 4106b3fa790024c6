"""One rank of a simulated training job: K metric keys per step for S steps, plus params and tags.

Each rank process times every ``log_metrics`` call (``perf_counter_ns``) and
reports the timings, its peak RSS and whether its data was flushed. Keys are
``r<rank>/k<k>`` so the ranks of one shared run never overwrite each other's
(run, key, step) points.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["RankResult", "Workload", "key_names", "mlflow_rank", "runledger_rank"]


@dataclass(frozen=True)
class Workload:
    ranks: int
    keys: int
    steps: int
    shared_run: bool = True

    @property
    def points(self) -> int:
        return self.ranks * self.keys * self.steps


@dataclass
class RankResult:
    rank: int
    call_ns: list[int] = field(default_factory=list)
    first_call_s: float = 0.0
    last_call_s: float = 0.0
    done_s: float = 0.0
    """Wall clock (time.time) when the rank's data was handed over (flushed / client returned)."""
    peak_rss_kb: int = 0
    delivered: bool = True
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def peak_rss_kb() -> int:
    """This process's peak RSS (VmHWM). Not ``ru_maxrss``: Linux keeps that across exec, so a spawned
    child would report its (large) parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def key_names(rank: int, keys: int) -> list[str]:
    return [f"r{rank}/k{k}" for k in range(keys)]


def _values(names: list[str], step: int) -> dict[str, float]:
    return {n: math.exp(-step / 500) + i * 1e-3 for i, n in enumerate(names)}


def runledger_rank(uri: str, run_id: str, rank: int, w: Workload, spill_dir: str, experiment: str) -> dict[str, Any]:
    """Log through runledger's producer (attaching to ``run_id`` when given) and flush."""
    import producer

    res = RankResult(rank)
    names = key_names(rank, w.keys)
    try:
        if run_id:
            run = producer.start_run(run_id=run_id, tracking_uri=uri, rank=rank, spill_dir=spill_dir)
        else:
            run = producer.start_run(experiment, run_name=f"rank-{rank}", tracking_uri=uri, rank=rank,
                                     spill_dir=spill_dir)
        run.log_params({f"rank{rank}.lr": 3e-4, f"rank{rank}.keys": w.keys})
        run.set_tags({"job": experiment})
        res.first_call_s = time.time()
        clock = time.perf_counter_ns
        calls = res.call_ns
        for step in range(w.steps):
            values = _values(names, step)
            t0 = clock()
            run.log_metrics(values, step=step)
            calls.append(clock() - t0)
        res.last_call_s = time.time()
        res.delivered = run.finish(timeout_s=600) if not run_id else run.flush(timeout_s=600)
        res.done_s = time.time()
    except Exception as exc:
        res.error = f"{type(exc).__name__}: {exc}"
    res.peak_rss_kb = peak_rss_kb()
    return res.to_dict()


def mlflow_rank(uri: str, run_id: str, rank: int, w: Workload, synchronous: bool, experiment: str) -> dict[str, Any]:
    """Log through the stock mlflow client with its default settings (retries included: a request its
    client gives up on, such as a 400, is a lost point) — ``synchronous=False`` is its buffered async mode."""
    import mlflow

    res = RankResult(rank)
    names = key_names(rank, w.keys)
    mlflow.set_tracking_uri(uri)
    try:
        if run_id:
            mlflow.start_run(run_id=run_id)
        else:
            mlflow.set_experiment(experiment)
            mlflow.start_run(run_name=f"rank-{rank}")
        mlflow.log_params({f"rank{rank}.lr": 3e-4, f"rank{rank}.keys": w.keys})
        mlflow.set_tag(f"job.rank{rank}", experiment)
        res.first_call_s = time.time()
        clock = time.perf_counter_ns
        calls = res.call_ns
        futures = []
        for step in range(w.steps):
            values = _values(names, step)
            t0 = clock()
            out = mlflow.log_metrics(values, step=step, synchronous=synchronous)
            calls.append(clock() - t0)
            if out is not None:
                futures.append(out)
        res.last_call_s = time.time()
        for f in futures:
            try:
                f.wait()
            except Exception as exc:
                res.delivered = False
                res.error = res.error or f"{type(exc).__name__}: {str(exc)[:200]}"
        try:
            mlflow.flush_async_logging()
        except Exception as exc:
            res.delivered = False
            res.error = res.error or f"{type(exc).__name__}: {str(exc)[:200]}"
        if not run_id:
            mlflow.end_run()
        res.done_s = time.time()
    except Exception as exc:
        res.delivered = False
        res.error = res.error or f"{type(exc).__name__}: {str(exc)[:200]}"
        res.done_s = time.time()
    res.peak_rss_kb = peak_rss_kb()
    return res.to_dict()
