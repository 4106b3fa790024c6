"""``rebuild``: drop every projection and recompute it from the ``events`` log alone.

Safe while live ingest runs: projections are truncated *before* the log is
read, and the writer inserts the log row before its projections, so an event
written meanwhile is projected twice at worst — which the idempotent tables
absorb.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import NamedTuple

from .eventlog import EVENT_COLUMNS, row_to_event
from .rows import project_rows
from .schema import PROJECTION_TABLES
from .sink import ClickHouseStore
from .writer import Writer

__all__ = ["rebuild", "RebuildReport", "EXTRA_PROJECTION_TABLES"]

log = logging.getLogger("runledger.rebuild")

#: Other domains (the registry) add their projection tables here.
EXTRA_PROJECTION_TABLES: list[str] = []


class RebuildReport(NamedTuple):
    events: int
    points: int
    seconds: float


def rebuild(store: ClickHouseStore, *, chunk_events: int = 2000,
            progress: Callable[[int], None] | None = None) -> RebuildReport:
    """Truncate the projections, then replay the log through the live projection code."""
    t0 = time.perf_counter()
    for table in (*PROJECTION_TABLES, *EXTRA_PROJECTION_TABLES):
        store.command(f"TRUNCATE TABLE IF EXISTS {table}")
    writer = Writer(store)
    last: tuple[str, str] = ("", "")
    n_events = n_points = 0
    while True:
        rows = store.query_rows(
            f"SELECT {EVENT_COLUMNS} FROM events FINAL "
            "WHERE (entity, event_id) > ({e:String}, {i:String}) ORDER BY entity, event_id LIMIT {n:UInt32}",
            {"e": last[0], "i": last[1], "n": chunk_events},
        )
        if not rows:
            break
        events = [row_to_event(r) for r in rows]
        batch = project_rows(events, include_log=False)
        n_points += len(batch.metric_points)
        writer.insert_batch(batch)
        n_events += len(events)
        last = (rows[-1][3], rows[-1][0])
        if progress is not None:
            progress(n_events)
    report = RebuildReport(n_events, n_points, time.perf_counter() - t0)
    log.info("rebuilt projections from %d events (%d points) in %.2f s", *report)
    return report
