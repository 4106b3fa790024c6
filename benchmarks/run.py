"""runledger vs the stock MLflow server on the same workloads, in the same run.

    python -m benchmarks.run --profile quick      # < 5 minutes on the 2-core machine
    python -m benchmarks.run --profile full       # the sizes the issue names (long: MLflow is slow)

Writes ``benchmarks/results/<YYYY-MM-DD>.json`` and ``.md`` (``<YYYY-MM-DD>-<profile>.*`` for the other
profiles) and prints every row with the
runledger / MLflow ratio. See benchmarks/README.md for the workload and the latest results.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from .loadgen.job import run_job
from .loadgen.reads import seed_runs, seed_series, time_history, time_search
from .loadgen.systems import (
    MlflowServer,
    RunledgerEmbedded,
    RunledgerKafka,
    System,
    mlflow_backend,
)
from .loadgen.workload import Workload

RESULTS = Path(__file__).resolve().parent / "results"

PROFILES: dict[str, dict[str, Any]] = {
    # rl = runledger's workload, ml_sync / ml_async = MLflow's (smaller where MLflow would take minutes)
    "quick": {"rl": Workload(4, 10, 25_000), "ml_sync": Workload(2, 10, 50), "ml_async": Workload(2, 10, 300),
              "burst": Workload(8, 20, 1000), "ml_burst": Workload(8, 20, 1000),
              "series": 1_000_000, "ml_series": 10_000, "runs": 10_000, "ml_runs": 200, "calls": 10},
    # tiny sizes for tests/integration/test_bench_smoke.py: proves the harness, measures nothing
    "smoke": {"rl": Workload(2, 3, 50), "ml_sync": Workload(1, 3, 10), "ml_async": Workload(1, 3, 20),
              "burst": Workload(2, 3, 50), "ml_burst": Workload(1, 3, 20),
              "series": 3000, "ml_series": 1500, "runs": 60, "ml_runs": 20, "calls": 2},
    "full": {"rl": Workload(8, 20, 10_000), "ml_sync": Workload(4, 10, 300), "ml_async": Workload(8, 20, 1000),
             "burst": Workload(8, 20, 1000), "ml_burst": Workload(8, 20, 1000),
             "series": 1_000_000, "ml_series": 1_000_000, "runs": 10_000, "ml_runs": 10_000, "calls": 30},
}
COLUMNS = ["runledger embedded", "runledger kafka", "mlflow sync", "mlflow async"]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def job_row(system: System, w: Workload, mode: str, name: str) -> dict[str, Any]:
    log(f"{system.name} {mode}: {w.ranks} ranks x {w.keys} keys x {w.steps} steps = {w.points:,} points")
    r = run_job(system, w, mode, name).to_dict()
    log(f"  -> {r['visible']:,}/{r['expected']:,} visible ({r['lost_pct']} % lost) in {r['seconds']:.2f} s = "
        f"{r['points_per_s']:,} points/s; call median {r['call_us_median']:.1f} us p99 {r['call_us_p99']:.1f} us")
    return r


def measure(profile: dict[str, Any], workdir: Path, with_kafka: bool, mlflow_store: str = "sqlite",
            shared_run: bool = True) -> dict[str, Any]:
    """Every job and read, runledger first, then MLflow with ``mlflow_store`` ('sqlite' or 'postgresql')
    as its backend store; ``shared_run=False`` gives every rank its own run."""
    profile = {k: replace(v, shared_run=shared_run) if isinstance(v, Workload) else v for k, v in profile.items()}
    out: dict[str, Any] = {"jobs": {}, "reads": {}, "mlflow_store": mlflow_store, "shared_run": shared_run}
    systems: list[System] = [RunledgerEmbedded(workdir)]
    if with_kafka:
        systems.append(RunledgerKafka(workdir))
    for system in systems:
        system.start()
        try:
            key = system.name
            out["jobs"][key] = job_row(system, profile["rl"], "producer", "e2e")
            out["jobs"][key + " burst"] = job_row(system, profile["burst"], "producer", "burst")
            if system.name == "runledger embedded":
                log(f"{system.name}: seeding a {profile['series']:,}-point series and {profile['runs']:,} runs")
                run_id = seed_series(system, profile["series"])
                out["reads"][key] = {"history": time_history(system, run_id, profile["series"], profile["calls"]),
                                     "series_points": profile["series"]}
                # the full-history row compares equal sizes: a series as long as MLflow's
                same = seed_series(system, profile["ml_series"])
                out["reads"][key]["history"]["full"] = time_history(system, same, profile["ml_series"],
                                                                    profile["calls"])["full"]
                eid = seed_runs(system, profile["runs"])
                out["reads"][key]["search"] = time_search(system, eid, profile["runs"], profile["calls"])
                out["reads"][key]["search_runs"] = profile["runs"]
                log(f"  -> {out['reads'][key]}")
            out["jobs"][key]["server_peak_rss_mb"] = max(out["jobs"][key]["server_peak_rss_mb"],
                                                         out["jobs"][key + " burst"]["server_peak_rss_mb"])
        finally:
            system.stop()
    ml = MlflowServer(workdir, mlflow_store)
    log(f"starting mlflow server ({mlflow_store} backend store)")
    try:
        ml.start()
        out["jobs"]["mlflow sync"] = job_row(ml, profile["ml_sync"], "sync", "e2e-sync")
        out["jobs"]["mlflow async"] = job_row(ml, profile["ml_async"], "async", "e2e-async")
        out["jobs"]["mlflow async burst"] = job_row(ml, profile["ml_burst"], "async", "burst")
        log(f"mlflow: seeding a {profile['ml_series']:,}-point series and {profile['ml_runs']:,} runs")
        run_id = seed_series(ml, profile["ml_series"])
        out["reads"]["mlflow"] = {"history": time_history(ml, run_id, profile["ml_series"], profile["calls"]),
                                  "series_points": profile["ml_series"]}
        eid = seed_runs(ml, profile["ml_runs"])
        out["reads"]["mlflow"]["search"] = time_search(ml, eid, profile["ml_runs"], profile["calls"])
        out["reads"]["mlflow"]["search_runs"] = profile["ml_runs"]
        log(f"  -> {out['reads']['mlflow']}")
    finally:
        ml.stop()
    return out


def rows(m: dict[str, Any]) -> list[dict[str, Any]]:
    """The comparison table: one row per measurement, one column per system, and runledger / MLflow."""
    j, r = m["jobs"], m["reads"]
    emb, kaf = j.get("runledger embedded", {}), j.get("runledger kafka", {})

    def cols(field: str) -> dict[str, Any]:
        return {"runledger embedded": emb.get(field), "runledger kafka": kaf.get(field),
                "mlflow sync": j["mlflow sync"][field], "mlflow async": j["mlflow async"][field]}

    burst = {"runledger embedded": j.get("runledger embedded burst", {}).get("lost_pct"),
             "runledger kafka": j.get("runledger kafka burst", {}).get("lost_pct"), "mlflow sync": None,
             "mlflow async": j["mlflow async burst"]["lost_pct"]}
    rl_reads, ml_reads = r.get("runledger embedded", {}), r["mlflow"]

    def reads(path: tuple[str, str]) -> dict[str, Any]:
        def get(d: dict[str, Any]) -> Any:
            return d.get(path[0], {}).get(path[1], {}).get("median_ms") if path[1] else d.get(path[0], {}).get(
                "median_ms")

        return {"runledger embedded": get(rl_reads), "runledger kafka": None, "mlflow sync": get(ml_reads),
                "mlflow async": None}

    out = [
        {"row": "end-to-end points/s (first call -> all visible, counted)", "better": "higher", **cols("points_per_s")},
        {"row": "points lost in the e2e run (%)", "better": "lower", **cols("lost_pct")},
        {"row": f"points lost, {j['runledger embedded burst']['expected']:,}-point burst "
                f"(MLflow async: {j['mlflow async burst']['expected']:,}) (%)", "better": "lower", **burst},
        {"row": "log_metrics call, median (us)", "better": "lower", **cols("call_us_median")},
        {"row": "log_metrics call, p99 (us)", "better": "lower", **cols("call_us_p99")},
        {"row": "caller cost per point (us, median call / keys)", "better": "lower", **cols("us_per_point")},
        {"row": "producer peak RSS (MiB)", "better": "lower", **cols("producer_peak_rss_mb")},
        {"row": "server peak RSS (MiB, process tree)", "better": "lower", **cols("server_peak_rss_mb")},
        {"row": f"full history of one {ml_reads['series_points']:,}-point metric, median ms", "better": "lower",
         **reads(("history", "full"))},
        {"row": f"1,000-point view of a {rl_reads.get('series_points', 0):,}-point series (MLflow "
                f"{ml_reads['series_points']:,}) median ms", "better": "lower", **reads(("history", "downsampled"))},
        {"row": f"runs search, metric filter, {rl_reads.get('search_runs', 0):,} runs (MLflow "
                f"{ml_reads['search_runs']:,}) median ms", "better": "lower", **reads(("search", ""))},
    ]
    for row in out:
        rl = row["runledger embedded"]
        ml = row["mlflow async"] if row["mlflow async"] is not None else row["mlflow sync"]
        if row["row"].startswith(("end-to-end", "log_metrics", "caller", "producer")):
            ml = row["mlflow async"]
        row["runledger/mlflow"] = round(rl / ml, 4) if isinstance(rl, (int, float)) and ml else None
    return out


def markdown(table: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "–"
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 1000 else f"{v:,.0f}"
        return f"{v:,}" if isinstance(v, int) else str(v)

    lines = [f"# Benchmark results — {meta['date']} ({meta['profile']} profile)", "",
             (f"`{meta['command']}` on {meta['machine']}; took {meta['seconds']:.0f} s; 1-minute load average "
             f"{meta['load_avg_1m']['before']} before, {meta['load_avg_1m']['after']} after (other work on the "
             f"machine shows there). MLflow backend store: {meta['mlflow_store']}. "
             f"{'One shared run per job' if meta['shared_run'] else 'One run per rank'}. "
             "Ratio = runledger embedded / MLflow (async where it has that mode, else the one MLflow column)."), "",
             "| measurement | better | " + " | ".join(COLUMNS) + " | runledger/MLflow |",
             "| --- | --- | " + " | ".join("---" for _ in COLUMNS) + " | --- |"]
    for row in table:
        lines.append(f"| {row['row']} | {row['better']} | " + " | ".join(fmt(row[c]) for c in COLUMNS)
                     + f" | {fmt(row['runledger/mlflow'])} |")
    lines += ["", "Workloads (ranks × keys × steps): " + "; ".join(
        f"{k}: {v['workload']['ranks']}×{v['workload']['keys']}×{v['workload']['steps']} = {v['expected']:,}"
        for k, v in meta["jobs"].items())]
    errors = {k: v["errors"] for k, v in meta["jobs"].items() if v["errors"]}
    if errors:
        lines += ["", "Errors the clients reported: " + "; ".join(f"{k}: {e[:3]}" for k, e in errors.items())]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="runledger vs MLflow benchmarks")
    ap.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    ap.add_argument("--no-kafka", action="store_true", help="skip the Kafka-mode rows")
    ap.add_argument("--mlflow-backend", choices=["auto", "postgresql", "sqlite"], default="auto",
                    help="MLflow's backend store (auto: PostgreSQL where it can run here, else SQLite)")
    ap.add_argument("--runs-per-rank", action="store_true", help="one run per rank instead of one shared run")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for <date>.json/.md")
    args = ap.parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        ap.error(f"--out {args.out} is not a folder")
    store, why = mlflow_backend(args.mlflow_backend)
    log(f"mlflow backend store: {store} ({why})")
    t0, load_before = time.time(), os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="rl-bench-") as tmp:
        measured = measure(PROFILES[args.profile], Path(tmp), not args.no_kafka, store, not args.runs_per_rank)
    table = rows(measured)
    date = dt.date.today().isoformat()
    meta = {"date": date, "profile": args.profile, "seconds": time.time() - t0,
            "command": " ".join(["python -m benchmarks.run", *(sys.argv[1:] if argv is None else argv)]),
            "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores, "
                       f"Python {platform.python_version()})",
            "load_avg_1m": {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)},
            "mlflow_store": f"{store} ({why})", "shared_run": not args.runs_per_rank, "jobs": measured["jobs"]}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / (date if args.profile == "quick" else f"{date}-{args.profile}")
    stem.with_suffix(".json").write_text(json.dumps({**meta, "measured": measured, "table": table}, indent=1))
    md = markdown(table, meta)
    stem.with_suffix(".md").write_text(md)
    print()
    for row in table:
        print(f"{row['row']}: runledger {row['runledger embedded']} vs MLflow "
              f"{row['mlflow async'] if row['mlflow async'] is not None else row['mlflow sync']} "
              f"-> ratio {row['runledger/mlflow']} ({row['better']} is better)")
    print(f"\nwrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
