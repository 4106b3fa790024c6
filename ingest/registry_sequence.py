"""The registry's optimistic-concurrency check at ingest: one position per event in its model's stream.

Every registry event's envelope ``seq`` is its position in its model's
stream (the model's stable id is the ``entity``): the n-th event of a model
carries ``seq = n``, 1-based. The writer is the arbiter: it accepts a
registry event only if its ``seq`` is one more than the number of that
model's events already in the log (counting the ones accepted earlier in the
same batch). Two API processes that decided against the same state produce
the same position; whichever reaches the writer first wins, the other is
refused with ``model changed concurrently (expected position N, got M)``,
and its service re-reads the model and decides again. In Kafka mode this is
sound because one model's events share a partition (key = entity), which
one ingest worker writes serially.

Rules, in batch order, for registry events only (other events pass):

* an event whose id is already in the log is a redelivery: accepted (the
  writer re-inserts it idempotently, so a crash between the log row and its
  projections heals) and it does not advance the count;
* after a refusal, every later event of the same model in the batch is
  refused too: one command's events travel together (one Kafka record per
  entity, one append), so the tail of a refused command can never land
  without its head;
* ``seq == 0`` marks an *unsequenced* event (an importer, a test seeding the
  log, a producer outside the service): accepted without a check, and
  counted. The registry service always sequences its events.

:func:`check_registry_sequence` is pure (table tests in
``tests/unit/test_registry_sequence.py``); :func:`recorded_positions` reads
the counts it needs from ClickHouse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from typing import Any, Protocol

from producer.events import Event
from producer.registry_events import REGISTRY_EVENT_TYPES
from tracking import Conflict

__all__ = ["check_registry_sequence", "recorded_positions", "registry_entities", "REGISTRY_TYPES_SQL"]

#: ``type IN (...)`` list of the registry's event types, for SQL.
REGISTRY_TYPES_SQL = ", ".join(f"'{t}'" for t in sorted(REGISTRY_EVENT_TYPES))


class _Rows(Protocol):
    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...


def registry_entities(events: Iterable[Event]) -> set[str]:
    """Model ids that registry events in ``events`` belong to."""
    return {e.entity for e in events if e.type in REGISTRY_EVENT_TYPES}


def check_registry_sequence(
    events: list[Event], positions: Mapping[str, int], known_ids: AbstractSet[str]
) -> tuple[list[Event], list[Conflict]]:
    """Split ``events`` into accepted and out-of-sequence, in order (rules in the module docstring).

    ``positions``: model id -> number of its registry events already in the
    log (absent = 0). ``known_ids``: ids of this batch's events that are
    already in the log.
    """
    count = dict(positions)
    refused_models: set[str] = set()
    ok: list[Event] = []
    bad: list[Conflict] = []
    for e in events:
        if e.type not in REGISTRY_EVENT_TYPES or e.id in known_ids:
            ok.append(e)
            continue
        model = e.entity
        expected = count.get(model, 0) + 1
        if model in refused_models:
            bad.append(Conflict(e, f"model changed concurrently (an earlier event of model {model} in the same "
                                   f"batch was refused; expected position {expected}, got {e.seq})", "sequence"))
            continue
        if e.seq not in (0, expected):
            refused_models.add(model)
            bad.append(Conflict(e, f"model changed concurrently (expected position {expected}, got {e.seq})",
                                "sequence"))
            continue
        count[model] = expected
        ok.append(e)
    return ok, bad


def recorded_positions(store: _Rows, events: list[Event]) -> tuple[dict[str, int], set[str]]:
    """What :func:`check_registry_sequence` needs from the log: per-model event counts and the known ids.

    Reads nothing when ``events`` hold no registry event.
    """
    models = registry_entities(events)
    if not models:
        return {}, set()
    ids = [e.id for e in events if e.entity in models]
    rows = store.query_rows(
        "SELECT entity, uniqExact(event_id), groupUniqArrayIf(event_id, has({ids:Array(String)}, event_id)) "
        f"FROM events WHERE entity IN {{models:Array(String)}} AND type IN ({REGISTRY_TYPES_SQL}) GROUP BY entity",
        {"models": sorted(models), "ids": ids},
    )
    return {r[0]: int(r[1]) for r in rows}, {i for r in rows for i in r[2]}
