"""``rebuild``: recompute every projection from the ``events`` log alone, into shadow tables swapped in at once.

Steps (``T`` is ClickHouse's clock):

1. Create a shadow ``<table>__rebuild`` for each projection table (same structure and engine) and a
   shadow materialized view feeding ``latest_metrics_agg__rebuild`` from ``metric_points__rebuild``.
2. Replay the whole log (``FINAL``, in ``(entity, event_id)`` chunks) through the live projection code
   into the shadows. A log row that no longer decodes (a contract tightened since it was written, a
   corrupted body) goes to ``dead_letter`` with origin ``rebuild``, kind ``decode`` and its reason, once;
   everything else is rebuilt.
3. Catch up: events that reached the log since the replay began (``ingested_at`` from ``T0`` minus a
   margin) are projected into the shadows again — the tables are idempotent, so twice is harmless.
4. One ``EXCHANGE TABLES a AND a__rebuild, b AND b__rebuild, ...`` statement swaps every pair at once:
   readers see either all old or all new projections, never a mix or an empty table.
5. Catch up again into the now-live tables: a live write that inserted its log row before the swap may
   have put its projection rows into the old tables; replaying the log since step 3 began puts them in
   the new ones. Then the shadows (now the old data) are dropped.

If anything before the swap fails, the shadows are dropped and the live projections are untouched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from producer.errors import ContractError

from .eventlog import EVENT_COLUMNS, row_to_event
from .rows import project_rows
from .schema import MATERIALIZED_VIEWS, PROJECTION_TABLES
from .sink import ClickHouseStore
from .writer import DeadLetter, Writer

__all__ = ["rebuild", "RebuildReport", "SHADOW", "ORIGIN"]

log = logging.getLogger("runledger.rebuild")

#: Suffix of the shadow tables a rebuild fills before swapping them in.
SHADOW = "__rebuild"
#: ``dead_letter.origin`` of log rows that no longer decode.
ORIGIN = "rebuild"
#: How far before a catch-up's start ``ingested_at`` is trusted (clock skew between writers, slow inserts).
CATCH_UP_MARGIN_MS = 60_000


class RebuildReport(NamedTuple):
    events: int
    """Events in the log that were rebuilt (each once)."""
    points: int
    seconds: float
    dead_letters: int = 0
    """Log rows that no longer decode, sent to ``dead_letter`` by this rebuild."""
    caught_up: int = 0
    """Events projected again by the catch-ups (written while the rebuild ran, or within the margin)."""


def _now_ms(store: ClickHouseStore) -> int:
    return int(store.query_rows("SELECT toUnixTimestamp64Milli(now64(3))")[0][0])


def _drop_shadows(store: ClickHouseStore) -> None:
    for view in MATERIALIZED_VIEWS:
        store.command(f"DROP VIEW IF EXISTS {view}{SHADOW}")
    for table in PROJECTION_TABLES:
        store.command(f"DROP TABLE IF EXISTS {table}{SHADOW}")


def _create_shadows(store: ClickHouseStore) -> None:
    _drop_shadows(store)  # leftovers of a rebuild that died half-way
    for table in PROJECTION_TABLES:
        store.command(f"CREATE TABLE {table}{SHADOW} AS {table}")
    for make_view in MATERIALIZED_VIEWS.values():
        store.command(make_view(SHADOW))


class _Replay:
    """Projects log rows into tables with a suffix, dead-lettering rows that no longer decode."""

    def __init__(self, store: ClickHouseStore, writer: Writer) -> None:
        self.store, self.writer = store, writer
        self.events = self.points = self.dead = 0
        self._already_dead = {r[0] for r in store.query_rows(
            "SELECT DISTINCT event_id FROM dead_letter WHERE origin = {o:String}", {"o": ORIGIN})}

    def project(self, rows: Sequence[Sequence[Any]], suffix: str, *, count: bool = True) -> int:
        """Project ``rows``; returns how many decoded. ``count``: add them to the report (catch-ups re-project
        events the full replay may have seen already, so they are counted apart)."""
        events, bad = [], []
        for r in rows:
            try:
                events.append(row_to_event(r))
            except (ContractError, ValueError, TypeError, KeyError) as exc:
                if r[0] not in self._already_dead:
                    self._already_dead.add(r[0])
                    bad.append(DeadLetter(r[0], f"log row no longer decodes: {exc}", str(r[-1]).encode(), "decode"))
        if bad:
            self.writer.dead_letter(bad, origin=ORIGIN)
            self.dead += len(bad)
        batch = project_rows(events, include_log=False)
        self.writer.insert_batch(batch, suffix=suffix)
        if count:
            self.events += len(events)
            self.points += batch.rows("metric_points")
        return len(events)

    def full(self, suffix: str, chunk: int, progress: Callable[[int], None] | None) -> None:
        last = ("", "")
        while True:
            rows = self.store.query_rows(
                f"SELECT {EVENT_COLUMNS} FROM events FINAL "
                "WHERE (entity, event_id) > ({e:String}, {i:String}) ORDER BY entity, event_id LIMIT {n:UInt32}",
                {"e": last[0], "i": last[1], "n": chunk},
            )
            if not rows:
                return
            self.project(rows, suffix)
            last = (rows[-1][3], rows[-1][0])
            if progress is not None:
                progress(self.events)

    def since(self, since_ms: int, suffix: str, chunk: int) -> int:
        """Replay events ingested at or after ``since_ms`` (minus the margin). Returns how many."""
        n = 0
        last = ("", "")
        while True:
            rows = self.store.query_rows(
                f"SELECT {EVENT_COLUMNS} FROM events FINAL "
                "WHERE ingested_at >= fromUnixTimestamp64Milli({t:Int64}, 'UTC') "
                "AND (entity, event_id) > ({e:String}, {i:String}) ORDER BY entity, event_id LIMIT {n:UInt32}",
                {"t": since_ms - CATCH_UP_MARGIN_MS, "e": last[0], "i": last[1], "n": chunk},
            )
            if not rows:
                return n
            n += self.project(rows, suffix, count=False)
            last = (rows[-1][3], rows[-1][0])


def rebuild(store: ClickHouseStore, *, chunk_events: int = 2000,
            progress: Callable[[int], None] | None = None,
            before_swap: Callable[[], None] | None = None) -> RebuildReport:
    """Rebuild every projection from the log into shadows and swap them in atomically (see module doc).

    ``before_swap`` is a test hook, called after the shadows are complete and before the exchange.
    """
    t0 = time.perf_counter()
    writer = Writer(store)
    replay = _Replay(store, writer)
    started_ms = _now_ms(store)
    _create_shadows(store)
    try:
        replay.full(SHADOW, chunk_events, progress)
        caught_up_ms = _now_ms(store)
        caught_up = replay.since(started_ms, SHADOW, chunk_events)
        if before_swap is not None:
            before_swap()
        store.command("EXCHANGE TABLES " + ", ".join(f"{t} AND {t}{SHADOW}" for t in PROJECTION_TABLES))
    except BaseException:
        _drop_shadows(store)
        raise
    caught_up += replay.since(caught_up_ms, "", chunk_events)
    _drop_shadows(store)
    report = RebuildReport(replay.events, replay.points, time.perf_counter() - t0, replay.dead, caught_up)
    log.info("rebuilt projections from %d events (%d points, %d dead-lettered) in %.2f s", report.events,
             report.points, report.dead_letters, report.seconds)
    return report
