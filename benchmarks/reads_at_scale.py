"""Reads at scale: how each read's cost grows with runs and with points (issue 14; MLflow issue #2730's scale).

Starts ``runledger serve`` (embedded chDB, a fresh data folder) and grows one experiment in stages —
``--runs 1000,10000,30000`` runs of ``--keys`` metrics (one point each, step 0) and ``--params`` params, loaded
through the producer (columnar, fast) — and after each stage times, through the **stock MLflow client**:

* ``search_runs`` first page (100) with ``metrics.m007 < 0.5`` ordered by ``metrics.m007 ASC``, checked (every
  value < 0.5, ascending, 100 runs) — through the client and as the bare HTTP call (the stock client spends
  most of a 100-run x 200-metric page turning JSON into protobuf and entities);
* ``get_run`` of a run (its params and every latest metric checked);
* ``search_experiments``;

and ``GET /api/v1/runs/{id}`` (native run state). Then one run grows series of ``--points 1000000,10000000``
points (one spike each, at a random step) and after each the downsampled 1,000-point view is timed, natively
(``/api/v1/runs/{id}/metrics/{key}?max_points=1000``) and as the MLflow UI asks
(``get-history-bulk-interval``), the spike checked in the answer.

Writes ``benchmarks/results/reads_at_scale-<date>.md`` / ``.json`` with the server's RSS after each stage.
Timed calls are median / p95 over ``--calls`` after 2 warm-up calls.

    python -m benchmarks.reads_at_scale                                  # 1k/10k/30k runs; 1M/10M points
    python -m benchmarks.reads_at_scale --runs 1000 --points 1000000 --calls 10   # quick
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from servers import ServerProcess

RESULTS = REPO / "benchmarks" / "results"


def _value(run: int, key: int) -> float:
    return ((run * 7919 + key * 104729) % 10_000) / 10_000


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _timed(fn: Callable[[], Any], calls: int, check: Callable[[Any], None]) -> dict[str, float]:
    for _ in range(2):
        check(fn())
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        answer = fn()
        out.append((time.perf_counter() - t0) * 1000)
        check(answer)
    out.sort()
    return {"median_ms": round(statistics.median(out), 2), "p95_ms": round(out[min(len(out) - 1, int(len(out) * 0.95))], 2)}


def _check_search_http(resp: httpx.Response) -> None:
    runs = resp.json()["runs"]
    vals = [next(m["value"] for m in r["data"]["metrics"] if m["key"] == "m007") for r in runs]
    assert resp.status_code == 200 and len(vals) == 100 and vals == sorted(vals) and vals[-1] < 0.5, vals[:5]


def _check_experiments(found: Any) -> None:
    assert sorted(e.name for e in found) == ["Default", "scale"], [e.name for e in found]


def load_runs(url: str, experiment_id: str, start: int, stop: int, keys: int, params: int,
              spill: str) -> tuple[list[str], float]:
    import producer

    t0 = time.perf_counter()
    ids = []
    names = [f"m{k:03d}" for k in range(keys)]
    for i in range(start, stop):
        run = producer.start_run(experiment_id=experiment_id, run_name=f"r{i:05d}", tracking_uri=url, spill_dir=spill)
        run.log_params({f"p{j:02d}": str((i + j) % 7) for j in range(params)})
        run.log_metrics({n: _value(i, k) for k, n in enumerate(names)}, step=0, timestamp_ms=1_000 + i)
        run.finish(timeout_s=0)
        ids.append(run.run_id)
    assert producer.flush(600), "the producer could not deliver everything"
    return ids, time.perf_counter() - t0


def bench_runs(server: ServerProcess, stages: list[int], keys: int, params: int, calls: int,
               spill: str) -> list[dict[str, Any]]:
    from mlflow import MlflowClient

    client = MlflowClient(server.url)
    eid = httpx.post(server.url + "/api/v1/experiments", json={"name": "scale"}, timeout=60).json()["experiment_id"]
    out, ids, loaded = [], [], 0
    for target in stages:
        new, secs = load_runs(server.url, eid, loaded, target, keys, params, spill)
        ids += new
        loaded = target
        probe = ids[len(ids) // 2]
        want_params = {f"p{j:02d}": str((len(ids) // 2 + j) % 7) for j in range(params)}

        def check_search(runs: Any) -> None:
            vals = [r.data.metrics["m007"] for r in runs]
            assert len(vals) == 100 and all(v < 0.5 for v in vals) and vals == sorted(vals), vals[:5]

        def check_run(run: Any, probe: str = probe, want: dict[str, str] = want_params,
                      index: int = len(ids) // 2) -> None:
            assert run.info.run_id == probe and run.data.params == want and len(run.data.metrics) == keys
            assert run.data.metrics["m007"] == _value(index, 7)

        def check_state(resp: httpx.Response) -> None:
            assert resp.status_code == 200 and len(resp.json()["metrics"]) == keys

        with httpx.Client(base_url=server.url, timeout=60) as http:
            search_body = {"experiment_ids": [eid], "filter": "metrics.m007 < 0.5", "order_by": ["metrics.m007 ASC"],
                           "max_results": 100}
            t0 = time.perf_counter()  # the first call after the load: no run's page JSON is kept yet
            first = http.post("/api/2.0/mlflow/runs/search", json=search_body)
            cold_ms = round((time.perf_counter() - t0) * 1000, 2)
            _check_search_http(first)
            row = {
                "runs": target, "load_s": round(secs, 1), "rss_mib": round(_rss_mib(server.proc.pid), 0),
                "search_runs_http_first_ms": cold_ms,
                "search_runs": _timed(lambda: client.search_runs([eid], "metrics.m007 < 0.5",
                                                                 order_by=["metrics.m007 ASC"], max_results=100),
                                      calls, check_search),
                "search_runs_http": _timed(
                    lambda body=search_body: http.post("/api/2.0/mlflow/runs/search", json=body),
                    calls, _check_search_http),
                "get_run": _timed(lambda probe=probe: client.get_run(probe), calls, check_run),
                "run_state_native": _timed(lambda probe=probe: http.get(f"/api/v1/runs/{probe}"), calls,
                                           check_state),
                "search_experiments": _timed(client.search_experiments, calls, _check_experiments),
            }
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def bench_points(server: ServerProcess, stages: list[int], calls: int, spill: str) -> list[dict[str, Any]]:
    import random

    import producer

    run = producer.start_run(experiment="scale-points", run_name="long", tracking_uri=server.url, spill_dir=spill)
    out = []
    for n in stages:
        key = f"s{n}"
        spike = random.Random(n).randrange(n)
        t0 = time.perf_counter()
        chunk = 10_000
        for lo in range(0, n, chunk):
            steps = list(range(lo, min(n, lo + chunk)))
            values = [1e6 if s == spike else (s % 1000) / 1000 for s in steps]
            run.producer.acc.add_points(run.run_id, [key] * len(steps), steps, [1_000 + s for s in steps], values)
        assert producer.flush(3600)
        secs = time.perf_counter() - t0

        def check_native(resp: httpx.Response, spike: int = spike) -> None:
            body = resp.json()
            assert len(body["values"]) <= 1000 and max(body["values"]) == 1e6 and spike in body["steps"]

        def check_ui(resp: httpx.Response) -> None:
            pts = resp.json()["metrics"]
            assert 0 < len(pts) <= 1000 and max(p["value"] for p in pts) == 1e6, len(pts)

        with httpx.Client(base_url=server.url, timeout=120) as http:
            row = {
                "points": n, "load_s": round(secs, 1), "points_per_s": round(n / secs),
                "rss_mib": round(_rss_mib(server.proc.pid), 0),
                "downsampled_native": _timed(
                    lambda key=key: http.get(f"/api/v1/runs/{run.run_id}/metrics/{key}", params={"max_points": 1000}),
                    calls, check_native),
                "bulk_interval_ui": _timed(
                    lambda key=key: http.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                                             params={"run_ids": run.run_id, "metric_key": key, "max_results": 1000}),
                    calls, check_ui),
            }
        print(json.dumps(row), flush=True)
        out.append(row)
    run.finish(timeout_s=60)
    return out


def _cell(d: dict[str, float]) -> str:
    return f"{d['median_ms']:,} ({d['p95_ms']:,})"


def write(result: dict[str, Any], out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"reads_at_scale-{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# Reads at scale — {result['date']}", "",
             f"`{result['command']}` on {result['machine']}; 1-minute load average {result['load_before']} at the start, "
             f"{result['load_after']} at the end. runledger {result['commit']}, embedded (chDB), read model on.", "",
             f"Runs: one experiment, each run {result['keys']} metrics (one point) and {result['params']} params. "
             "Median (p95) ms through the stock MLflow client (native run state over HTTP).", "",
             "| runs | load s | server RSS MiB | search_runs `metrics.m007 < 0.5` order by it, first 100 (stock client) | "
             "same, the HTTP call alone (its first call after the load) | get_run | native run state | "
             "search_experiments |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in result["runs"]:
        lines.append(f"| {r['runs']:,} | {r['load_s']} | {r['rss_mib']:,.0f} | {_cell(r['search_runs'])} | "
                     f"{_cell(r['search_runs_http'])} ({r.get('search_runs_http_first_ms', '–')}) | "
                     f"{_cell(r['get_run'])} | {_cell(r['run_state_native'])} | {_cell(r['search_experiments'])} |")
    lines += ["", "Points: one run, one series per row (one spike each, checked in every answer).", "",
              "| points in the series | load s (points/s) | server RSS MiB | 1,000-point view, native | "
              "same through `get-history-bulk-interval` |", "| --- | --- | --- | --- | --- |"]
    for r in result["points"]:
        lines.append(f"| {r['points']:,} | {r['load_s']} ({r['points_per_s']:,}) | {r['rss_mib']:,.0f} | "
                     f"{_cell(r['downsampled_native'])} | {_cell(r['bulk_interval_ui'])} |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem.with_suffix(".md")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="1000,10000,30000", help="run counts to grow through")
    ap.add_argument("--keys", type=int, default=200)
    ap.add_argument("--params", type=int, default=50)
    ap.add_argument("--points", default="1000000,10000000", help="series lengths (one series each)")
    ap.add_argument("--calls", type=int, default=30)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    load_before = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="rl-scale-") as tmp:
        server = ServerProcess(Path(tmp) / "data", extra_args=["--no-access-log"]).start()
        try:
            runs = bench_runs(server, [int(x) for x in args.runs.split(",") if x], args.keys, args.params, args.calls,
                              str(Path(tmp) / "spill"))
            points = bench_points(server, [int(x) for x in args.points.split(",") if x], args.calls,
                                  str(Path(tmp) / "spill"))
        finally:
            server.stop()
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False, cwd=REPO, capture_output=True,
                            text=True).stdout.strip()
    result = {"date": dt.date.today().isoformat(), "command": "python -m benchmarks.reads_at_scale " + " ".join(
        sys.argv[1:]), "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores)",
        "commit": commit, "load_before": load_before, "load_after": round(os.getloadavg()[0], 2),
        "keys": args.keys, "params": args.params, "runs": runs, "points": points}
    print(write(result, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
