"""Ingest step 2, batch: gather decoded records until the batch is big enough or old enough (no I/O).

A batch is ready when it holds ``max_points`` metric points or
``max_events`` events, or when ``max_wait_ms`` passed since its first record
arrived. Offsets travel with the data: :meth:`PendingBatch.take` hands out
the events together with the next offsets they make committable, so the
commit step can only ever commit what the insert step wrote. Time comes from
an injected clock (seconds, monotonic).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from producer.events import Event

from .kafka_decode import Decoded
from .kafka_offsets import committable
from .writer import DeadLetter

__all__ = ["ReadyBatch", "PendingBatch"]


@dataclass(slots=True)
class ReadyBatch:
    """What one insert writes, and the offsets it makes committable."""

    events: list[Event] = field(default_factory=list)
    rejected: list[DeadLetter] = field(default_factory=list)
    offsets: dict[int, int] = field(default_factory=dict)
    """partition -> next offset to read once this batch is written."""
    records: int = 0
    points: int = 0

    def __bool__(self) -> bool:
        return self.records > 0


class PendingBatch:
    """The batch being filled. Not thread-safe: one consumer loop owns it."""

    def __init__(self, *, max_points: int = 50_000, max_events: int = 5_000, max_wait_ms: float = 250.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if max_points < 1 or max_events < 1 or max_wait_ms < 0:
            raise ValueError("max_points and max_events must be >= 1 and max_wait_ms >= 0")
        self.max_points = max_points
        self.max_events = max_events
        self.max_wait_s = max_wait_ms / 1000
        self._clock = clock
        self._records: list[Decoded] = []
        self._events = 0
        self._points = 0
        self._started_at: float | None = None

    def __len__(self) -> int:
        """Records held."""
        return len(self._records)

    def add(self, record: Decoded) -> None:
        if self._started_at is None:
            self._started_at = self._clock()
        self._records.append(record)
        self._events += len(record.events)
        self._points += record.points

    def ready(self) -> bool:
        if not self._records:
            return False
        return (self._points >= self.max_points or self._events >= self.max_events
                or self.remaining_s() == 0.0)

    def remaining_s(self) -> float | None:
        """Seconds until the batch is due by age; None while empty."""
        if self._started_at is None:
            return None
        return max(0.0, self._started_at + self.max_wait_s - self._clock())

    def take(self) -> ReadyBatch:
        """Everything held, as one batch (in arrival order); the pending batch starts empty again."""
        records, self._records = self._records, []
        self._events = self._points = 0
        self._started_at = None
        out = ReadyBatch(offsets=committable((r.partition, r.offset) for r in records), records=len(records))
        for r in records:
            out.events.extend(r.events)
            out.rejected.extend(r.rejected)
            out.points += r.points
        return out

    def drop_partitions(self, partitions: Iterable[int]) -> int:
        """Forget records of partitions this worker no longer owns; returns how many were dropped.

        Their offsets were never committed, so the partition's new owner reads them again.
        """
        gone = set(partitions)
        kept = [r for r in self._records if r.partition not in gone]
        dropped = len(self._records) - len(kept)
        self._records = []
        self._events = self._points = 0
        started = self._started_at
        self._started_at = None
        for r in kept:
            self.add(r)
        if kept:
            self._started_at = started
        return dropped
