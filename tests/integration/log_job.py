"""A training-job stand-in, run as a separate process by the integration tests.

    python log_job.py URI EXPERIMENT RUNS KEYS STEPS SPILL_DIR [--attach RUN_ID --rank N] [--slow-ms MS]

Logs RUNS runs x KEYS keys x STEPS steps (value = step * 0.5 + key index + run index,
rank adds 1000 * rank) and prints {"run_ids": [...], "flushed": bool} as JSON.
"""

from __future__ import annotations

import argparse
import json
import time

import producer


def main() -> None:
    ap = argparse.ArgumentParser()
    for name in ("uri", "experiment"):
        ap.add_argument(name)
    for name in ("runs", "keys", "steps"):
        ap.add_argument(name, type=int)
    ap.add_argument("spill_dir")
    ap.add_argument("--attach", default=None)
    ap.add_argument("--rank", type=int, default=0)
    ap.add_argument("--slow-ms", type=float, default=0.0, help="sleep per 100 steps (to span a server outage)")
    ap.add_argument("--flush-timeout", type=float, default=60.0)
    a = ap.parse_args()
    ids = []
    flushed = True
    for r in range(a.runs):
        run = producer.start_run(experiment=a.experiment, run_name=f"run-{r}", tracking_uri=a.uri, rank=a.rank,
                                 run_id=a.attach, spill_dir=a.spill_dir, retry_window_s=1.0, linger_ms=50)
        with run:
            run.log_params({"run_index": r, "keys": a.keys})
            for step in range(a.steps):
                run.log_metrics({f"k{i}": step * 0.5 + i + r + 1000 * a.rank for i in range(a.keys)}, step=step)
                if a.slow_ms and step % 100 == 99:
                    time.sleep(a.slow_ms / 1000)
        flushed = run.flush(a.flush_timeout) and flushed
        ids.append(run.run_id)
    print(json.dumps({"run_ids": ids, "flushed": flushed}))


if __name__ == "__main__":
    main()
