"""Metric-history latency: a 1,000,000-point series downsampled to 1,000 points, and full histories.

Starts ``runledger serve`` (embedded, temporary data folder), logs one run
through the producer: ``big`` with 1,000,000 steps (one spike at step
777,777) and ``mid`` with 100,000 steps, then times, over HTTP:

* ``GET /api/v1/runs/{id}/metrics/big?max_points=1000`` (and checks the spike survives),
* ``GET /api/v1/runs/{id}/metrics/mid`` (the full 100,000-point history),
* ``GET /api/v1/runs/{id}`` (run state).

Targets (DESIGN.md): downsampled < 50 ms p95 (issue: < 100 ms), full 100k < 200 ms, run state < 10 ms.

    python benchmarks/history_downsample.py [--points 1000000] [--calls 30]
"""

from __future__ import annotations

import argparse
import math
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


def timed(client: httpx.Client, path: str, calls: int, **params: object) -> tuple[list[float], httpx.Response]:
    client.get(path, params=params)  # warm-up
    out, resp = [], None
    for _ in range(calls):
        t0 = time.perf_counter()
        resp = client.get(path, params=params)
        out.append((time.perf_counter() - t0) * 1000)
        resp.raise_for_status()
    assert resp is not None
    return out, resp


def summary(ms: list[float]) -> str:
    q = statistics.quantiles(ms, n=20)
    return f"median {statistics.median(ms):.1f} ms, p95 {q[18]:.1f} ms, min {min(ms):.1f} ms"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points", type=int, default=1_000_000)
    ap.add_argument("--full-points", type=int, default=100_000)
    ap.add_argument("--calls", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = ServerProcess(Path(tmp) / "data").start()
        try:
            t0 = time.perf_counter()
            with producer.start_run(experiment="history-bench", tracking_uri=server.url,
                                    spill_dir=str(Path(tmp) / "spill")) as run:
                for step in range(args.points):
                    run.log_metrics({"big": 1000.0 if step == 777_777 else math.sin(step / 1000)}, step=step)
                for step in range(args.full_points):
                    run.log_metrics({"mid": float(step)}, step=step)
            seed_s = time.perf_counter() - t0
            with httpx.Client(base_url=server.url + "/api/v1", timeout=60) as c:
                state = c.get(f"/runs/{run.run_id}").json()
                assert state["metrics"]["big"]["count"] == args.points, state["metrics"]["big"]
                down, resp = timed(c, f"/runs/{run.run_id}/metrics/big", args.calls, max_points=1000)
                body = resp.json()
                assert len(body["values"]) <= 1000 and max(body["values"]) == 1000.0, "spike lost"
                full, resp = timed(c, f"/runs/{run.run_id}/metrics/mid", args.calls)
                assert len(resp.json()["values"]) == args.full_points
                run_state, _ = timed(c, f"/runs/{run.run_id}", args.calls)
        finally:
            server.stop()
    print(f"seeded {args.points + args.full_points:,} points through the producer in {seed_s:.1f} s")
    print(f"{args.points:,}-point series -> {len(body['values'])} points (max_points=1000): {summary(down)}")
    print(f"full {args.full_points:,}-point history: {summary(full)}")
    print(f"run state: {summary(run_state)}")


if __name__ == "__main__":
    main()
