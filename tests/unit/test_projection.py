"""Events -> rows (the projection) and the pure run fold that as_of uses."""

from __future__ import annotations

from ingest.rows import project_rows
from producer import events as ev
from producer.events import Event
from producer.ids import id_version
from query.run_state import fold_runs
from tracking import check_conflicts

RUN = "a" * 32


def _mk(i: int, body: ev.Body, entity: str = RUN, rank: int = 0) -> Event:
    # ids increase with i, as UUIDv7 ids of one source do
    return Event(id=f"{i:016x}" + "0" * 16, type=body.TYPE, entity=entity, ts_ms=1000 + i, body=body,
                 source=ev.Source(host="h", pid=1, rank=rank))


HISTORY = [
    _mk(1, ev.ExperimentCreated(name="exp"), entity="7"),
    _mk(2, ev.RunCreated(experiment_id="7", name="r", tags=(("team", "nlp"),), start_time_ms=1000)),
    _mk(3, ev.ParamsLogged(params=(("lr", "0.1"),))),
    _mk(4, ev.TagsSet(tags=(("stage", "sft"), ("team", "cv")))),
    _mk(5, ev.MetricsLogged(keys=("loss", "loss"), steps=(0, 1), timestamps_ms=(1, 2), values=(1.0, 0.5)), rank=2),
    _mk(6, ev.TagsDeleted(keys=("stage",))),
    _mk(7, ev.RunEnded(status="FINISHED", end_time_ms=2000)),
    _mk(8, ev.RunDeleted()),
    _mk(9, ev.RunRestored()),
]


def test_rows_for_every_table() -> None:
    b = project_rows(HISTORY)
    assert b.rows("events") == len(HISTORY)
    points = b.table("metric_points").columns
    assert points["rank"] == [2, 2] and points["value"] == [1.0, 0.5]
    names = [name for name, _ in b.tables()]
    assert names[0] == "events" and {"experiment_fields", "run_fields", "run_params", "run_tags"} <= set(names)
    assert id_version(HISTORY[3].id) == 4 and id_version("not-hex") == 0
    assert project_rows(HISTORY, include_log=False).rows("events") == 0


def test_fold_is_newest_event_wins() -> None:
    states = fold_runs(HISTORY)
    s = states[RUN]
    assert s.status == "FINISHED" and s.end_time == 2000
    assert s.lifecycle_stage == "active"  # deleted, then restored
    assert s.tags == {"team": "cv"}  # stage deleted, team overwritten
    assert s.params == {"lr": "0.1"}


def test_fold_at_every_prefix_matches_the_history() -> None:
    expected_status = {2: "RUNNING", 7: "FINISHED"}
    for n in range(2, len(HISTORY) + 1):
        s = fold_runs(HISTORY[:n])[RUN]
        if n in expected_status:
            assert s.status == expected_status[n]
        assert ("stage" in s.tags) == (4 <= n < 6)
        assert s.lifecycle_stage == ("deleted" if n == 8 else "active")


def test_fold_is_order_independent_for_versioned_fields() -> None:
    assert fold_runs(reversed(HISTORY))[RUN] == fold_runs(HISTORY)[RUN]


def test_param_conflicts_are_refused_but_same_value_is_not() -> None:
    again = _mk(10, ev.ParamsLogged(params=(("lr", "0.1"),)))
    clash = _mk(11, ev.ParamsLogged(params=(("lr", "0.2"), ("new", "1"))))
    ok, bad = check_conflicts([again, clash], {(RUN, "lr"): "0.1"}, {})
    assert ok == [again]
    assert len(bad) == 1 and "'lr'" in bad[0].reason and "'0.2'" in bad[0].reason


def test_conflicts_within_one_batch_first_wins() -> None:
    a = _mk(1, ev.ParamsLogged(params=(("k", "1"),)))
    b = _mk(2, ev.ParamsLogged(params=(("k", "2"),)))
    ok, bad = check_conflicts([a, b], {}, {})
    assert ok == [a] and bad[0].event is b


def test_experiment_create_is_an_idempotent_ensure() -> None:
    create = _mk(1, ev.ExperimentCreated(name="exp"), entity="7")
    other_name = _mk(2, ev.ExperimentCreated(name="renamed-away"), entity="7")
    taken = _mk(3, ev.ExperimentCreated(name="exp"), entity="8")
    ok, bad = check_conflicts([create], {}, {"exp": "7"}, {"7": "exp"})
    assert ok == [] and bad == []  # already exists: dropped, not refused
    ok, bad = check_conflicts([other_name, taken], {}, {"exp": "7"}, {"7": "exp"})
    assert ok == [] and len(bad) == 2 and {c.kind for c in bad} == {"name"}
    assert "already exists" in bad[0].reason and "already used" in bad[1].reason
