"""The web UI's chart read: ``metrics/get-history-bulk-interval`` for 10 runs x 1,000,000 points each.

Starts ``runledger serve`` (embedded, temporary data folder), logs 10 runs through the producer, each
with a ``loss`` series of ``--points`` steps and one spike (at a different step per run), then times,
over HTTP, the request MLflow's UI sends for a chart of the 10 runs
(``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk-interval?run_ids=..x10&metric_key=loss&max_results=N``,
N = 320, the UI's default, and 1,000). A series this long (over 2,500 points and 10x N) is downsampled
keeping spikes — each of N/2 step buckets answers its minimum and maximum, from ``metric_rollup`` for
never-re-logged series — and the benchmark checks every run's spike is in the answer. For contrast it
times the same downsampling asked run by run (10 sequential ``/api/v1/runs/{id}/metrics/loss?max_points=N``).

Target (issue 11): < 200 ms for 10 runs x 1,000,000 points.

    python benchmarks/ui_bulk_interval.py [--runs 10] [--points 1000000] [--calls 20]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from servers import ServerProcess

import producer

URL = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"


def summary(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=20)
    return f"median {statistics.median(ms):.1f} ms, p95 {q[18]:.1f} ms, min {min(ms):.1f} ms"


def timed(fn: object, calls: int) -> list[float]:
    assert callable(fn)
    fn()  # warm-up
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--calls", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data").start()
        try:
            t0 = time.perf_counter()
            run_ids, spikes = [], {}
            for i in range(args.runs):
                spike_step = (i + 1) * args.points // (args.runs + 1)
                with producer.start_run(experiment="ui-bulk-bench", tracking_uri=server.url,
                                        spill_dir=str(Path(tmp) / "spill")) as run:
                    for step in range(args.points):
                        value = 1000.0 + i if step == spike_step else math.sin(step / 1000) + 0.01 * i
                        run.log_metrics({"loss": value}, step=step)
                run_ids.append(run.run_id)
                spikes[run.run_id] = (spike_step, 1000.0 + i)
            seed_s = time.perf_counter() - t0
            lines = [f"seeded {args.runs} runs x {args.points:,} points through the producer in {seed_s:.1f} s"]
            with httpx.Client(base_url=server.url, timeout=120) as c:
                for max_results in (320, 1000):
                    params = {"run_ids": run_ids, "metric_key": "loss", "max_results": max_results}

                    def bulk(params: dict[str, object] = params) -> httpx.Response:
                        r = c.get(URL, params=params)
                        r.raise_for_status()
                        return r

                    points = bulk().json()["metrics"]
                    for rid, (step, value) in spikes.items():
                        mine = [(p["step"], p["value"]) for p in points if p["run_id"] == rid]
                        assert (step, value) in mine and len(mine) <= max_results, f"spike of {rid} lost"
                    ms = timed(bulk, args.calls)
                    lines.append(f"bulk-interval, {args.runs} runs, max_results={max_results} -> {len(points):,} "
                                 f"points, one query: {summary(ms)}")

                    def per_run(max_results: int = max_results) -> None:
                        for rid in run_ids:
                            c.get(f"/api/v1/runs/{rid}/metrics/loss", params={"max_points": max_results}
                                  ).raise_for_status()

                    for rid, (step, value) in spikes.items():
                        mine = c.get(f"/api/v1/runs/{rid}/metrics/loss", params={"max_points": max_results}).json()
                        assert value in mine["values"] and step in mine["steps"], f"spike of {rid} lost"
                    ms = timed(per_run, max(3, args.calls // 4))
                    lines.append(f"  for contrast, run by run ({args.runs} sequential requests, max_points="
                                 f"{max_results}): {summary(ms)}")
        finally:
            server.stop()
    load = os.getloadavg()
    lines.append(f"load average at the end: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; cores: {os.cpu_count()}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
