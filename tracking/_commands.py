"""Tracking commands: what a caller asks for, before it is checked against state.

Frozen value objects with raw-ish fields (strings as the caller sent them);
:func:`tracking.decide` validates them and returns the events they cause.
The MLflow API, the native API and the producer all build these, so the
rules live in one place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Command",
    "CreateExperiment",
    "EnsureExperiment",
    "RenameExperiment",
    "DeleteExperiment",
    "RestoreExperiment",
    "SetExperimentTag",
    "DeleteExperimentTag",
    "CreateRun",
    "UpdateRun",
    "DeleteRun",
    "RestoreRun",
    "MetricPoint",
    "LogBatch",
    "DeleteRunTag",
    "LogInputs",
    "LogOutputs",
]

Pairs = tuple[tuple[str, Any], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateExperiment:
    """Create an experiment; a name already used (by an active or deleted experiment) is refused."""

    name: Any
    artifact_location: str = ""
    """'' = ``<artifact root>/<experiment id>``."""
    tags: Pairs = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class EnsureExperiment:
    """The experiment called ``name``: the existing one (active or deleted), else a new one. Records nothing
    when it exists. What ``producer.start_run(experiment=...)`` and the native ``POST /experiments`` do."""

    name: Any
    artifact_location: str = ""
    tags: Pairs = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameExperiment:
    experiment_id: str
    new_name: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteExperiment:
    experiment_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreExperiment:
    experiment_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetExperimentTag:
    experiment_id: str
    key: Any
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteExperimentTag:
    experiment_id: str
    key: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateRun:
    """Start a run. ``run_id`` is minted by the caller (a UUIDv7), so a client never waits for one."""

    run_id: str
    experiment_id: str
    start_time_ms: int
    name: Any = ""
    """'' = the ``mlflow.runName`` tag, else a generated ``adjective-noun-123``."""
    tags: Pairs = ()
    parent_run_id: str | None = None
    user: str = ""
    status: str = "RUNNING"


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateRun:
    """Change status (a terminal one ends the run at ``end_time_ms``) and/or rename."""

    run_id: str
    status: str | None = None
    end_time_ms: int | None = None
    name: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteRun:
    run_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RestoreRun:
    run_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricPoint:
    key: Any
    value: Any
    timestamp_ms: Any
    step: Any = 0
    model_id: str = ""
    dataset_name: str = ""
    dataset_digest: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class LogBatch:
    """MLflow's ``log-batch``: metrics, params (immutable) and tags of one run, all or nothing."""

    run_id: str
    metrics: tuple[MetricPoint, ...] = ()
    params: Pairs = ()
    tags: Pairs = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LogParam:
    """MLflow's ``log-parameter``: one param; a different value already logged is refused in the words MLflow
    uses for one param (``log-batch`` lists the clashes, even one)."""

    run_id: str
    key: Any
    value: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteRunTag:
    run_id: str
    key: Any


@dataclass(frozen=True, slots=True, kw_only=True)
class LogInputs:
    """Datasets (``{"tags": [...], "dataset": {name, digest, source_type, source, ...}}``) and models a run used."""

    run_id: str
    datasets: tuple[Any, ...] = ()
    models: tuple[Any, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class LogOutputs:
    """Models (``{"model_id", "step"}``) a run produced."""

    run_id: str
    models: tuple[Any, ...] = ()


Command = (
    CreateExperiment | EnsureExperiment | RenameExperiment | DeleteExperiment | RestoreExperiment
    | SetExperimentTag | DeleteExperimentTag | CreateRun | UpdateRun | DeleteRun | RestoreRun | LogBatch
    | LogParam | DeleteRunTag | LogInputs | LogOutputs
)
