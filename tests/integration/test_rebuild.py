"""``rebuild`` on real chDB, in-process (each scenario in a spawned child, see ``inproc``).

* the tracking fold equals what the ClickHouse projections hold, and a rebuild recomputes them identically;
* a log row that no longer decodes goes to ``dead_letter`` (origin ``rebuild``, kind ``decode``) once,
  and everything else is rebuilt;
* a rebuild that fails before the swap leaves the live projections untouched and no shadow tables;
* readers during a rebuild never see a missing or half-built projection (the swap is one statement).
"""

from __future__ import annotations

import random
import threading
from pathlib import Path
from typing import Any

import pytest
from inproc import in_child

pytestmark = pytest.mark.integration

_TABLES = ("run_fields", "run_params", "run_tags", "experiment_fields", "experiment_tags", "metric_points",
           "run_inputs", "model_metrics")


def _open(path: str) -> tuple[Any, Any]:
    from ingest.schema import apply_schema
    from ingest.sink import ClickHouseStore
    from ingest.writer import Writer

    store = ClickHouseStore(f"chdb://{path}", "runledger")
    apply_schema(store)
    return store, Writer(store)


def _history(writer: Any, seed: int, steps: int) -> list[Any]:
    """Random valid tracking commands through ``decide``; the events written through the writer."""
    from producer.errors import RunledgerError
    from producer.events import Event, Source
    from producer.ids import new_id
    from query.tracking_view import ClickHouseTrackingView
    from tracking import (
        CreateRun,
        DeleteExperiment,
        DeleteRunTag,
        EnsureExperiment,
        LogBatch,
        MetricPoint,
        RenameExperiment,
        RestoreExperiment,
        SetExperimentTag,
        UpdateRun,
        decide,
    )

    rnd = random.Random(seed)
    view = ClickHouseTrackingView(writer.store)
    written: list[Any] = []
    exps: list[str] = []
    runs: list[str] = []
    for i in range(steps):
        pick = rnd.randrange(8)
        if pick == 0 or not exps:
            cmd: Any = EnsureExperiment(name=rnd.choice("abc"))
        elif pick == 1:
            cmd = RenameExperiment(experiment_id=rnd.choice(exps), new_name=rnd.choice("abcxyz") + str(i % 3))
        elif pick == 2:
            cmd = rnd.choice([DeleteExperiment, RestoreExperiment])(experiment_id=rnd.choice(exps))
        elif pick == 3:
            cmd = SetExperimentTag(experiment_id=rnd.choice(exps), key=rnd.choice("xy"), value="v" * rnd.randrange(9000))
        elif pick == 4 or not runs:
            cmd = CreateRun(run_id=new_id(), experiment_id=rnd.choice(exps), start_time_ms=1_000 + i)
        elif pick == 5:
            cmd = LogBatch(run_id=rnd.choice(runs), params=((rnd.choice("pq"), str(rnd.randrange(2))),),
                           tags=((rnd.choice("st"), str(i)),),
                           metrics=tuple(MetricPoint(key=rnd.choice(["loss", "acc"]), value=rnd.random(),
                                                     timestamp_ms=1_000 + i, step=s, model_id=rnd.choice(["", "m-1"]))
                                         for s in range(rnd.randrange(4))))
        elif pick == 6:
            cmd = UpdateRun(run_id=rnd.choice(runs), status=rnd.choice(["RUNNING", "FINISHED"]),
                            name=rnd.choice(["", f"n{i}"]))
        else:
            cmd = DeleteRunTag(run_id=rnd.choice(runs), key=rnd.choice("st"))
        try:
            changes = decide(view, cmd, now_ms=2_000 + i, artifact_root="/art")
        except RunledgerError:
            continue
        events = [Event(id=new_id(), type=c.body.TYPE, entity=c.entity, ts_ms=2_000 + i, body=c.body,
                        source=Source(host="t", pid=1, rank=0)) for c in changes]
        result = writer.write(events)
        written += result.accepted
        for e in result.accepted:
            if e.type == "experiment_created" and e.entity not in exps:
                exps.append(e.entity)
            if e.type == "run_created":
                runs.append(e.entity)
    return written


def _snapshot(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    out = {}
    for table in _TABLES:
        cols = ", ".join(c for (c,) in store.query_rows(
            "SELECT name FROM system.columns WHERE database = 'runledger' AND table = {t:String} "
            "ORDER BY position", {"t": table}))
        out[table] = sorted(store.query_rows(f"SELECT {cols} FROM {table} FINAL"), key=repr)
    out["latest_metrics"] = sorted(store.query_rows(
        "SELECT run_id, key, value, step, count FROM latest_metrics"), key=repr)
    return out


def fold_equals_projections_and_rebuild_is_identical(path: str) -> int:
    from ingest.rebuild import rebuild
    from query.tracking_view import ClickHouseTrackingView
    from tracking import fold

    store, writer = _open(path)
    events = _history(writer, seed=7, steps=220)
    state = fold(events)
    view = ClickHouseTrackingView(store)
    for rid, run in state.runs.items():
        got = view.run(rid)
        assert got is not None, rid
        assert (got.name, got.status, got.lifecycle_stage, got.params, got.tags, got.end_time) == (
            run.name, run.status, run.lifecycle_stage, run.params, run.tags, run.end_time), rid
    for eid, exp in state.experiments.items():
        got_exp = view.experiment(eid)
        assert got_exp is not None
        assert (got_exp.name, got_exp.lifecycle_stage, got_exp.tags, got_exp.artifact_location) == (
            exp.name, exp.lifecycle_stage, exp.tags, exp.artifact_location), eid
    before = _snapshot(store)
    report = rebuild(store, chunk_events=37)
    assert report.events == len(events) and report.dead_letters == 0
    assert _snapshot(store) == before
    leftovers = store.query_rows("SELECT name FROM system.tables WHERE database = 'runledger' "
                                 "AND name LIKE '%\\_\\_rebuild'")
    assert leftovers == []
    store.close()
    return len(events)


def undecodable_rows_are_dead_lettered_once_and_the_rest_rebuilt(path: str) -> dict[str, Any]:
    from ingest.rebuild import rebuild

    store, writer = _open(path)
    events = _history(writer, seed=3, steps=80)
    before = _snapshot(store)
    # rows a rebuild can no longer read: a body the contract refuses, a type nobody knows, broken JSON
    store.command(
        "INSERT INTO events (event_id, schema_version, type, entity, source_host, source_pid, source_rank, seq, ts, "
        "actor, body) VALUES "
        "('bad00000000000000000000000000001', 1, 'experiment_tag_set', 'e1', 'h', 1, 0, 0, now64(3), '', "
        "'{\"key\": \"k\", \"value\": 12}'), "
        "('bad00000000000000000000000000002', 1, 'no_such_type', 'e1', 'h', 1, 0, 0, now64(3), '', '{}'), "
        "('bad00000000000000000000000000003', 1, 'tags_set', 'r1', 'h', 1, 0, 0, now64(3), '', '{not json')")
    report = rebuild(store)
    assert report.dead_letters == 3 and report.events == len(events)
    assert _snapshot(store) == before
    rows = store.query_rows("SELECT event_id, kind, reason FROM dead_letter WHERE origin = 'rebuild' ORDER BY event_id")
    assert [(r[0][-1], r[1]) for r in rows] == [("1", "decode"), ("2", "decode"), ("3", "decode")]
    assert "value" in rows[0][2] and "no_such_type" in rows[1][2]
    again = rebuild(store)
    assert again.dead_letters == 0  # already recorded: not dead-lettered twice
    assert store.query_rows("SELECT count() FROM dead_letter WHERE origin = 'rebuild'")[0][0] == 3
    store.close()
    return {"dead_letters": report.dead_letters}


def failed_rebuild_leaves_live_projections_untouched(path: str) -> bool:
    from ingest.rebuild import rebuild

    store, writer = _open(path)
    _history(writer, seed=11, steps=60)
    before = _snapshot(store)

    def boom() -> None:
        raise RuntimeError("disk full (simulated)")

    try:
        rebuild(store, before_swap=boom)
    except RuntimeError as exc:
        assert "disk full" in str(exc)
    else:
        raise AssertionError("rebuild did not fail")
    assert _snapshot(store) == before
    assert store.query_rows("SELECT name FROM system.tables WHERE database = 'runledger' "
                            "AND name LIKE '%\\_\\_rebuild'") == []
    # and live ingest still works afterwards (the MV still feeds latest_metrics)
    _history(writer, seed=12, steps=30)
    assert store.query_rows("SELECT count() FROM latest_metrics")[0][0] >= len(before["latest_metrics"])
    store.close()
    return True


def readers_never_see_a_partial_projection(path: str) -> int:
    from ingest.rebuild import rebuild

    store, writer = _open(path)
    _history(writer, seed=5, steps=150)
    expected = store.query_rows("SELECT count() FROM run_fields FINAL")[0][0]
    expected_metrics = store.query_rows("SELECT count() FROM latest_metrics")[0][0]
    seen: list[tuple[int, int]] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append((store.query_rows("SELECT count() FROM run_fields FINAL")[0][0],
                         store.query_rows("SELECT count() FROM latest_metrics")[0][0]))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(3):
            rebuild(store, chunk_events=10)
    finally:
        stop.set()
        reader.join()
    assert seen and all(s == (expected, expected_metrics) for s in seen), [s for s in seen if s != seen[0]][:5]
    store.close()
    return len(seen)


def test_fold_equals_the_projections_and_rebuild_recomputes_them_identically(tmp_path: Path) -> None:
    assert in_child(fold_equals_projections_and_rebuild_is_identical, str(tmp_path / "chdb")) > 50


def test_undecodable_log_rows_go_to_dead_letters_and_the_rest_is_rebuilt(tmp_path: Path) -> None:
    assert in_child(undecodable_rows_are_dead_lettered_once_and_the_rest_rebuilt, str(tmp_path / "chdb")) == {
        "dead_letters": 3}


def test_a_failed_rebuild_leaves_the_live_projections_untouched(tmp_path: Path) -> None:
    assert in_child(failed_rebuild_leaves_live_projections_untouched, str(tmp_path / "chdb")) is True


def test_readers_during_a_rebuild_see_old_or_new_never_partial(tmp_path: Path) -> None:
    assert in_child(readers_never_see_a_partial_projection, str(tmp_path / "chdb")) > 0
