"""Wall time of an MLflow-tutorial-style script with the stock client, against runledger and ``mlflow server``.

The flow (one repetition) is what MLflow's tracking quickstart does, with a
training loop: ``set_experiment``; ``start_run``; ``log_params`` (5);
``--steps`` epochs of ``log_metric("loss")`` + ``log_metric("accuracy")``
(one HTTP call each, as in the tutorial); ``set_tag``; ``log_artifact`` (a
64 KiB file) and ``log_dict``; a nested child run with one metric; then the
reads a notebook makes: ``search_runs`` with a filter, ``get_metric_history``
and ``download_artifacts``. The values read back are checked, so a system
that drops writes cannot look fast.

Both servers run on this machine, started by this script: ``runledger serve``
(embedded, temporary data folder) and ``mlflow server`` on SQLite with
proxied artifacts (benchmarks/loadgen/systems.py). Results go to
benchmarks/results/mlflow_compat.md.

    python benchmarks/mlflow_tutorial.py [--steps 100] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import mlflow
from mlflow import MlflowClient

from benchmarks.loadgen.systems import MlflowServer, RunledgerEmbedded

RESULTS = REPO / "benchmarks" / "results" / "mlflow_compat.md"


def tutorial(uri: str, experiment: str, steps: int, workdir: Path) -> float:
    """One repetition of the flow against ``uri``; its wall time in seconds (values checked after)."""
    mlflow.set_tracking_uri(uri)
    artifact = workdir / "weights.bin"
    artifact.write_bytes(os.urandom(64 * 1024))
    t0 = time.perf_counter()
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name="tutorial") as run:
        mlflow.log_params({"lr": 0.01, "epochs": steps, "batch_size": 32, "optimizer": "adam", "seed": 7})
        for epoch in range(steps):
            mlflow.log_metric("loss", 1.0 / (epoch + 1), step=epoch)
            mlflow.log_metric("accuracy", 1.0 - 1.0 / (epoch + 2), step=epoch)
        mlflow.set_tag("model", "mlp")
        mlflow.log_artifact(str(artifact))
        mlflow.log_dict({"layers": [64, 64]}, "config.json")
        with mlflow.start_run(run_name="eval", nested=True):
            mlflow.log_metric("eval_loss", 0.5)
    found = mlflow.search_runs(experiment_names=[experiment], filter_string="metrics.loss < 1")
    history = MlflowClient(uri).get_metric_history(run.info.run_id, "loss")
    out = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(workdir / experiment))
    elapsed = time.perf_counter() - t0
    assert list(found["run_id"]) == [run.info.run_id], found
    assert [m.step for m in history] == list(range(steps))
    assert (Path(out) / "weights.bin").read_bytes() == artifact.read_bytes()
    return elapsed


def measure(system: RunledgerEmbedded | MlflowServer, steps: int, repeats: int, workdir: Path) -> list[float]:
    system.start()
    try:
        tutorial(system.tracking_uri, "warm-up", 2, workdir)
        return [tutorial(system.tracking_uri, f"tutorial-{i}", steps, workdir) for i in range(repeats)]
    finally:
        system.stop()


def report(times: dict[str, list[float]], steps: int, repeats: int, command: str) -> str:
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    calls = 2 * steps
    lines = [
        "# Stock mlflow client: tutorial flow, runledger vs `mlflow server`", "",
        f"Measured {date.today().isoformat()} on this machine ({os.cpu_count()} cores, load average after the "
        f"run {load}), mlflow {mlflow.__version__}.", "",
        "```bash", command, "```", "",
        f"One repetition: set_experiment, start_run, log_params (5), {steps} epochs x (log_metric loss + "
        f"log_metric accuracy) = {calls} one-point calls, set_tag, log_artifact (64 KiB), log_dict, a nested run, "
        "then search_runs with a filter, get_metric_history and download_artifacts (values checked). "
        f"{repeats} repetitions after a warm-up, each a new experiment.", "",
        "| server | median s | min s | max s | ms per log_metric call (median / calls) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, ts in times.items():
        lines.append(f"| {name} | {statistics.median(ts):.2f} | {min(ts):.2f} | {max(ts):.2f} | "
                     f"{statistics.median(ts) / calls * 1000:.1f} |")
    names = list(times)
    if len(names) == 2:
        ratio = statistics.median(times[names[1]]) / statistics.median(times[names[0]])
        lines += ["", f"{names[0]} takes {1 / ratio:.2f}x the wall time of {names[1]} (median)."]
    lines += ["", "Each `log_metric` is one synchronous HTTP round trip that answers once the point is readable "
              "(runledger: after the ClickHouse insert; mlflow: after the SQLite commit), so this flow measures "
              "per-call latency, not throughput; benchmarks/results/kafka_e2e.md and the loadgen results cover "
              "throughput."]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    if args.steps < 2 or args.repeats < 1:
        ap.error("--steps must be >= 2 and --repeats >= 1")
    command = f"python benchmarks/mlflow_tutorial.py --steps {args.steps} --repeats {args.repeats}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        times = {"runledger serve (embedded, chDB)": measure(RunledgerEmbedded(work), args.steps, args.repeats, work),
                 "mlflow server (SQLite)": measure(MlflowServer(work, "sqlite"), args.steps, args.repeats, work)}
    text = report(times, args.steps, args.repeats, command)
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
