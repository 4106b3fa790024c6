"""The producer's Kafka adapter without a broker: settings from the URI, packing events into keyed messages."""

from __future__ import annotations

import orjson
import pytest

from producer import events as ev
from producer.codec import decode_batch, encode_event
from producer.errors import ContractError, TransientError
from producer.ids import new_id
from producer.kafka_transport import KafkaSettings, KafkaTransport, LoopThread, pack_messages
from producer.transport import transport_for


def _metrics(run: str, n: int) -> ev.Event:
    body = ev.MetricsLogged(keys=("loss",) * n, steps=tuple(range(n)), timestamps_ms=(1,) * n, values=(0.25,) * n)
    return ev.Event(id=new_id(), type=body.TYPE, entity=run, ts_ms=1, body=body)


# ---------------------------------------------------------------- settings


def test_defaults_are_safe_for_apache_kafka() -> None:
    s = KafkaSettings.parse("k1:9092, k2:9093")
    assert s.bootstrap == "k1:9092,k2:9093"
    assert (s.topic, s.acks, s.enable_idempotence, s.compression) == ("runledger.events", "all", True, "none")
    kw = s.producer_kwargs()
    assert kw["acks"] == "all" and kw["enable_idempotence"] is True and kw["compression_type"] is None
    assert kw["max_request_size"] > s.max_message_bytes


def test_query_string_then_keywords() -> None:
    s = KafkaSettings.parse("k:9092?acks=1&enable_idempotence=false&topic=x&linger_ms=20&compression=gzip",
                            topic="y", delivery_timeout_s=3)
    assert (s.acks, s.enable_idempotence, s.topic, s.linger_ms, s.compression) == ("1", False, "y", 20, "gzip")
    assert s.delivery_timeout_s == 3.0
    assert s.producer_kwargs()["acks"] == 1


@pytest.mark.parametrize(("target", "match"), [
    pytest.param("", "at least one host:port", id="empty"),
    pytest.param("localhost", "not host:port", id="no port"),
    pytest.param("h:notaport", "not host:port", id="bad port"),
    pytest.param("h:70000", "not host:port", id="port out of range"),
    pytest.param("h:9092?acks=2", "acks must be one of", id="bad acks"),
    pytest.param("h:9092?compression=brotli", "compression must be one of", id="bad compression"),
    pytest.param("h:9092?enable_idempotence=maybe", "true or false", id="bad bool"),
    pytest.param("h:9092?linger_ms=soon", "must be a number", id="bad number"),
    pytest.param("h:9092?linger_ms=-1", "must be positive", id="negative"),
    pytest.param("h:9092?topic=", "topic must not be empty", id="empty topic"),
    pytest.param("h:9092?acks=all&colour=blue", "unknown Kafka setting", id="unknown setting"),
])
def test_bad_settings_are_refused_with_the_reason(target: str, match: str) -> None:
    with pytest.raises(ContractError, match=match):
        KafkaSettings.parse(target)


def test_transport_for_dispatches_kafka_uris_and_never_connects_eagerly() -> None:
    t = transport_for("kafka://127.0.0.1:1?enable_idempotence=false&delivery_timeout_s=0.5&request_timeout_s=0.3")
    try:
        assert isinstance(t, KafkaTransport)
        assert t.settings.bootstrap == "127.0.0.1:1" and t.settings.enable_idempotence is False
        with pytest.raises(TransientError):  # nothing listens on port 1: retry later, never a crash
            t.send([_metrics("r", 1)])
    finally:
        t.close()


# ----------------------------------------------------------------- packing


def test_events_are_grouped_by_entity_in_order_and_keyed_by_it() -> None:
    a1, b1, a2, b2 = _metrics("run-a", 2), _metrics("run-b", 3), _metrics("run-a", 1), _metrics("run-b", 1)
    packed = pack_messages([a1, b1, a2, b2], 1_000_000)
    assert packed.refusals == []
    assert [(m.key, m.event_ids) for m in packed.messages] == [(b"run-a", (a1.id, a2.id)), (b"run-b", (b1.id, b2.id))]
    events, rejected = decode_batch(packed.messages[0].value)
    assert [e.id for e in events] == [a1.id, a2.id] and rejected == []


def test_messages_are_split_to_stay_under_the_limit() -> None:
    events = [_metrics("run", 50) for _ in range(10)]
    one = len(encode_event(events[0]))
    limit = one * 3 + 10
    packed = pack_messages(events, limit)
    assert all(len(m.value) <= limit for m in packed.messages)
    assert [i for m in packed.messages for i in m.event_ids] == [e.id for e in events]
    assert len(packed.messages) == 4
    for m in packed.messages:
        assert [e.id for e in decode_batch(m.value)[0]] == list(m.event_ids)


def test_an_event_larger_than_a_message_is_refused_by_name_not_dropped_silently() -> None:
    small, huge = _metrics("run", 1), _metrics("run", 5000)
    packed = pack_messages([small, huge], 10_000)
    assert [m.event_ids for m in packed.messages] == [(small.id,)]
    [refusal] = packed.refusals
    assert refusal.event_id == huge.id and "max_message_bytes=10000" in refusal.reason


def test_nothing_to_pack() -> None:
    assert pack_messages([], 100) == ([], [])


def test_message_values_are_plain_wire_json() -> None:
    e = _metrics("run", 2)
    [m] = pack_messages([e], 10_000).messages
    assert orjson.loads(m.value) == [orjson.loads(encode_event(e))]


# -------------------------------------------------------------------- loop


def test_loop_thread_runs_coroutines_and_bounds_them() -> None:
    import asyncio

    loop = LoopThread("test-loop")
    try:
        async def answer() -> int:
            return 42

        assert loop.run(answer(), 1.0) == 42
        with pytest.raises(TransientError, match=r"within 0\.1 s"):
            loop.run(asyncio.sleep(5), 0.1)
    finally:
        loop.close()


@pytest.mark.parametrize("codec", ["lz4", "snappy", "zstd"])
def test_a_compression_whose_codec_is_missing_is_refused_at_parse_not_spilled_forever(codec: str) -> None:
    from aiokafka import codec as codecs

    if getattr(codecs, f"has_{codec}")():
        assert KafkaSettings.parse(f"h:9092?compression={codec}").producer_kwargs()["compression_type"] == codec
    else:
        with pytest.raises(ContractError, match="pip install cramjam"):
            KafkaSettings.parse(f"h:9092?compression={codec}")


def test_gzip_needs_nothing_extra() -> None:
    assert KafkaSettings.parse("h:9092?compression=gzip").producer_kwargs()["compression_type"] == "gzip"
