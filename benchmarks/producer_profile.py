"""The producer's hot path in a tight loop against an embedded server: ``calls`` ten-key ``log_metrics``
calls, amortised cost per call and per point as the caller sees it (the dict is built in the loop, as
training code does, and the sender thread's encoding competes for the GIL), then the flush time.

    .venv/bin/python benchmarks/producer_profile.py [calls]
    .venv/bin/py-spy record -r 200 -f raw -o /tmp/producer.raw -- .venv/bin/python benchmarks/producer_profile.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from servers import ServerProcess

import producer

KEYS = 10


def main(calls: int) -> str:
    srv = ServerProcess(Path(tempfile.mkdtemp(prefix="rl-prof-")) / "data")
    srv.start()
    try:
        run = producer.start_run("producer-profile", tracking_uri=srv.url, spill_dir=tempfile.mkdtemp())
        names = [f"k{i}" for i in range(KEYS)]
        t0 = time.perf_counter()
        for step in range(calls):
            run.log_metrics({n: step * 0.5 for n in names}, step=step)
        t1 = time.perf_counter()
        run.finish(timeout_s=120)
        flush_s = time.perf_counter() - t1
    finally:
        srv.stop()
    per_call_us = (t1 - t0) / calls * 1e6
    return (f"{calls:,} calls x {KEYS} keys: {per_call_us:.2f} us per call, {per_call_us / KEYS:.3f} us per point "
            f"amortised; flush after the last call {flush_s:.2f} s")


if __name__ == "__main__":
    try:
        n = int(sys.argv[1]) if len(sys.argv) > 1 else 300_000
    except ValueError:
        sys.exit(f"usage: {sys.argv[0]} [calls]  (calls must be an integer, got {sys.argv[1]!r})")
    if n <= 0:
        sys.exit(f"calls must be positive, got {n}")
    print(main(n))
