"""The one writer of runledger: validated events -> the log and every projection.

Embedded mode calls it from the group-commit thread; Kafka mode from each
ingest worker. It is idempotent: writing the same events again (a retried
request, a redelivered Kafka batch) leaves every query unchanged, because each
table is keyed by event id or natural key (see :mod:`ingest.schema`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from producer.codec import Rejection, encode_event
from producer.events import Event
from tracking import check_conflicts, experiment_ids, experiment_names, param_runs

from .batch import Batch
from .registry_sequence import check_registry_sequence, recorded_positions
from .rows import project_rows
from .sink import Store

__all__ = ["Writer", "WriteResult", "DeadLetter", "WriterStats"]

log = logging.getLogger("runledger.ingest")


class DeadLetter(NamedTuple):
    """One event (or unreadable message) refused, with why; ``kind`` names the rule (``param``, ``name``,
    ``sequence``, ``decode``, ...) so readers can tell conflicts from corruption."""

    event_id: str
    reason: str
    raw: bytes
    kind: str = ""


@dataclass(slots=True)
class WriteResult:
    accepted: list[Event] = field(default_factory=list)
    rejected: list[DeadLetter] = field(default_factory=list)


@dataclass(slots=True)
class WriterStats:
    events_written: int = 0
    points_written: int = 0
    dead_letters: int = 0
    batches: int = 0


class Writer:
    """Appends events to ClickHouse: conflict check, rows, inserts, dead letters."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.stats = WriterStats()
        self._stats_lock = threading.Lock()
        self.listeners: list[Callable[[list[Event]], None]] = []
        """Called with the accepted events after every successful write, before ``write`` returns (the
        in-memory read model of ``query.read_model`` listens here)."""

    # ------------------------------------------------------------------ write

    def write(self, events: Sequence[Event], *, origin: str = "http") -> WriteResult:
        """Append ``events`` (already contract-valid). Returns what was accepted and what was refused.

        Raises TransientError / StorageError if ClickHouse failed: nothing is
        acknowledged then, and the caller retries the whole call (idempotent).
        """
        ok, rejected = self.check(events)
        self.insert_batch(project_rows(ok))
        self.dead_letter(rejected, origin=origin)
        for listener in self.listeners:
            listener(ok)
        with self._stats_lock:
            self.stats.events_written += len(ok)
            self.stats.batches += 1
        return WriteResult(ok, rejected)

    def check(self, events: Sequence[Event]) -> tuple[list[Event], list[DeadLetter]]:
        """Deduplicate by id and split into events that fit recorded state and conflicts. Reads, never writes.

        The Kafka gateway calls it before producing, so an HTTP caller hears of a conflict at once.
        """
        unique: dict[str, Event] = {}
        for e in events:
            unique.setdefault(e.id, e)
        batch = list(unique.values())
        ok, conflicts = check_conflicts(batch, self._recorded_params(batch), self._experiment_owners(batch),
                                       self._existing_experiments(batch))
        ok, out_of_sequence = check_registry_sequence(ok, *recorded_positions(self.store, ok))
        return ok, [DeadLetter(c.event.id, c.reason, encode_event(c.event), c.kind)
                    for c in (*conflicts, *out_of_sequence)]

    def insert_batch(self, batch: Batch, *, suffix: str = "") -> None:
        """Insert every non-empty table of ``batch``: the log first, then projections.

        ``suffix`` targets the projection tables ``<table><suffix>`` (``rebuild``'s shadows); the log
        itself is never written with a suffix.
        """
        for table, rows in batch.tables():
            if suffix and table == "events":
                raise ValueError("the event log has no shadow table")
            self.store.insert_columns(table + suffix, rows.columns)
        n_points = batch.rows("metric_points")
        if n_points:
            with self._stats_lock:
                self.stats.points_written += n_points

    def dead_letter(self, items: Iterable[DeadLetter | Rejection], *, origin: str) -> None:
        rows: dict[str, list[object]] = {"origin": [], "kind": [], "event_id": [], "reason": [], "raw": []}
        for it in items:
            rows["origin"].append(origin)
            rows["kind"].append(getattr(it, "kind", "") or ("decode" if isinstance(it, Rejection) else ""))
            rows["event_id"].append(it.event_id or "")
            rows["reason"].append(it.reason)
            rows["raw"].append(it.raw.decode("utf-8", "replace"))
        if rows["origin"]:
            self.store.insert_columns("dead_letter", rows)
            with self._stats_lock:
                self.stats.dead_letters += len(rows["origin"])
            log.warning("dead-lettered %d event(s) from %s: %s", len(rows["origin"]), origin, rows["reason"][0])

    # ------------------------------------------------------------- state reads

    def _recorded_params(self, events: list[Event]) -> dict[tuple[str, str], str]:
        runs = param_runs(events)
        if not runs:
            return {}
        rows = self.store.query_rows(
            "SELECT run_id, key, value FROM run_params FINAL WHERE run_id IN {runs:Array(String)}",
            {"runs": sorted(runs)},
        )
        return {(r[0], r[1]): r[2] for r in rows}

    def _experiment_owners(self, events: list[Event]) -> dict[str, str]:
        names = experiment_names(events)
        if not names:
            return {}
        rows = self.store.query_rows(
            "SELECT value, experiment_id FROM experiment_fields FINAL "
            "WHERE field = 'name' AND value IN {names:Array(String)}",
            {"names": sorted(names)},
        )
        return {r[0]: r[1] for r in rows}

    def _existing_experiments(self, events: list[Event]) -> dict[str, str]:
        ids = experiment_ids(events)
        if not ids:
            return {}
        rows = self.store.query_rows(
            "SELECT experiment_id, value FROM experiment_fields FINAL "
            "WHERE field = 'name' AND experiment_id IN {ids:Array(String)}",
            {"ids": sorted(ids)},
        )
        return {r[0]: r[1] for r in rows}
