"""Offset arithmetic for the Kafka path (pure functions, table-tested).

Vocabulary, as in Kafka: a *committed* / *next* offset is the offset of the
next record to read, i.e. one past the last record processed; an *end* offset
(high watermark) is one past the last record in the partition. Partitions are
plain ints: one ingest worker consumes one topic.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["committable", "caught_up", "lag", "advance"]


def committable(positions: Iterable[tuple[int, int]]) -> dict[int, int]:
    """``(partition, record offset)`` pairs of processed records -> partition -> next offset to read.

    The next offset is the highest processed offset + 1 (records of one
    partition arrive in order; gaps left by compaction or transaction markers
    are skipped by the broker, so they never need committing on their own).
    """
    out: dict[int, int] = {}
    for partition, offset in positions:
        if offset < 0:
            raise ValueError(f"record offset must be >= 0, got {offset} (partition {partition})")
        nxt = offset + 1
        if nxt > out.get(partition, 0):
            out[partition] = nxt
    return out


def advance(current: Mapping[int, int], update: Mapping[int, int]) -> dict[int, int]:
    """Merge watermarks: per partition the larger next offset wins (watermarks never move back)."""
    out = dict(current)
    for partition, nxt in update.items():
        if nxt > out.get(partition, 0):
            out[partition] = nxt
    return out


def caught_up(produced: Mapping[int, int], committed: Mapping[int, int]) -> bool:
    """True once every produced record is processed.

    ``produced`` maps partition -> offset of the *last record written* (not a
    next offset); ``committed`` maps partition -> next offset to read.
    """
    return all(committed.get(partition, 0) > offset for partition, offset in produced.items())


def lag(end: Mapping[int, int], committed: Mapping[int, int]) -> dict[int, int]:
    """Records not yet processed per partition: end offset - committed offset, never below zero."""
    return {partition: max(0, e - committed.get(partition, 0)) for partition, e in sorted(end.items())}
