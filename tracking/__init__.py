"""The tracking domain: experiments and runs — commands, validation, ``decide``, the fold. No I/O.

One domain for every door: the MLflow API, the native API and the producer
build the same commands and get the same answers (MLflow's rules and
wording, the limits of :mod:`producer.limits`)::

    changes = decide(view, LogBatch(run_id=rid, params=(("lr", "0.1"),)), now_ms=now)
    # mint envelopes for ``changes``, validate them against the contract, append them, then:
    state = fold(events, state)

* :func:`decide` — a command against the state a :class:`TrackingView` shows
  → the :class:`Change` s (entity, body) to record, or an error.
* :func:`apply` / :func:`fold` — events into :class:`TrackingState`, merged
  by event version exactly as the ClickHouse projections merge, so live
  state, ``rebuild`` and ``as_of`` agree.
* :func:`check_conflicts` — the log writer's append-time check (params are
  immutable; an experiment name has one owner), the serialisation point for
  producers that decide nothing themselves.

Experiments are keyed by an id derived from the name (so clients agree on it
without a round trip); a name freed by a rename gets a fresh id
(:func:`free_experiment_id`). Metric points are not in the state: they live
in ClickHouse.
"""

from ._commands import (
    Command,
    CreateExperiment,
    CreateRun,
    DeleteExperiment,
    DeleteExperimentTag,
    DeleteRun,
    DeleteRunTag,
    EnsureExperiment,
    LogBatch,
    LogInputs,
    LogOutputs,
    LogParam,
    MetricPoint,
    RenameExperiment,
    RestoreExperiment,
    RestoreRun,
    SetExperimentTag,
    UpdateRun,
)
from ._conflicts import Conflict, check_conflicts, experiment_ids, experiment_names, param_runs
from ._decide import Change, decide, default_run_name, free_experiment_id, param_conflicts
from ._state import Experiment, Run, TrackingState, TrackingView, apply, fold
from ._validate import check_experiment_name, check_key, check_param, check_run_tag, invalid_value

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
    "LogParam",
    "DeleteRunTag",
    "LogInputs",
    "LogOutputs",
    "Change",
    "decide",
    "default_run_name",
    "free_experiment_id",
    "param_conflicts",
    "Conflict",
    "check_conflicts",
    "experiment_ids",
    "experiment_names",
    "param_runs",
    "Experiment",
    "Run",
    "TrackingState",
    "TrackingView",
    "apply",
    "fold",
    "check_experiment_name",
    "check_key",
    "check_param",
    "check_run_tag",
    "invalid_value",
]
