"""Ingest step 3, insert: one ready batch -> ClickHouse, then its offsets into ``ingest_offsets``.

Order matters and is the whole point: events and projections first (the
same :class:`~ingest.writer.Writer` as embedded mode, idempotent by event id
and natural key), then dead letters, then the ``ingest_offsets`` rows; the
Kafka commit comes after this returns. A crash anywhere before the commit
means the records are read and written again, which changes nothing a query
sees.

If ClickHouse refuses the batch itself (a :class:`StorageError`, not a
connection problem), the batch is written event by event and the events it
still refuses are dead-lettered with ClickHouse's reason, so one event the
engine cannot take never stalls its partition. Connection trouble
(:class:`TransientError`) propagates: the caller retries the whole batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

from producer.codec import encode_event
from producer.events import Event, MetricsLogged

from .kafka_batch import ReadyBatch
from .sink import StorageError, Store
from .writer import DeadLetter, Writer

__all__ = ["InsertReport", "write_batch", "record_offsets", "read_offsets", "ORIGIN"]

log = logging.getLogger("runledger.ingest")

#: ``dead_letter.origin`` of everything refused on the Kafka path.
ORIGIN = "kafka"


class InsertReport(NamedTuple):
    events: int
    """Events accepted (written)."""
    points: int
    """Metric points carried by the accepted events."""
    dead_letters: int
    """Records or events refused: undecodable, conflicting, or refused by ClickHouse."""


def write_batch(writer: Writer, store: Store, batch: ReadyBatch, *, group: str, topic: str) -> InsertReport:
    """Write ``batch`` and record its offsets. Raises TransientError if ClickHouse is unreachable."""
    try:
        accepted, refused = _write(writer, batch.events)
    except StorageError as exc:
        log.warning("ClickHouse refused a batch of %d events (%s); writing them one by one", len(batch.events), exc)
        accepted, refused = _write_each(writer, batch.events)
    writer.dead_letter(batch.rejected, origin=ORIGIN)
    record_offsets(store, group, topic, batch.offsets)
    points = sum(len(e.body) for e in accepted if isinstance(e.body, MetricsLogged))
    return InsertReport(len(accepted), points, len(batch.rejected) + refused)


def _write(writer: Writer, events: Sequence[Event]) -> tuple[list[Event], int]:
    if not events:
        return [], 0
    result = writer.write(events, origin=ORIGIN)
    return result.accepted, len(result.rejected)


def _write_each(writer: Writer, events: Sequence[Event]) -> tuple[list[Event], int]:
    accepted: list[Event] = []
    refused = 0
    for e in events:
        try:
            ok, bad = _write(writer, [e])
        except StorageError as exc:
            writer.dead_letter([DeadLetter(e.id, f"ClickHouse refused the event: {exc}", encode_event(e),
                                           "storage")],
                               origin=ORIGIN)
            refused += 1
            continue
        accepted += ok
        refused += bad
    return accepted, refused


def record_offsets(store: Store, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Insert one ``ingest_offsets`` row per partition (ReplacingMergeTree keeps the highest)."""
    if not offsets:
        return
    parts = sorted(offsets)
    store.insert_columns("ingest_offsets", {
        "consumer_group": [group] * len(parts),
        "topic": [topic] * len(parts),
        "partition": parts,
        "next_offset": [offsets[p] for p in parts],
    })


def read_offsets(store: Store, group: str, topic: str) -> dict[int, int]:
    """partition -> highest next offset recorded by ``group`` for ``topic``."""
    rows = store.query_rows(
        "SELECT partition, max(next_offset) FROM ingest_offsets "
        "WHERE consumer_group = {g:String} AND topic = {t:String} GROUP BY partition",
        {"g": group, "t": topic},
    )
    return {int(r[0]): int(r[1]) for r in rows}
