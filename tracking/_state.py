"""Tracking state and the fold: ``apply(state, event)``, ``fold(events)``.

The state holds experiments and runs (attributes, params, tags) — not metric
points, which live in ClickHouse. It answers what :func:`tracking.decide`
needs (:class:`TrackingView`) and is what ``as_of`` reads and the in-memory
read model return.

**Merge rules = the projections' rules.** Every attribute and tag remembers
the *version* of the event that set it (the first 64 bits of the UUIDv7 id:
ms time + per-process counter, :func:`producer.ids.id_version`), and a
change only lands if its version is not older — exactly what the
ClickHouse ``ReplacingMergeTree(version)`` projections do. So the fold gives
the same state whatever order the events arrive in (a rebuild replays the
log entity by entity; live ingest sees them as they come), and
``tests/unit/test_tracking_fold.py`` proves it against shuffled logs.

``apply`` updates ``state`` in place and returns it: the read model folds
thousands of events a second into one long-lived state, and copying it per
event would cost more than the event. ``fold(events)`` starts from a fresh
state, so it is a pure function of its input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from producer import events as ev
from producer.events import Event
from producer.ids import id_version

__all__ = ["Experiment", "Run", "TrackingState", "TrackingView", "apply", "fold"]


@dataclass(slots=True)
class Experiment:
    """One experiment, by its id. Deleted experiments stay (``lifecycle_stage == "deleted"``)."""

    experiment_id: str
    name: str = ""
    artifact_location: str = ""
    lifecycle_stage: str = "active"
    creation_time: int = 0
    last_update_time: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    """Attribute name or ``tag:<key>`` -> version of the event that set it."""


@dataclass(slots=True)
class Run:
    """One run, by its id. Deleted runs stay (``lifecycle_stage == "deleted"``)."""

    run_id: str
    experiment_id: str = ""
    name: str = ""
    status: str = "RUNNING"
    start_time: int | None = None
    end_time: int | None = None
    user: str = ""
    parent_run_id: str | None = None
    lifecycle_stage: str = "active"
    deleted_time: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    """Attribute name or ``tag:<key>`` -> version of the event that set it."""

    @property
    def exists(self) -> bool:
        """A run exists once its ``run_created`` was folded (other events may arrive first)."""
        return bool(self.experiment_id)


class TrackingView(Protocol):
    """What deciding a command needs to know: the current experiments and runs."""

    def experiment(self, experiment_id: str) -> Experiment | None: ...
    def experiment_by_name(self, name: str) -> Experiment | None: ...
    def run(self, run_id: str) -> Run | None: ...
    def run_ids(self, experiment_id: str) -> list[str]:
        """Ids of the experiment's runs, deleted ones included."""
        ...


@dataclass(slots=True)
class TrackingState:
    """Experiments and runs by id, and the experiment-name index (deleted experiments keep their names)."""

    experiments: dict[str, Experiment] = field(default_factory=dict)
    runs: dict[str, Run] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    """Experiment name -> id, for every experiment (active or deleted): MLflow names are unique among both."""

    def experiment(self, experiment_id: str) -> Experiment | None:
        e = self.experiments.get(experiment_id)
        return e if e is not None and e.name else None

    def experiment_by_name(self, name: str) -> Experiment | None:
        eid = self.names.get(name)
        return None if eid is None else self.experiment(eid)

    def run(self, run_id: str) -> Run | None:
        r = self.runs.get(run_id)
        return r if r is not None and r.exists else None

    def run_ids(self, experiment_id: str) -> list[str]:
        return [r.run_id for r in self.runs.values() if r.experiment_id == experiment_id]


def _newer(versions: dict[str, int], key: str, v: int) -> bool:
    """True (and remember ``v``) if an event of version ``v`` may set ``key``: not older than what set it."""
    if versions.get(key, -1) > v:
        return False
    versions[key] = v
    return True


def _set_run(run: Run, v: int, **attrs: object) -> None:
    for name, value in attrs.items():
        if _newer(run.versions, name, v):
            setattr(run, name, value)


def _set_exp(state: TrackingState, exp: Experiment, v: int, **attrs: object) -> None:
    for name, value in attrs.items():
        if not _newer(exp.versions, name, v):
            continue
        if name == "name":
            if state.names.get(exp.name) == exp.experiment_id:
                del state.names[exp.name]
                # events folded out of order may have let two experiments hold a name for a while
                other = next((e.experiment_id for e in state.experiments.values()
                              if e is not exp and e.name == exp.name), None)
                if other is not None:
                    state.names[exp.name] = other
            state.names[str(value)] = exp.experiment_id
        setattr(exp, name, value)


def _tag(tags: dict[str, str], versions: dict[str, int], key: str, value: str | None, v: int) -> None:
    if _newer(versions, "tag:" + key, v):
        if value is None:
            tags.pop(key, None)
        else:
            tags[key] = value


def apply(state: TrackingState, event: Event) -> TrackingState:
    """Fold one event into ``state`` (in place; returned for ``reduce``). Other domains' events change nothing."""
    body, v, ent = event.body, id_version(event.id), event.entity
    if isinstance(body, ev.MetricsLogged):
        return state
    if isinstance(body, (ev.ExperimentCreated, ev.ExperimentRenamed, ev.ExperimentDeleted, ev.ExperimentRestored,
                         ev.ExperimentTagSet, ev.ExperimentTagDeleted)):
        _apply_experiment(state, event)
        return state
    run: Run | None
    if isinstance(body, ev.RunCreated):
        run = state.runs.setdefault(ent, Run(ent))
        _set_run(run, v, experiment_id=body.experiment_id, name=body.name, status=body.status,
                 start_time=body.start_time_ms, user=body.user, parent_run_id=body.parent_run_id or None,
                 lifecycle_stage="active")
        for k, val in body.tags:
            _tag(run.tags, run.versions, k, val, v)
        return state
    if not isinstance(body, (ev.RunStatusChanged, ev.RunEnded, ev.RunRenamed, ev.RunDeleted, ev.RunRestored,
                             ev.ParamsLogged, ev.TagsSet, ev.TagsDeleted)):
        return state
    run = state.runs.setdefault(ent, Run(ent))
    if isinstance(body, ev.RunStatusChanged):
        _set_run(run, v, status=body.status)
    elif isinstance(body, ev.RunEnded):
        _set_run(run, v, status=body.status, end_time=body.end_time_ms)
    elif isinstance(body, ev.RunRenamed):
        _set_run(run, v, name=body.name)
        _tag(run.tags, run.versions, "mlflow.runName", body.name, v)
    elif isinstance(body, ev.RunDeleted):
        _set_run(run, v, lifecycle_stage="deleted", deleted_time=event.ts_ms)
    elif isinstance(body, ev.RunRestored):
        _set_run(run, v, lifecycle_stage="active")
    elif isinstance(body, ev.ParamsLogged):
        for k, val in body.params:
            run.params.setdefault(k, val)
    elif isinstance(body, ev.TagsSet):
        for k, val in body.tags:
            _tag(run.tags, run.versions, k, val, v)
    else:
        for k in body.keys:
            _tag(run.tags, run.versions, k, None, v)
    return state


def _apply_experiment(state: TrackingState, event: Event) -> None:
    body, v, eid, ts = event.body, id_version(event.id), event.entity, event.ts_ms
    exp = state.experiments.get(eid)
    if isinstance(body, ev.ExperimentCreated):
        # Field by field, newest version wins, as the projection merges: a create folded after a later
        # rename (another order of the same log) keeps the rename's name. The log writer drops a second
        # create for an existing id, so "create" never resets a live experiment.
        exp = state.experiments.setdefault(eid, Experiment(eid))
        _set_exp(state, exp, v, name=body.name, artifact_location=body.artifact_location, lifecycle_stage="active",
                 creation_time=ts)
        _set_exp(state, exp, v, last_update_time=ts)
        for k, val in body.tags:
            _tag(exp.tags, exp.versions, k, val, v)
        return
    exp = state.experiments.setdefault(eid, Experiment(eid)) if exp is None else exp
    if isinstance(body, ev.ExperimentRenamed):
        _set_exp(state, exp, v, name=body.name, last_update_time=ts)
    elif isinstance(body, ev.ExperimentDeleted):
        _set_exp(state, exp, v, lifecycle_stage="deleted", last_update_time=ts)
    elif isinstance(body, ev.ExperimentRestored):
        _set_exp(state, exp, v, lifecycle_stage="active", last_update_time=ts)
    elif isinstance(body, ev.ExperimentTagSet):
        _tag(exp.tags, exp.versions, body.key, body.value, v)
    elif isinstance(body, ev.ExperimentTagDeleted):
        _tag(exp.tags, exp.versions, body.key, None, v)


def fold(events: Iterable[Event], state: TrackingState | None = None) -> TrackingState:
    """The state after ``events`` (a fresh state unless one is given to continue)."""
    out = TrackingState() if state is None else state
    for e in events:
        apply(out, e)
    return out
