"""The Kafka ingest steps that need no broker: decode a record, batch by size and age (injected clock)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from ingest.kafka_batch import PendingBatch
from ingest.kafka_decode import MAX_RAW_BYTES, Decoded, decode_record
from producer import events as ev
from producer.codec import encode_batch, encode_event
from producer.ids import new_id

GOLDEN = Path(__file__).resolve().parent.parent / "fixtures" / "events" / "tracking_metrics_logged_v1.json"


def _metrics(run: str, n: int) -> ev.Event:
    body = ev.MetricsLogged(keys=("loss",) * n, steps=tuple(range(n)), timestamps_ms=(1,) * n, values=(0.5,) * n)
    return ev.Event(id=new_id(), type=body.TYPE, entity=run, ts_ms=1, body=body)


def _tag(run: str) -> ev.Event:
    body = ev.TagsSet(tags=(("a", "b"),))
    return ev.Event(id=new_id(), type=body.TYPE, entity=run, ts_ms=1, body=body)


# ------------------------------------------------------------------ decode


def test_an_array_of_events_decodes_with_its_point_count() -> None:
    events = [_metrics("r1", 3), _tag("r1"), _metrics("r1", 2)]
    got = decode_record("t", 2, 40, encode_batch(events))
    assert (got.partition, got.offset) == (2, 40)
    assert [e.id for e in got.events] == [e.id for e in events]
    assert got.points == 5 and got.rejected == []


def test_a_single_event_object_is_accepted_too() -> None:
    e = _tag("r1")
    got = decode_record("t", 0, 0, encode_event(e))
    assert [x.id for x in got.events] == [e.id] and got.rejected == []


def test_the_golden_v1_payload_decodes() -> None:
    got = decode_record("t", 0, 0, GOLDEN.read_bytes())
    assert len(got.events) == 1 and got.points == 2 and got.rejected == []


@pytest.mark.parametrize(("value", "reason"), [
    pytest.param(b"\x00\xff\xfe garbage", "not valid JSON", id="binary junk"),
    pytest.param(b"", "not valid JSON", id="empty value"),
    pytest.param(b'"a string"', "expected a JSON array of events, got str", id="json string"),
    pytest.param(b"42", "expected a JSON array of events, got int", id="json number"),
    pytest.param(None, "tombstone", id="tombstone"),
])
def test_an_unreadable_record_becomes_one_dead_letter_with_its_raw_bytes(value: bytes | None, reason: str) -> None:
    got = decode_record("events", 3, 17, value)
    assert got.events == [] and got.points == 0
    [dead] = got.rejected
    assert reason in dead.reason and "kafka events[3]@17" in dead.reason
    assert dead.raw == (value or b"") and dead.event_id == ""


def test_bad_events_inside_an_array_do_not_cost_the_good_ones() -> None:
    good = _metrics("r1", 4)
    bad_version = {**orjson.loads(encode_event(_tag("r1"))), "v": 99}
    bad_type = {**orjson.loads(encode_event(_tag("r1"))), "type": "no_such_type"}
    value = b"[" + b",".join([orjson.dumps(bad_version), encode_event(good), orjson.dumps(bad_type), b"7"]) + b"]"
    got = decode_record("t", 0, 5, value)
    assert [e.id for e in got.events] == [good.id] and got.points == 4
    reasons = [d.reason for d in got.rejected]
    assert len(reasons) == 3
    assert "item 0" in reasons[0] and "schema version 99" in reasons[0]
    assert "item 2" in reasons[1] and "no_such_type" in reasons[1]
    assert "item 3" in reasons[2] and "JSON object" in reasons[2]
    assert got.rejected[0].event_id == bad_version["id"]
    assert orjson.loads(got.rejected[0].raw) == bad_version


def test_a_huge_unreadable_record_keeps_a_bounded_raw_payload() -> None:
    got = decode_record("t", 0, 0, b"x" * (MAX_RAW_BYTES + 10))
    [dead] = got.rejected
    assert len(dead.raw) == MAX_RAW_BYTES and "cut to" in dead.reason


# ------------------------------------------------------------------- batch


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _rec(partition: int, offset: int, points: int = 0, events: int = 1) -> Decoded:
    return Decoded(partition, offset, [_metrics("r", max(points, 1)) for _ in range(events)], [], points)


def test_an_empty_batch_is_never_ready_and_has_no_deadline() -> None:
    b = PendingBatch(clock=FakeClock())
    assert not b.ready() and b.remaining_s() is None and len(b) == 0
    assert not b.take()


def test_ready_by_points() -> None:
    b = PendingBatch(max_points=100, max_events=1000, max_wait_ms=10_000, clock=FakeClock())
    b.add(_rec(0, 0, points=60))
    assert not b.ready()
    b.add(_rec(0, 1, points=40))
    assert b.ready()


def test_ready_by_events() -> None:
    b = PendingBatch(max_points=10**9, max_events=3, max_wait_ms=10_000, clock=FakeClock())
    b.add(_rec(0, 0, events=2))
    assert not b.ready()
    b.add(_rec(1, 0, events=1))
    assert b.ready()


def test_ready_by_age_of_the_first_record() -> None:
    clock = FakeClock()
    b = PendingBatch(max_points=10**9, max_events=10**9, max_wait_ms=250, clock=clock)
    b.add(_rec(0, 0))
    clock.now += 0.2
    b.add(_rec(0, 1))
    assert not b.ready() and b.remaining_s() == pytest.approx(0.05)
    clock.now += 0.05
    assert b.ready() and b.remaining_s() == 0.0


def test_take_hands_out_events_in_order_with_committable_offsets_and_resets() -> None:
    clock = FakeClock()
    b = PendingBatch(clock=clock)
    recs = [_rec(0, 7, points=2), _rec(1, 3, points=5), _rec(0, 8, points=1)]
    recs.append(Decoded(1, 4, [], [decode_record("t", 1, 4, b"junk").rejected[0]], 0))
    for r in recs:
        b.add(r)
    got = b.take()
    assert got.offsets == {0: 9, 1: 5}
    assert got.records == 4 and got.points == 8 and len(got.rejected) == 1
    assert [e.id for e in got.events] == [e.id for r in recs for e in r.events]
    assert len(b) == 0 and b.remaining_s() is None and not b.ready()


def test_drop_partitions_forgets_revoked_records_and_keeps_the_age_of_the_rest() -> None:
    clock = FakeClock()
    b = PendingBatch(max_points=10**9, max_events=10**9, max_wait_ms=1000, clock=clock)
    b.add(_rec(0, 1))
    clock.now += 0.5
    b.add(_rec(1, 1))
    b.add(_rec(2, 9))
    assert b.drop_partitions([1, 3]) == 1
    assert b.remaining_s() == pytest.approx(0.5)
    assert b.take().offsets == {0: 2, 2: 10}
    b.add(_rec(5, 0))
    assert b.drop_partitions([5]) == 1 and b.remaining_s() is None


def test_batch_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        PendingBatch(max_points=0)
    with pytest.raises(ValueError):
        PendingBatch(max_wait_ms=-1)
