"""Table tests of the registry's position check at ingest (ingest/registry_sequence.py), no engine."""

from __future__ import annotations

from typing import Any

import pytest

from ingest.registry_sequence import check_registry_sequence, recorded_positions, registry_entities
from producer.events import Event, ParamsLogged
from producer.registry_events import ModelVersionCreated, RegisteredModelCreated, RegisteredModelTagSet


def reg(event_id: str, model: str, seq: int, version: int | None = None) -> Event:
    body = (RegisteredModelTagSet(key="k", value=event_id) if version is None
            else ModelVersionCreated(version=version, source="s3://m"))
    return Event(id=event_id, type=body.TYPE, entity=model, ts_ms=1, body=body, seq=seq)


def other(event_id: str, run: str = "run-1") -> Event:
    return Event(id=event_id, type=ParamsLogged.TYPE, entity=run, ts_ms=1, body=ParamsLogged(params=(("a", "1"),)),
                 seq=99)


CASES: list[tuple[str, list[Event], dict[str, int], set[str], list[str], dict[str, str]]] = [
    # name, batch, recorded positions, ids already in the log, accepted ids, refused id -> reason
    ("a new model's first events, in order", [reg("a1", "m", 1), reg("a2", "m", 2), reg("a3", "m", 3)], {}, set(),
     ["a1", "a2", "a3"], {}),
    ("next position after the recorded ones", [reg("b", "m", 6)], {"m": 5}, set(), ["b"], {}),
    ("a stale position is refused", [reg("c", "m", 5)], {"m": 5}, set(), [],
     {"c": "model changed concurrently (expected position 6, got 5)"}),
    ("a position from the future is refused", [reg("d", "m", 9)], {"m": 5}, set(), [],
     {"d": "model changed concurrently (expected position 6, got 9)"}),
    ("two processes racing for one position: the first wins", [reg("x", "m", 3), reg("y", "m", 3)], {"m": 2}, set(),
     ["x"], {"y": "model changed concurrently (expected position 4, got 3)"}),
    ("after a refusal, the rest of that model's events in the batch are refused too",
     [reg("x", "m", 3), reg("y1", "m", 3), reg("y2", "m", 4), reg("z", "n", 1)], {"m": 2}, set(), ["x", "z"],
     {"y1": "model changed concurrently (expected position 4, got 3)",
      "y2": "model changed concurrently (an earlier event of model m in the same batch was refused; "
            "expected position 4, got 4)"}),
    ("models are counted apart", [reg("m1", "m", 1), reg("n1", "n", 1), reg("m2", "m", 2), reg("n2", "n", 2)],
     {}, set(), ["m1", "n1", "m2", "n2"], {}),
    ("a redelivered event passes and does not advance the count",
     [reg("old", "m", 2), reg("new", "m", 3)], {"m": 2}, {"old"}, ["old", "new"], {}),
    ("a redelivered batch whose events are all in the log passes whole",
     [reg("a1", "m", 1), reg("a2", "m", 2)], {"m": 2}, {"a1", "a2"}, ["a1", "a2"], {}),
    ("an unsequenced event (seq 0) is accepted and counted", [reg("u", "m", 0), reg("s", "m", 4)], {"m": 2}, set(),
     ["u", "s"], {}),
    ("other domains' events pass untouched, whatever their seq", [other("p"), reg("r", "m", 1), other("q")], {},
     set(), ["p", "r", "q"], {}),
]


@pytest.mark.parametrize("name,batch,positions,known,accepted,refused", CASES, ids=[c[0] for c in CASES])
def test_check_registry_sequence(name: str, batch: list[Event], positions: dict[str, int], known: set[str],
                                 accepted: list[str], refused: dict[str, str]) -> None:
    ok, bad = check_registry_sequence(batch, positions, known)
    assert [e.id for e in ok] == accepted
    assert {c.event.id: c.reason for c in bad} == refused
    assert [c.event.id for c in bad] == [e.id for e in batch if e.id in refused]  # batch order


def test_it_does_not_mutate_the_recorded_positions() -> None:
    positions = {"m": 1}
    check_registry_sequence([reg("a", "m", 2)], positions, set())
    assert positions == {"m": 1}


class FakeStore:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows
        self.queries: list[tuple[str, dict[str, Any] | None]] = []

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        self.queries.append((sql, parameters))
        return self.rows


def test_recorded_positions_reads_nothing_for_a_batch_without_registry_events() -> None:
    store = FakeStore([])
    assert recorded_positions(store, [other("p")]) == ({}, set())
    assert store.queries == []


def test_recorded_positions_asks_for_the_batch_models_and_ids() -> None:
    store = FakeStore([("m", 4, ["a"])])
    created = Event(id="c", type=RegisteredModelCreated.TYPE, entity="n", ts_ms=1,
                    body=RegisteredModelCreated(name="x"), seq=1)
    assert recorded_positions(store, [reg("a", "m", 4), created, other("p")]) == ({"m": 4}, {"a"})
    (_, params), = store.queries
    assert params == {"models": ["m", "n"], "ids": ["a", "c"]}
    assert registry_entities([reg("a", "m", 4), created, other("p")]) == {"m", "n"}
