"""Ingest step 1, decode: one Kafka record -> contract-valid events and dead letters (pure, no I/O).

A record's value is what :mod:`producer.kafka_transport` writes: a JSON array
of events (a single JSON object is accepted too). Nothing a record holds can
stop its partition: unreadable bytes, a tombstone, a non-array, or a bad event
inside an array each become a :class:`~ingest.writer.DeadLetter` carrying the
raw bytes and a reason that names the record (``topic[partition]@offset``);
the good events of the same record still go through.
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

from producer.codec import decode_items
from producer.events import Event, MetricsLogged

from .writer import DeadLetter

__all__ = ["Decoded", "decode_record", "MAX_RAW_BYTES"]

#: Longest raw payload kept in a dead letter (the rest is cut, the reason says so).
MAX_RAW_BYTES = 1_000_000


class Decoded(NamedTuple):
    """One Kafka record after decoding."""

    partition: int
    offset: int
    """The record's own offset; the committable offset is ``offset + 1``."""
    events: list[Event]
    rejected: list[DeadLetter]
    points: int
    """Metric points carried by ``events``."""


def decode_record(topic: str, partition: int, offset: int, value: bytes | None) -> Decoded:
    """Decode one record's value; never raises for bad input."""
    where = f"kafka {topic}[{partition}]@{offset}"
    if value is None:
        return _dead(partition, offset, f"{where}: record has no value (tombstone); expected a JSON array", b"")
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        return _dead(partition, offset, f"{where}: not valid JSON ({exc})", value)
    if isinstance(parsed, dict):
        parsed = [parsed]
    if not isinstance(parsed, list):
        return _dead(partition, offset, f"{where}: expected a JSON array of events, got {type(parsed).__name__}", value)
    events, rejections = decode_items(parsed)
    rejected = [DeadLetter(r.event_id or "", f"{where} item {r.position}: {r.reason}", r.raw, "decode")
                for r in rejections]
    points = sum(len(e.body) for e in events if isinstance(e.body, MetricsLogged))
    return Decoded(partition, offset, events, rejected, points)


def _dead(partition: int, offset: int, reason: str, raw: bytes) -> Decoded:
    if len(raw) > MAX_RAW_BYTES:
        reason += f" (raw payload of {len(raw)} bytes cut to {MAX_RAW_BYTES})"
        raw = raw[:MAX_RAW_BYTES]
    return Decoded(partition, offset, [], [DeadLetter("", reason, raw, "decode")], 0)
