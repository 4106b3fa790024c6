"""The benchmark harness at a tiny size: runledger embedded and a stock ``mlflow server`` it starts itself.

Proves the load generator counts exactly what each system holds, and that the report has every row and
a ratio for every comparable row; the numbers themselves live in benchmarks/results, never in tests.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.loadgen.job import run_job
from benchmarks.loadgen.systems import RunledgerEmbedded
from benchmarks.loadgen.workload import Workload
from benchmarks.run import PROFILES, markdown, measure, rows

REPO = Path(__file__).resolve().parents[2]

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::FutureWarning")]


def test_the_harness_counts_exactly_and_reports_every_row(tmp_path: Path) -> None:
    profile = PROFILES["smoke"]
    measured = measure(profile, tmp_path, with_kafka=False)
    jobs = measured["jobs"]
    for name, w in (("runledger embedded", profile["rl"]), ("runledger embedded burst", profile["burst"]),
                    ("mlflow sync", profile["ml_sync"])):
        assert jobs[name]["expected"] == w.points
        assert jobs[name]["visible"] == w.points and jobs[name]["lost"] == 0, jobs[name]
        assert jobs[name]["errors"] == []
        assert jobs[name]["call_us_median"] > 0 and jobs[name]["points_per_s"] > 0
    assert jobs["mlflow async"]["expected"] == profile["ml_async"].points
    assert 0 <= jobs["mlflow async"]["visible"] <= profile["ml_async"].points
    table = rows(measured)
    assert len(table) == 11
    comparable = [r for r in table if r["runledger embedded"] is not None and r["row"] != "points lost in the e2e "
                  "run (%)" and not r["row"].startswith("points lost")]
    assert all(r["runledger/mlflow"] is not None for r in comparable), comparable
    reads = measured["reads"]
    assert reads["runledger embedded"]["search"]["median_ms"] > 0 and reads["mlflow"]["search"]["median_ms"] > 0
    md = markdown(table, {"date": "test", "profile": "smoke", "seconds": 1.0, "command": "x", "machine": "m",
                          "load_avg_1m": {"before": 0.1, "after": 0.2}, "mlflow_store": "sqlite (asked for)",
                          "shared_run": True, "jobs": jobs})
    assert all(f"| {r['row']} |" in md for r in table) and "runledger/MLflow" in md


def test_one_run_per_rank_is_counted_run_by_run(tmp_path: Path) -> None:
    system = RunledgerEmbedded(tmp_path).start()
    try:
        w = Workload(3, 4, 40, shared_run=False)
        result = run_job(system, w, "producer", "per-rank", timeout_s=120)
    finally:
        system.stop()
    assert (result.expected, result.visible, result.errors) == (480, 480, [])


@pytest.mark.parametrize("args, message", [
    (["--profile", "huge"], "invalid choice: 'huge'"),
    (["--mlflow-backend", "oracle"], "invalid choice: 'oracle'"),
    (["--out", str(REPO / "pyproject.toml")], "is not a folder"),
    (["--bogus"], "unrecognized arguments: --bogus"),
])
def test_bad_command_lines_are_refused_in_one_line(args: list[str], message: str) -> None:
    out = subprocess.run([sys.executable, "-m", "benchmarks.run", *args], cwd=REPO, capture_output=True, check=False,
                         text=True, timeout=60)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr
