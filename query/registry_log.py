"""The registry's :class:`~registry.service.EventReader` port over the ClickHouse ``events`` table.

Reads registry event types only, deduplicated (``FINAL``: the log is a
ReplacingMergeTree keyed by ``(entity, event_id)``), in ``(entity,
event_id)`` order — the registry service keeps each model's ids increasing
along its stream, so that is stream order. Long reads are paged by keyset
and decoded lazily, so a replay folds while it reads.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ingest.eventlog import EVENT_COLUMNS, row_to_event
from ingest.registry_sequence import REGISTRY_TYPES_SQL
from ingest.sink import Store
from producer.events import Event

__all__ = ["ClickHouseRegistryLog"]

_NAMING_TYPES = "'registered_model_created', 'registered_model_renamed'"


class ClickHouseRegistryLog:
    """Registry events as the log holds them (see the module docstring)."""

    def __init__(self, store: Store, *, page_events: int = 10_000) -> None:
        self.store = store
        self.page_events = page_events

    def events(self, models: Sequence[str] | None = None, *, until_ms: int | None = None) -> Iterator[Event]:
        where: list[str] = [f"type IN ({REGISTRY_TYPES_SQL})"]
        params: dict[str, Any] = {"n": self.page_events}
        if models is not None:
            if not models:
                return
            where.append("entity IN {models:Array(String)}")
            params["models"] = list(models)
        if until_ms is not None:
            where.append("ts <= fromUnixTimestamp64Milli({t:Int64}, 'UTC')")
            params["t"] = until_ms
        last = ("", "")
        while True:
            rows = self.store.query_rows(
                f"SELECT {EVENT_COLUMNS} FROM events FINAL WHERE {' AND '.join(where)} "
                "AND (entity, event_id) > ({e:String}, {i:String}) ORDER BY entity, event_id LIMIT {n:UInt32}",
                {**params, "e": last[0], "i": last[1]},
            )
            for r in rows:
                yield row_to_event(r)
            if len(rows) < self.page_events:
                return
            last = (rows[-1][3], rows[-1][0])

    def events_after(self, model_id: str, position: int) -> list[Event]:
        rows = self.store.query_rows(
            f"SELECT {EVENT_COLUMNS} FROM events FINAL WHERE entity = {{m:String}} AND type IN ({REGISTRY_TYPES_SQL}) "
            "ORDER BY event_id LIMIT 1000000000 OFFSET {p:UInt64}",
            {"m": model_id, "p": position},
        )
        return [row_to_event(r) for r in rows]

    def heads(self) -> dict[str, int]:
        rows = self.store.query_rows(
            f"SELECT entity, uniqExact(event_id) FROM events WHERE type IN ({REGISTRY_TYPES_SQL}) GROUP BY entity")
        return {r[0]: int(r[1]) for r in rows}

    def claimants(self, name: str, *, until_ms: int | None = None) -> list[str]:
        params: dict[str, Any] = {"name": name}
        when = ""
        if until_ms is not None:
            when = " AND ts <= fromUnixTimestamp64Milli({t:Int64}, 'UTC')"
            params["t"] = until_ms
        rows = self.store.query_rows(
            f"SELECT DISTINCT entity FROM events WHERE type IN ({_NAMING_TYPES}){when} "
            "AND JSONExtractString(body, if(type = 'registered_model_created', 'name', 'new_name')) = {name:String}",
            params,
        )
        return sorted(r[0] for r in rows)
