"""The tracking domain without any engine: ``decide`` (MLflow's rules and wording) and the fold."""

from __future__ import annotations

import contextlib
import random
from dataclasses import asdict

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from producer import events as ev
from producer.errors import AlreadyExistsError, ContractError, InvalidStateError, NotFoundError, ParamConflictError
from producer.events import Event, Source
from tracking import (
    Command,
    CreateExperiment,
    CreateRun,
    DeleteExperiment,
    DeleteExperimentTag,
    DeleteRunTag,
    EnsureExperiment,
    LogBatch,
    LogParam,
    MetricPoint,
    RenameExperiment,
    RestoreExperiment,
    SetExperimentTag,
    TrackingState,
    UpdateRun,
    apply,
    decide,
    fold,
)


class Ledger:
    """decide + mint + fold, as the server does, with increasing event ids."""

    def __init__(self) -> None:
        self.state = TrackingState()
        self.events: list[Event] = []
        self.now = 1_000

    def run(self, cmd: Command) -> list[Event]:
        self.now += 1
        out = []
        for ch in decide(self.state, cmd, now_ms=self.now, artifact_root="/art"):
            e = Event(id=f"{len(self.events) + 1:016x}" + "0" * 16, type=ch.body.TYPE, entity=ch.entity,
                      ts_ms=self.now, body=ch.body, source=Source(host="h", pid=1, rank=0))
            apply(self.state, e)
            self.events.append(e)
            out.append(e)
        return out


def test_create_then_create_again_is_already_exists_with_mlflows_message() -> None:
    led = Ledger()
    [e] = led.run(CreateExperiment(name="exp"))
    assert isinstance(e.body, ev.ExperimentCreated) and e.body.artifact_location == f"/art/{e.entity}"
    with pytest.raises(AlreadyExistsError, match=r"Experiment\(name=exp\) already exists\."):
        led.run(CreateExperiment(name="exp"))
    assert led.run(EnsureExperiment(name="exp")) == []  # ensure: the existing one, nothing recorded


def test_rename_frees_the_old_name_for_a_new_experiment_with_a_new_id() -> None:
    led = Ledger()
    [a] = led.run(CreateExperiment(name="a"))
    led.run(RenameExperiment(experiment_id=a.entity, new_name="b"))
    [again] = led.run(EnsureExperiment(name="a"))
    assert again.entity != a.entity
    assert led.state.experiment_by_name("a").experiment_id == again.entity  # type: ignore[union-attr]
    assert led.state.experiment_by_name("b").experiment_id == a.entity  # type: ignore[union-attr]


def test_invalid_names_and_states() -> None:
    led = Ledger()
    with pytest.raises(ContractError, match="Invalid experiment name"):
        led.run(CreateExperiment(name=""))
    with pytest.raises(ContractError, match="Expects a string"):
        led.run(CreateExperiment(name=3))
    [a] = led.run(CreateExperiment(name="a"))
    led.run(DeleteExperiment(experiment_id=a.entity))
    with pytest.raises(InvalidStateError, match="non-active"):
        led.run(RenameExperiment(experiment_id=a.entity, new_name="z"))
    with pytest.raises(ContractError, match="must be in the 'active' state"):
        led.run(CreateRun(run_id="r1", experiment_id=a.entity, start_time_ms=1))
    with pytest.raises(NotFoundError):
        led.run(RenameExperiment(experiment_id="404", new_name="z"))
    [default] = led.run(CreateExperiment(name="Default"))
    assert default.entity == "0"
    assert [type(e.body).__name__ for e in led.run(DeleteExperiment(experiment_id="0"))] == ["ExperimentDeleted"]


def test_deleting_an_experiment_deletes_its_runs_and_restoring_restores_them() -> None:
    led = Ledger()
    [a] = led.run(CreateExperiment(name="a"))
    led.run(CreateRun(run_id="r1", experiment_id=a.entity, start_time_ms=1))
    led.run(CreateRun(run_id="r2", experiment_id=a.entity, start_time_ms=1))
    led.run(DeleteExperiment(experiment_id=a.entity))
    assert {r.lifecycle_stage for r in led.state.runs.values()} == {"deleted"}
    led.run(RestoreExperiment(experiment_id=a.entity))
    assert {r.lifecycle_stage for r in led.state.runs.values()} == {"active"}


def test_params_are_immutable_with_mlflows_message_and_the_same_value_is_a_no_op() -> None:
    led = Ledger()
    [a] = led.run(CreateExperiment(name="a"))
    led.run(CreateRun(run_id="r", experiment_id=a.entity, start_time_ms=1))
    led.run(LogBatch(run_id="r", params=(("lr", "0.1"),)))
    assert led.run(LogBatch(run_id="r", params=(("lr", "0.1"),))) == []
    with pytest.raises(ParamConflictError, match=r"Changing param values is not allowed\. Params were already "
                                                 r"logged='\[\{'key': 'lr', 'old_value': '0.1', 'new_value': '0.2'\}\]' "
                                                 r"for run ID='r'\.$"):
        led.run(LogBatch(run_id="r", params=(("lr", "0.2"),)))  # log-batch's words, even for one key
    with pytest.raises(ParamConflictError, match=r"Param with key='lr' was already logged with value='0.1' for run "
                                                 r"ID='r'\. Attempted logging new value '0.2'\.$"):
        led.run(LogParam(run_id="r", key="lr", value="0.2"))  # log-parameter's
    assert led.run(LogParam(run_id="r", key="lr", value="0.1")) == []
    with pytest.raises(ContractError, match="Duplicate parameter keys"):
        led.run(LogBatch(run_id="r", params=(("x", "1"), ("x", "2"))))


def test_log_batch_groups_metrics_by_model_and_dataset_and_validates_values() -> None:
    led = Ledger()
    [a] = led.run(CreateExperiment(name="a"))
    led.run(CreateRun(run_id="r", experiment_id=a.entity, start_time_ms=1))
    events = led.run(LogBatch(run_id="r", metrics=(
        MetricPoint(key="loss", value=1.0, timestamp_ms=5, step=0),
        MetricPoint(key="acc", value="NaN", timestamp_ms=5, step=0, model_id="m-1", dataset_name="d"),
        MetricPoint(key="loss", value=0.5, timestamp_ms=6, step=1))))
    bodies = [e.body for e in events]
    assert [(b.model_id, b.keys) for b in bodies if isinstance(b, ev.MetricsLogged)] == [
        ("", ("loss", "loss")), ("m-1", ("acc",))]
    with pytest.raises(ContractError, match="metric"):
        led.run(LogBatch(run_id="r", metrics=(MetricPoint(key="x", value="high", timestamp_ms=1),)))
    with pytest.raises(ContractError):
        led.run(LogBatch(run_id="r", metrics=(MetricPoint(key="x", value=1.0, timestamp_ms=2**63),)))


def test_tags_and_runs() -> None:
    led = Ledger()
    [a] = led.run(CreateExperiment(name="a", tags=(("t", "1"),)))
    with pytest.raises(NotFoundError, match="No tag with name: nope"):
        led.run(DeleteExperimentTag(experiment_id=a.entity, key="nope"))
    led.run(SetExperimentTag(experiment_id=a.entity, key="u", value="2"))
    led.run(DeleteExperimentTag(experiment_id=a.entity, key="t"))
    assert led.state.experiments[a.entity].tags == {"u": "2"}
    [created] = led.run(CreateRun(run_id="r", experiment_id=a.entity, start_time_ms=1, user="ann"))
    assert isinstance(created.body, ev.RunCreated) and created.body.name  # a generated adjective-noun-N name
    led.run(LogBatch(run_id="r", tags=(("mlflow.runName", "renamed"), ("k", "v"))))
    assert led.state.runs["r"].name == "renamed"
    led.run(DeleteRunTag(run_id="r", key="k"))
    assert "k" not in led.state.runs["r"].tags
    led.run(UpdateRun(run_id="r", status="FINISHED"))
    assert led.state.runs["r"].status == "FINISHED" and led.state.runs["r"].end_time == led.now
    with pytest.raises(ContractError, match="status"):
        led.run(UpdateRun(run_id="r", status="DONE"))


# -------------------------------------------------------- fold properties

_NAMES = ["a", "b", "c"]


def _random_history(seed: int, steps: int) -> Ledger:
    """A valid history: random commands through decide, refusals skipped (as a server answers 4xx)."""
    rnd = random.Random(seed)
    led = Ledger()
    for i in range(steps):
        exps = list(led.state.experiments)
        runs = list(led.state.runs)
        choice = rnd.randrange(9)
        cmd: Command
        if choice == 0 or not exps:
            cmd = EnsureExperiment(name=rnd.choice(_NAMES))
        elif choice == 1:
            cmd = RenameExperiment(experiment_id=rnd.choice(exps), new_name=rnd.choice(_NAMES) + str(i % 2))
        elif choice == 2:
            cmd = rnd.choice([DeleteExperiment, RestoreExperiment])(experiment_id=rnd.choice(exps))
        elif choice == 3:
            cmd = SetExperimentTag(experiment_id=rnd.choice(exps), key=rnd.choice("xyz"), value=str(i))
        elif choice == 4 or not runs:
            cmd = CreateRun(run_id=f"r{i}", experiment_id=rnd.choice(exps), start_time_ms=i)
        elif choice == 5:
            cmd = LogBatch(run_id=rnd.choice(runs), params=((rnd.choice("pq"), str(rnd.randrange(2))),),
                           tags=((rnd.choice("st"), str(i)),))
        elif choice == 6:
            cmd = UpdateRun(run_id=rnd.choice(runs), status=rnd.choice(["RUNNING", "FINISHED", "FAILED"]),
                            name=rnd.choice(["", "n" + str(i)]))
        elif choice == 7:
            cmd = DeleteRunTag(run_id=rnd.choice(runs), key=rnd.choice("st"))
        else:
            cmd = LogBatch(run_id=rnd.choice(runs), tags=(("mlflow.runName", f"tag-named-{i}"),))
        with contextlib.suppress(ContractError, NotFoundError, AlreadyExistsError, InvalidStateError,
                                 ParamConflictError):
            led.run(cmd)
    return led


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(5, 80), shuffle=st.integers(0, 10_000))
def test_fold_in_any_order_equals_fold_in_log_order(seed: int, steps: int, shuffle: int) -> None:
    """Kafka delivers partitions in any interleaving and rebuild reads by (entity, id): the fold merges by
    event version, so any order of the same events gives the same state."""
    events = _random_history(seed, steps).events
    in_order = fold(events)
    shuffled = list(events)
    random.Random(shuffle).shuffle(shuffled)
    other = fold(shuffled)
    assert {k: asdict(v) for k, v in other.runs.items()} == {k: asdict(v) for k, v in in_order.runs.items()}
    assert {k: asdict(v) for k, v in other.experiments.items()} == {
        k: asdict(v) for k, v in in_order.experiments.items()}


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.integers(5, 60))
def test_the_state_decide_saw_is_the_fold_of_what_it_recorded(seed: int, steps: int) -> None:
    led = _random_history(seed, steps)
    again = fold(led.events)
    assert again.runs == led.state.runs and again.experiments == led.state.experiments
    assert again.names == led.state.names
