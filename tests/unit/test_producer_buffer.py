"""The producer's accumulator, sender and spill, with an in-memory transport (pure logic, no network)."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from producer.accumulator import Accumulator
from producer.errors import BufferFullError, ContractError, ParamConflictError, TransientError
from producer.events import Event, MetricsLogged, Source, TagsSet
from producer.ids import new_id
from producer.run import Producer, Run
from producer.sender import Sender
from producer.spill import Spill
from producer.transport import Refusal


class MemoryTransport:
    """Accepts batches into a list; can be switched 'down' (TransientError) or made to refuse ids."""

    def __init__(self) -> None:
        self.batches: list[list[Event]] = []
        self.down = False
        self.refuse: set[str] = set()
        self.closed = False

    def send(self, events: Sequence[Event]) -> list[Refusal]:
        if self.down:
            raise TransientError("down")
        self.batches.append(list(events))
        return [Refusal(e.id, "refused") for e in events if e.id in self.refuse]

    def close(self) -> None:
        self.closed = True

    def points(self) -> list[tuple[str, str, int, float]]:
        return [(e.entity, k, s, v) for b in self.batches for e in b if isinstance(e.body, MetricsLogged)
                for k, s, v in zip(e.body.keys, e.body.steps, e.body.values)]


def _acc(**kw: object) -> Accumulator:
    return Accumulator(source=Source(rank=1), new_id=new_id, clock_ms=lambda: 5, **kw)  # type: ignore[arg-type]


def test_drain_cuts_columnar_batches_per_run() -> None:
    acc = _acc(max_batch_points=3)
    acc.add_points("r1", ["a", "b"], [0, 0], [1, 1], [1.0, 2.0])
    acc.add_points("r1", ["a", "b"], [1, 1], [2, 2], [3.0, 4.0])
    acc.add_points("r2", ["a"], [0], [1], [9.0])
    tag = acc.add_event("r1", TagsSet(tags=(("x", "y"),)))
    out = acc.drain()
    assert out[0] is tag
    metrics = [e for e in out if isinstance(e.body, MetricsLogged)]
    assert [(e.entity, len(e.body)) for e in metrics] == [("r1", 3), ("r1", 1), ("r2", 1)]
    assert metrics[0].body.values == (1.0, 2.0, 3.0) and metrics[0].source.rank == 1
    assert acc.buffered_points == 0 and acc.drain() == []


def test_full_buffer_blocks_then_raises_typed_error() -> None:
    acc = _acc(max_buffered_points=4, block_timeout_s=0.2)
    acc.add_points("r", ["a"] * 4, [0, 1, 2, 3], [0] * 4, [0.0] * 4)
    t0 = time.monotonic()
    with pytest.raises(BufferFullError):
        acc.add_points("r", ["a"], [4], [0], [0.0])
    assert time.monotonic() - t0 >= 0.2


def test_full_buffer_unblocks_when_drained() -> None:
    acc = _acc(max_buffered_points=2, block_timeout_s=5)
    acc.add_points("r", ["a", "a"], [0, 1], [0, 0], [0.0, 0.0])
    threading.Timer(0.1, acc.drain).start()
    acc.add_points("r", ["a"], [2], [0], [1.0])  # returns once the timer drained
    assert acc.buffered_points == 1


def test_drop_policy_counts_and_warns() -> None:
    acc = _acc(max_buffered_points=1, on_full="drop")
    acc.add_points("r", ["a"], [0], [0], [0.0])
    with pytest.warns(RuntimeWarning, match="dropped 2 points"):
        acc.add_points("r", ["a", "b"], [1, 1], [0, 0], [0.0, 0.0])
    assert acc.dropped_points == 2 and acc.buffered_points == 1


def _producer(tmp_path: Path, transport: MemoryTransport, **kw: object) -> Producer:
    return Producer("http://unused", transport=transport, spill_dir=tmp_path / "spill", linger_ms=10,
                    retry_window_s=0.2, **kw)  # type: ignore[arg-type]


def test_steps_default_to_the_next_step_of_each_key(tmp_path: Path) -> None:
    t = MemoryTransport()
    p = _producer(tmp_path, t)
    run = Run(p, "r" * 32, "1", owner=True)
    run.log_metrics({"a": 1.0, "b": 1.0})
    run.log_metric("a", 2.0)
    run.log_metrics({"a": 3.0}, step=10)
    run.log_metric("a", 4.0)
    run.log_metric("b", 5.0)
    assert p.flush(5)
    assert sorted((k, s, v) for _, k, s, v in t.points()) == [
        ("a", 0, 1.0), ("a", 1, 2.0), ("a", 10, 3.0), ("a", 11, 4.0), ("b", 0, 1.0), ("b", 1, 5.0)]
    p.close(5)


def test_param_conflict_in_the_same_process_raises_at_once(tmp_path: Path) -> None:
    p = _producer(tmp_path, MemoryTransport())
    run = Run(p, "r" * 32, "1", owner=True)
    run.log_params({"lr": 0.1})
    run.log_params({"lr": "0.1"})  # same value: fine
    with pytest.raises(ParamConflictError, match="'lr'"):
        run.log_params({"lr": 0.2})
    p.close(5)


def test_server_refusals_are_reported(tmp_path: Path) -> None:
    t = MemoryTransport()
    p = _producer(tmp_path, t)
    run = Run(p, "r" * 32, "1", owner=True)
    original_add = p.acc.add_event
    ev = original_add("r" * 32, TagsSet(tags=(("a", "b"),)))
    t.refuse.add(ev.id)
    run.log_metric("x", 1.0)
    assert p.flush(5)
    assert [r.event_id for r in p.refusals] == [ev.id]
    p.close(5)


def test_unreachable_backend_spills_then_resends_in_order(tmp_path: Path) -> None:
    t = MemoryTransport()
    t.down = True
    p = _producer(tmp_path, t)
    run = Run(p, "r" * 32, "1", owner=True)
    for step in range(50):
        run.log_metrics({"loss": float(step)}, step=step)
        if step % 10 == 9:
            assert not p.flush(0.3)  # backend down: flush reports not delivered
    spill = Spill(tmp_path / "spill")
    assert spill.count() >= 1 and t.batches == []
    t.down = False
    assert p.flush(10)
    assert spill.count() == 0
    assert sorted(s for _, _, s, _ in t.points()) == list(range(50))
    p.close(5)


def test_close_spills_what_it_cannot_deliver_and_a_new_producer_resends(tmp_path: Path) -> None:
    t = MemoryTransport()
    t.down = True
    p = _producer(tmp_path, t)
    run = Run(p, "r" * 32, "1", owner=True)
    run.log_metrics({"a": 1.0, "b": 2.0}, step=0)
    assert not p.close(0.5)
    assert Spill(tmp_path / "spill").count() >= 1
    t2 = MemoryTransport()
    p2 = _producer(tmp_path, t2)
    assert p2.flush(5)
    assert sorted(k for _, k, _, _ in t2.points()) == ["a", "b"]
    p2.close(5)


def test_whole_batch_refusal_is_not_retried(tmp_path: Path) -> None:
    class Refusing(MemoryTransport):
        def send(self, events: Sequence[Event]) -> list[Refusal]:
            self.batches.append(list(events))
            raise ContractError("400 bad batch")

    t = Refusing()
    p = _producer(tmp_path, t)
    Run(p, "r" * 32, "1", owner=True).log_metric("a", 1.0)
    assert p.flush(5)
    assert len(t.batches) == 1 and len(p.refusals) == 1 and "400" in p.refusals[0].reason
    p.close(5)


def test_spill_claim_release_and_stale_reclaim(tmp_path: Path) -> None:
    s = Spill(tmp_path)
    ev = Event(id=new_id(), type="tags_set", entity="r", ts_ms=1, body=TagsSet(tags=(("a", "b"),)))
    s.write([ev])
    claimed, events = next(s.claim())
    assert events[0].id == ev.id and s.count() == 0
    s.release(claimed)
    assert s.count() == 1
    stale = next(iter(s.pending())).with_suffix(".sending-999999")
    next(iter(s.pending())).rename(stale)
    s.reclaim_stale()
    assert s.count() == 1


def test_sender_thread_survives_and_flush_times_out(tmp_path: Path) -> None:
    acc = _acc()
    t = MemoryTransport()
    t.down = True
    sender = Sender(acc, t, Spill(tmp_path), linger_ms=5, retry_window_s=0.05, spill_retry_s=0.05)
    acc.add_points("r", ["a"], [0], [0], [1.0])
    t0 = time.monotonic()
    assert sender.flush(0.3) is False
    assert time.monotonic() - t0 < 2
    t.down = False
    assert sender.flush(5) is True
    sender.close(5)
    assert t.closed
