"""The one module that turns events into bytes and back (orjson).

A batch on the wire is a JSON array of event objects (see :mod:`producer.events`).
``decode_batch`` never lets one bad event spoil the others: it returns the good
events and a :class:`Rejection` per bad one, carrying its raw bytes and the reason.

Old schema versions are upcast on read by the functions in ``UPCASTERS``,
keyed by ``(type, from_version)``; stored events are never rewritten.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import orjson

from .contract import EVENT_TYPES
from .errors import ContractError, UnknownEventType, UnknownSchemaVersion
from .events import SCHEMA_VERSION, SUPPORTED_VERSIONS, Event, Source

__all__ = [
    "Rejection",
    "encode_event",
    "encode_batch",
    "validated",
    "event_to_wire",
    "event_from_wire",
    "decode_event",
    "decode_batch",
    "decode_items",
    "UPCASTERS",
]

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
#: (event type, version it upgrades *from*) -> function returning the next version's wire dict.
UPCASTERS: dict[tuple[str, int], Upcaster] = {}


class Rejection(NamedTuple):
    """An event that could not be accepted."""

    position: int
    """Position of the event in its batch."""
    event_id: str | None
    """The event's id if it could be read, else None."""
    reason: str
    """Human-readable reason, naming the offending field."""
    raw: bytes
    """The event's raw bytes (re-serialised if the batch itself parsed)."""


def event_to_wire(e: Event) -> dict[str, Any]:
    d: dict[str, Any] = {
        "v": e.schema_version,
        "id": e.id,
        "type": e.type,
        "entity": e.entity,
        "src": {"host": e.source.host, "pid": e.source.pid, "rank": e.source.rank},
        "seq": e.seq,
        "ts": e.ts_ms,
        "body": e.body.to_wire(),
    }
    if e.actor:
        d["actor"] = e.actor
    return d


def encode_event(e: Event) -> bytes:
    return orjson.dumps(event_to_wire(e))


def validated(e: Event) -> Event:
    """``e`` as a consumer would read it back: the contract's decoder run on its wire form.

    Every event the server builds itself passes through here before it is accepted, so nothing
    reaches the log that a rebuild could not decode. Raises :class:`ContractError` naming the field.
    """
    return event_from_wire(orjson.loads(encode_event(e)))


def encode_batch(events: Iterable[Event]) -> bytes:
    return orjson.dumps([event_to_wire(e) for e in events])


def _upcast(d: dict[str, Any]) -> dict[str, Any]:
    v = d.get("v")
    if type(v) is not int:
        raise ContractError("envelope field 'v' (schema version) must be an integer")
    if v not in SUPPORTED_VERSIONS:
        raise UnknownSchemaVersion(f"unknown schema version {v} (this build reads {sorted(SUPPORTED_VERSIONS)})")
    while v < SCHEMA_VERSION:
        step = UPCASTERS.get((d.get("type"), v))  # type: ignore[arg-type]
        if step is None:
            d = {**d, "v": v + 1}  # no body change between these versions
        else:
            d = step(d)
        v = d["v"]
    return d


def event_from_wire(d: Any) -> Event:
    """Validate and build one event from its decoded JSON form."""
    if not isinstance(d, dict):
        raise ContractError(f"an event must be a JSON object, got {type(d).__name__}")
    d = _upcast(d)
    etype = d.get("type")
    cls = EVENT_TYPES.get(etype) if isinstance(etype, str) else None
    if cls is None:
        raise UnknownEventType(f"unknown event type {etype!r}")
    eid, entity, ts, seq = d.get("id"), d.get("entity"), d.get("ts"), d.get("seq", 0)
    if not isinstance(eid, str) or not (8 <= len(eid) <= 64):
        raise ContractError("envelope field 'id' must be a string of 8..64 characters")
    if not isinstance(entity, str) or not entity or len(entity) > 256:
        raise ContractError("envelope field 'entity' must be a non-empty string of at most 256 characters")
    if type(ts) is not int or not 0 <= ts < 2**63:
        raise ContractError("envelope field 'ts' must be a non-negative integer (ms since epoch)")
    if type(seq) is not int or not 0 <= seq < 2**64:
        raise ContractError("envelope field 'seq' must be a non-negative 64-bit integer")
    src = d.get("src") or {}
    if not isinstance(src, dict):
        raise ContractError("envelope field 'src' must be an object")
    host, pid, rank = src.get("host", ""), src.get("pid", 0), src.get("rank", 0)
    if (not isinstance(host, str) or type(pid) is not int or type(rank) is not int
            or not 0 <= pid < 2**32 or not -(2**31) <= rank < 2**31):
        raise ContractError("envelope field 'src' must be {host: str, pid: 32-bit unsigned int, rank: 32-bit int}")
    actor = d.get("actor", "")
    if not isinstance(actor, str):
        raise ContractError("envelope field 'actor' must be a string")
    body = d.get("body")
    if not isinstance(body, dict):
        raise ContractError("envelope field 'body' must be an object")
    try:
        parsed = cls.from_wire(body)
    except ContractError as exc:
        raise ContractError(f"{etype}: {exc}") from exc
    return Event(
        id=eid,
        type=etype,
        entity=entity,
        ts_ms=ts,
        body=parsed,
        source=Source(host=host, pid=pid, rank=rank),
        seq=seq,
        actor=actor,
        schema_version=SCHEMA_VERSION,
    )


def decode_event(raw: bytes) -> Event:
    try:
        d = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"not valid JSON: {exc}") from exc
    return event_from_wire(d)


def decode_batch(raw: bytes) -> tuple[list[Event], list[Rejection]]:
    """Decode a JSON array of events. Raises ContractError only if the batch itself is unreadable."""
    try:
        items = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"batch is not valid JSON: {exc}") from exc
    if not isinstance(items, list):
        raise ContractError("batch must be a JSON array of events")
    return decode_items(items)


def decode_items(items: list[Any]) -> tuple[list[Event], list[Rejection]]:
    events: list[Event] = []
    rejected: list[Rejection] = []
    for i, d in enumerate(items):
        try:
            events.append(event_from_wire(d))
        except ContractError as exc:
            eid = d.get("id") if isinstance(d, dict) and isinstance(d.get("id"), str) else None
            rejected.append(Rejection(i, eid, str(exc), orjson.dumps(d)))  # parsed JSON always re-dumps
    return events, rejected

