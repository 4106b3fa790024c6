"""End-to-end ingest in Kafka mode: producer processes -> Kafka -> ingest worker -> chDB -> queryable.

Starts a Tansu broker (in memory; see tests/kafka_broker.py), then either
``runledger serve --kafka ... --ingest`` (default: the worker runs inside the
query service; chDB) or, with ``--worker standalone``, a ``runledger ingest``
process plus, after it drained, a ``runledger serve`` that reads the same
folder. ``--producers`` processes each log ``--runs`` x ``--keys`` x
``--steps`` points as fast as the SDK takes them (``kafka://`` transport,
idempotence off: Tansu lacks it). The clock starts at the first producer's
first ``log_metrics`` call and stops when the query API reports every point
(``/api/v1/experiments/{id}/runs`` latest-metric counts, polled every 50 ms).

    python benchmarks/kafka_e2e.py [--producers 2] [--runs 1] [--keys 10] [--steps 50000] [--partitions 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import httpx
from kafka_broker import TansuBroker, kafka_uri, prometheus_value
from servers import ServerProcess, free_port

from producer.ids import experiment_id_for


def produce(args: argparse.Namespace) -> None:
    """Child process: log points as fast as possible; print when the first call happened and how long logging took."""
    import producer

    first_call = time.time()
    run = producer.start_run(experiment=args.experiment, tracking_uri=args.uri, spill_dir=args.spill,
                             max_batch_points=args.batch_points, linger_ms=50)
    keys = [f"k{i}" for i in range(args.keys)]
    for step in range(args.steps):
        run.log_metrics({k: step * 0.5 + i for i, k in enumerate(keys)}, step=step)
    logged = time.time()
    flushed = run.finish(timeout_s=600)
    print(json.dumps({"first_call": first_call, "logged_s": logged - first_call,
                      "flushed_s": time.time() - first_call, "flushed": flushed}))


def points_visible(c: httpx.Client, experiments: list[str]) -> int:
    total = 0
    for exp in experiments:
        resp = c.get(f"/api/v1/experiments/{experiment_id_for(exp)}/runs", params={"max_results": 1000})
        if resp.status_code == 200:
            total += sum(m["count"] for r in resp.json()["runs"] for m in r["metrics"].values())
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--producers", type=int, default=2)
    ap.add_argument("--runs", type=int, default=1, help="runs per producer (logged one after the other)")
    ap.add_argument("--keys", type=int, default=10)
    ap.add_argument("--steps", type=int, default=50_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--batch-points", type=int, default=10_000, help="producer max_batch_points")
    ap.add_argument("--worker", choices=["in-process", "standalone"], default="in-process")
    ap.add_argument("--produce", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--uri", help=argparse.SUPPRESS)
    ap.add_argument("--experiment", help=argparse.SUPPRESS)
    ap.add_argument("--spill", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.produce:
        produce(args)
        return
    work = Path(tempfile.mkdtemp(prefix="runledger-kafka-bench-"))
    broker = TansuBroker(work / "tansu.log").start()
    topic = "bench"
    env = {"RUNLEDGER_KAFKA_TOPIC": topic, "RUNLEDGER_KAFKA_PARTITIONS": str(args.partitions),
           "RUNLEDGER_KAFKA_IDEMPOTENCE": "false", "RUNLEDGER_KAFKA_SESSION_TIMEOUT_MS": "3000"}
    server: ServerProcess | None = None
    worker: subprocess.Popen[bytes] | None = None
    metrics_port = free_port()
    try:
        if args.worker == "in-process":
            server = ServerProcess(work / "data", ["--kafka", broker.bootstrap, "--ingest"], env=env).start()
        else:
            worker = subprocess.Popen(
                [sys.executable, "-m", "query", "ingest", "--data-dir", str(work / "data"), "--kafka",
                 broker.bootstrap, "--topic", topic, "--partitions", str(args.partitions), "--session-timeout-ms",
                 "3000", "--metrics-port", str(metrics_port)],
                cwd=REPO, stdout=open(work / "ingest.log", "wb"), stderr=subprocess.STDOUT)  # noqa: SIM115 - the handle outlives this block
            _wait_metrics(metrics_port)
        uri = kafka_uri(broker, topic=topic)
        experiments = [f"bench-{p}-{r}" for p in range(args.producers) for r in range(args.runs)]
        total = len(experiments) * args.keys * args.steps
        procs = [subprocess.Popen([sys.executable, __file__, "--produce", "--uri", uri, "--experiment", exp,
                                   "--keys", str(args.keys), "--steps", str(args.steps),
                                   "--batch-points", str(args.batch_points), "--spill", str(work / f"spill-{i}")],
                                  stdout=subprocess.PIPE, cwd=REPO)
                 for i, exp in enumerate(experiments)]
        if worker is not None:
            deadline = time.monotonic() + 600
            while prometheus_value(_metrics(metrics_port), "runledger_ingest_points_total") < total:
                assert time.monotonic() < deadline, "ingest did not finish within 600 s"
                time.sleep(0.05)
            written_at = time.time()
            worker.terminate()
            worker.wait(60)
            server = ServerProcess(work / "data").start()
        assert server is not None
        with server.client() as c:
            deadline = time.monotonic() + 600
            while (seen := points_visible(c, experiments)) < total:
                assert time.monotonic() < deadline, f"only {seen} of {total} points visible after 600 s"
                time.sleep(0.05)
            visible_at = time.time() if worker is None else written_at
            results = [json.loads(p.communicate(timeout=600)[0].decode().strip().splitlines()[-1]) for p in procs]
            assert all(r["flushed"] for r in results), results
            t0 = min(r["first_call"] for r in results)
            seconds = visible_at - t0
            print(json.dumps({
                "points": total, "producers": len(procs), "partitions": args.partitions, "worker": args.worker,
                "seconds_first_call_to_all_visible": round(seconds, 2),
                "points_per_s_end_to_end": round(total / seconds),
                "producer_log_s_max": round(max(r["logged_s"] for r in results), 2),
                "producer_flush_s_max": round(max(r["flushed_s"] for r in results), 2),
                "points_visible_check": points_visible(c, experiments),
            }, indent=1))
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
        if server is not None:
            server.stop()
        broker.stop()
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)


def _metrics(port: int) -> str:
    return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text


def _wait_metrics(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if prometheus_value(_metrics(port), "runledger_ingest_assigned_partitions") > 0:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError("runledger ingest did not get its partitions within 60 s")


if __name__ == "__main__":
    main()
