"""Replay of the registry from its event log: decode + fold of 100,000 events.

Builds a realistic registry history with ``registry.decide`` (200 models:
versions, stage transitions with and without archiving, alias moves, tags,
descriptions, renames, version deletes), encodes it to wire bytes with
``producer.codec``, then times decode + fold of all of it, best of 5: with
``registry.replay`` (the rebuild entry point, cyclic GC paused) and, for
comparison, plain ``decode_batch`` + ``project`` with the GC running.
Target (DESIGN.md): replay of 100,000 events under 1 s on the project's
2-core machine.

    python benchmarks/registry_fold.py [--events 100000] [--models 200] [--repeat 5] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from functools import reduce
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import registry as r
from producer.codec import decode_batch, encode_batch
from producer.errors import RunledgerError
from producer.events import Event
from producer.ids import new_id


def build_log(n_events: int, n_models: int, seed: int = 7) -> list[Event]:
    """A registry history of at least ``n_events`` events, produced by the real ``decide``."""
    rnd = random.Random(seed)
    state, log, now_ms = r.EMPTY, [], 1_763_000_000_000
    names = [f"model-{i:03d}" for i in range(n_models)]
    actors = ("ana", "bo", "ci-bot", "dee")

    def run(cmd: r.Command) -> None:
        nonlocal state, now_ms
        now_ms += rnd.randint(1, 2_000)
        try:
            events = r.decide(state, cmd, now_ms, rnd.choice(actors), new_id)
        except RunledgerError:
            return
        log.extend(events)
        state = reduce(r.apply, events, state)

    for name in names:
        run(r.CreateModel(name=name, description=f"{name} classifier", tags=(("team", "vision"),)))
    while len(log) < n_events:
        i = rnd.randrange(n_models)
        name = names[i]
        model = r.get_model(state, name)
        live = list(model.versions) or [1]
        v = rnd.choice(live[-5:])
        roll = rnd.random()
        if roll < 0.22 or not model.versions:
            run(r.CreateVersion(name=name, source=f"s3://models/{name}/{model.last_version + 1}",
                                run_id=new_id(), tags=(("framework", "torch"),)))
        elif roll < 0.40:
            run(r.TransitionStage(name=name, version=v, stage=rnd.choice(("Staging", "production", "Archived")),
                                  archive_existing_versions=rnd.random() < 0.5))
        elif roll < 0.55:
            run(r.SetAlias(name=name, alias=rnd.choice(("champion", "challenger", "shadow")), version=v))
        elif roll < 0.75:
            run(r.SetVersionTag(name=name, version=v, key=rnd.choice(("eval_acc", "eval_f1", "owner")),
                                value=str(rnd.random())))
        elif roll < 0.85:
            run(r.SetModelTag(name=name, key=rnd.choice(("owner", "tier", "dataset")), value=str(rnd.random())))
        elif roll < 0.93:
            run(r.UpdateVersionDescription(name=name, version=v, description=f"eval run {rnd.random():.6f}"))
        elif roll < 0.97:
            run(r.DeleteVersion(name=name, version=v))
        elif roll < 0.985:
            run(r.UpdateModelDescription(name=name, description=f"retrained {now_ms}"))
        else:
            new_name = f"{name}-v{rnd.randrange(1_000_000)}"
            run(r.RenameModel(name=name, new_name=new_name))
            names[i] = new_name
    return log[:n_events]


def decoded(raw: bytes) -> Iterator[Event]:
    """The events of one wire batch, decoded when first iterated (so inside ``registry.replay``)."""
    events, rejected = decode_batch(raw)
    assert not rejected, rejected[:3]
    yield from events


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        result = None  # free the previous run's output before timing the next
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), times, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--models", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one replay")
    args = ap.parse_args()

    log = build_log(args.events, args.models)
    raw = encode_batch(log)
    expected = r.project(log)
    mix = Counter(e.type for e in log)
    n = len(log)
    print(f"{n:,} events, {len(raw) / 1e6:.1f} MB on the wire, {args.models} models")
    for etype, count in mix.most_common():
        print(f"  {etype:40s} {count:7,d}")
    del log  # a replaying process holds the bytes, not the events
    gc.collect()
    gc.freeze()  # and the setup's survivors are not the collector's business during the timings

    replay_s, runs, state = best_of(args.repeat, lambda: r.replay(decoded(raw)))
    assert state == expected
    plain_s, plain, state = best_of(args.repeat, lambda: r.project(decode_batch(raw)[0]))
    assert state == expected
    del state
    decode_s, _, events = best_of(args.repeat, lambda: decode_batch(raw)[0])
    fold_s, _, _ = best_of(args.repeat, lambda: r.project(events))  # type: ignore[arg-type]
    print(f"decode alone {decode_s:.3f} s, fold alone {fold_s:.3f} s ({n / fold_s:,.0f} events/s)")
    print(f"decode+fold, cyclic GC running:  {plain_s:.3f} s = {n / plain_s:,.0f} events/s "
          f"(runs: {', '.join(f'{t:.3f}' for t in plain)})")
    print(f"registry.replay (decode+fold, GC paused), best of {args.repeat}: {replay_s:.3f} s = "
          f"{n / replay_s:,.0f} events/s (runs: {', '.join(f'{t:.3f}' for t in runs)})")
    live = r.list_models(expected)
    print(f"final state: {len(live)} live models, {sum(len(m.versions) for m in live):,} live versions")

    if args.profile:
        prof = cProfile.Profile()
        prof.runcall(lambda: r.replay(decoded(raw)))
        pstats.Stats(prof).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
