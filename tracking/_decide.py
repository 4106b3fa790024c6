"""``decide``: check one tracking command against the current state; return the events it causes.

Pure: no I/O, no clock, no randomness — ``now_ms`` and the artifact root come
in as arguments, run ids come in the command. The caller mints envelopes for
the returned :class:`Change` s (id, source, actor), appends them all or none,
and (where it keeps state) folds them with :func:`tracking.apply`.

Errors, with MLflow's wording: ``ContractError`` (invalid input; MLflow
``INVALID_PARAMETER_VALUE``), ``NotFoundError`` (``RESOURCE_DOES_NOT_EXIST``),
``AlreadyExistsError`` (``RESOURCE_ALREADY_EXISTS``), ``ParamConflictError``
(a param re-logged with another value), ``InvalidStateError``
(``INVALID_STATE``: renaming a deleted experiment).

An empty list means "valid, nothing to record" (ensuring an experiment that
exists, an update that changes nothing).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import orjson

from producer import events as ev
from producer import limits
from producer.errors import (
    AlreadyExistsError,
    ContractError,
    InvalidStateError,
    NotFoundError,
    ParamConflictError,
)
from producer.events import Body
from producer.ids import experiment_id_for
from producer.mlflow_events import RunInputsLogged, RunOutputsLogged

from . import _commands as c
from . import _validate as v
from ._state import Experiment, Run, TrackingView

__all__ = ["Change", "decide", "free_experiment_id", "default_run_name", "param_conflicts"]


class Change(NamedTuple):
    """One event to record: the entity it belongs to and its body."""

    entity: str
    body: Body


_ADJECTIVES = ("bold", "calm", "brave", "bright", "clever", "gentle", "lucky", "merry", "quick", "shy", "wise")
_NOUNS = ("ant", "bear", "crane", "deer", "eel", "finch", "gull", "hare", "ibis", "lynx", "moth", "owl", "wolf")


def default_run_name(run_id: str) -> str:
    """MLflow-style ``adjective-noun-123``, derived from the run id (so ``decide`` stays deterministic)."""
    rnd = random.Random(run_id)
    return f"{rnd.choice(_ADJECTIVES)}-{rnd.choice(_NOUNS)}-{rnd.randrange(1000)}"


def free_experiment_id(view: TrackingView, name: str) -> str:
    """The id a new experiment called ``name`` gets: derived from the name (so two clients agree without a
    round trip), or — when another experiment holds that id, having been renamed — the next free variant."""
    eid, k = experiment_id_for(name), 0
    while (held := view.experiment(eid)) is not None and held.name != name:
        k += 1
        eid = experiment_id_for(f"{name}#{k}")
    return eid


def param_conflicts(run_id: str, recorded: dict[str, str], new: Iterable[tuple[str, str]],
                    one_param: bool = False) -> str | None:
    """MLflow's message for params that would change a recorded value, or None: ``log-batch``'s list of the
    clashes (even one), or with ``one_param`` ``log-parameter``'s sentence about its one key."""
    clashes = [{"key": k, "old_value": recorded[k], "new_value": val} for k, val in new
               if k in recorded and recorded[k] != val]
    if not clashes:
        return None
    if one_param and len(clashes) == 1:
        k, old, val = clashes[0]["key"], clashes[0]["old_value"], clashes[0]["new_value"]
        return (f"Changing param values is not allowed. Param with key='{k}' was already logged with value='{old}' "
                f"for run ID='{run_id}'. Attempted logging new value '{val}'.")
    return f"Changing param values is not allowed. Params were already logged='{clashes}' for run ID='{run_id}'."


def _experiment(view: TrackingView, experiment_id: str) -> Experiment:
    exp = view.experiment(experiment_id)
    if exp is None:
        raise NotFoundError(f"No Experiment with id={experiment_id} exists")
    return exp


def _active_experiment(view: TrackingView, experiment_id: str) -> Experiment:
    exp = _experiment(view, experiment_id)
    if exp.lifecycle_stage != "active":
        raise ContractError(f"The experiment {experiment_id} must be in the 'active' state. "
                            f"Current state is {exp.lifecycle_stage}.")
    return exp


def _run(view: TrackingView, run_id: str) -> Run:
    run = view.run(run_id)
    if run is None:
        raise NotFoundError(f"Run with id={run_id} not found")
    return run


def _active_run(view: TrackingView, run_id: str) -> Run:
    run = _run(view, run_id)
    if run.lifecycle_stage != "active":
        raise ContractError(f"The run {run_id} must be in the 'active' state. Current state is "
                            f"{run.lifecycle_stage}.")
    return run


# ------------------------------------------------------------- experiments


def _new_experiment(view: TrackingView, cmd: c.CreateExperiment | c.EnsureExperiment, name: str,
                    artifact_root: str) -> list[Change]:
    tags = tuple(v.check_experiment_tag(k, val) for k, val in cmd.tags)
    if not isinstance(cmd.artifact_location, str):
        raise ContractError(v.invalid_value("artifact_location", cmd.artifact_location, "expected a string"))
    if cmd.artifact_location.startswith("runs:"):
        raise ContractError(f"Artifact location cannot be a runs:/ URI. Given: '{cmd.artifact_location}'")
    eid = free_experiment_id(view, name)
    location = cmd.artifact_location or (f"{artifact_root.rstrip('/')}/{eid}" if artifact_root else "")
    return [Change(eid, ev.ExperimentCreated(name=name, artifact_location=location, tags=tags))]


def _create_experiment(view: TrackingView, cmd: c.CreateExperiment, ctx: _Ctx) -> list[Change]:
    name = v.check_experiment_name(cmd.name)
    if view.experiment_by_name(name) is not None:
        raise AlreadyExistsError(f"Experiment(name={name}) already exists.")
    return _new_experiment(view, cmd, name, ctx.artifact_root)


def _ensure_experiment(view: TrackingView, cmd: c.EnsureExperiment, ctx: _Ctx) -> list[Change]:
    name = v.check_experiment_name(cmd.name)
    if view.experiment_by_name(name) is not None:
        return []
    return _new_experiment(view, cmd, name, ctx.artifact_root)


def _rename_experiment(view: TrackingView, cmd: c.RenameExperiment, ctx: _Ctx) -> list[Change]:
    name = v.check_experiment_name(cmd.new_name)
    exp = _experiment(view, cmd.experiment_id)
    if exp.lifecycle_stage != "active":
        raise InvalidStateError("Cannot rename a non-active experiment.")
    if name == exp.name:
        return []
    if view.experiment_by_name(name) is not None:
        raise AlreadyExistsError(f"Experiment(name={name}) already exists.")
    return [Change(exp.experiment_id, ev.ExperimentRenamed(name=name))]


def _delete_experiment(view: TrackingView, cmd: c.DeleteExperiment, ctx: _Ctx) -> list[Change]:
    # The default experiment "0" too, as MLflow's SQL store allows (its file store refused it).
    exp = _experiment(view, cmd.experiment_id)
    if exp.lifecycle_stage != "active":
        raise NotFoundError(f"No Experiment with id={cmd.experiment_id} exists")
    # As MLflow's stores do: deleting an experiment deletes its runs (restoring restores them).
    runs = [Change(rid, ev.RunDeleted()) for rid in view.run_ids(exp.experiment_id)
            if (r := view.run(rid)) is not None and r.lifecycle_stage == "active"]
    return [Change(exp.experiment_id, ev.ExperimentDeleted()), *runs]


def _restore_experiment(view: TrackingView, cmd: c.RestoreExperiment, ctx: _Ctx) -> list[Change]:
    exp = _experiment(view, cmd.experiment_id)
    if exp.lifecycle_stage != "deleted":
        raise NotFoundError(f"No Experiment with id={cmd.experiment_id} exists")
    runs = [Change(rid, ev.RunRestored()) for rid in view.run_ids(exp.experiment_id)
            if (r := view.run(rid)) is not None and r.lifecycle_stage == "deleted"]
    return [Change(exp.experiment_id, ev.ExperimentRestored()), *runs]


def _set_experiment_tag(view: TrackingView, cmd: c.SetExperimentTag, ctx: _Ctx) -> list[Change]:
    key, value = v.check_experiment_tag(cmd.key, cmd.value)
    _active_experiment(view, cmd.experiment_id)
    return [Change(cmd.experiment_id, ev.ExperimentTagSet(key=key, value=value))]


def _delete_experiment_tag(view: TrackingView, cmd: c.DeleteExperimentTag, ctx: _Ctx) -> list[Change]:
    if not isinstance(cmd.key, str) or not cmd.key:
        raise ContractError("Missing value for required parameter 'key'.")
    exp = _active_experiment(view, cmd.experiment_id)
    if cmd.key not in exp.tags:
        raise NotFoundError(f"No tag with name: {cmd.key} in experiment with id {cmd.experiment_id}")
    return [Change(cmd.experiment_id, ev.ExperimentTagDeleted(key=cmd.key))]


# -------------------------------------------------------------------- runs


def _create_run(view: TrackingView, cmd: c.CreateRun, ctx: _Ctx) -> list[Change]:
    _active_experiment(view, cmd.experiment_id)
    if view.run(cmd.run_id) is not None:
        raise AlreadyExistsError(f"Run with id={cmd.run_id} already exists")
    tags = v.tags_dict(cmd.tags)
    name = cmd.name or ""
    if name:
        v.check_run_name(name)
        tag_name = tags.get("mlflow.runName")
        if tag_name and tag_name != name:
            raise ContractError(f"Both 'run_name' argument and 'mlflow.runName' tag are specified, but with "
                                f"different values (run_name='{name}', mlflow.runName='{tag_name}').")
    name = name or tags.get("mlflow.runName") or default_run_name(cmd.run_id)
    tags["mlflow.runName"] = name
    if cmd.user and "mlflow.user" not in tags:
        tags["mlflow.user"] = cmd.user
    parent = cmd.parent_run_id or tags.get("mlflow.parentRunId") or None
    v.check_int64(cmd.start_time_ms, "start_time")
    v.check_status(cmd.status)
    return [Change(cmd.run_id, ev.RunCreated(experiment_id=cmd.experiment_id, name=name, tags=tuple(tags.items()),
                                             parent_run_id=parent, start_time_ms=cmd.start_time_ms,
                                             user=cmd.user, status=cmd.status))]


def _update_run(view: TrackingView, cmd: c.UpdateRun, ctx: _Ctx) -> list[Change]:
    _active_run(view, cmd.run_id)
    out: list[Change] = []
    if cmd.status is not None:
        status = v.check_status(cmd.status)
        if status in ev.TERMINAL_STATUSES:
            end = ctx.now_ms if cmd.end_time_ms is None else v.check_int64(cmd.end_time_ms, "end_time")
            out.append(Change(cmd.run_id, ev.RunEnded(status=status, end_time_ms=end)))
        else:
            out.append(Change(cmd.run_id, ev.RunStatusChanged(status=status)))
    if cmd.name:
        out.append(Change(cmd.run_id, ev.RunRenamed(name=v.check_run_name(cmd.name))))
    return out


def _delete_run(view: TrackingView, cmd: c.DeleteRun, ctx: _Ctx) -> list[Change]:
    _run(view, cmd.run_id)
    return [Change(cmd.run_id, ev.RunDeleted())]


def _restore_run(view: TrackingView, cmd: c.RestoreRun, ctx: _Ctx) -> list[Change]:
    _run(view, cmd.run_id)
    return [Change(cmd.run_id, ev.RunRestored())]


def _metrics(cmd: c.LogBatch) -> list[Change]:
    groups: dict[tuple[str, str, str], list[tuple[str, int, int, float]]] = {}
    for i, m in enumerate(cmd.metrics):
        path = f"metrics[{i}]"
        key = v.check_key(m.key, f"{path}.name")
        value = v.check_metric_value(m.value, key, f"{path}.value")
        ts = v.check_int64(m.timestamp_ms, f"{path}.timestamp")
        step = v.check_int64(m.step, f"{path}.step")
        groups.setdefault((m.model_id, m.dataset_name, m.dataset_digest), []).append((key, step, ts, value))
    out = []
    for (model_id, ds_name, ds_digest), pts in groups.items():
        keys, steps, stamps, values = zip(*pts, strict=True)
        out.append(Change(cmd.run_id, ev.MetricsLogged(keys=keys, steps=steps, timestamps_ms=stamps, values=values,
                                                       model_id=model_id, dataset_name=ds_name,
                                                       dataset_digest=ds_digest)))
    return out


def _log_param(view: TrackingView, cmd: c.LogParam, ctx: _Ctx) -> list[Change]:
    return _log_batch(view, c.LogBatch(run_id=cmd.run_id, params=((cmd.key, cmd.value),)), ctx, one_param=True)


def _log_batch(view: TrackingView, cmd: c.LogBatch, ctx: _Ctx, one_param: bool = False) -> list[Change]:
    v.check_batch_counts(len(cmd.metrics), len(cmd.params), len(cmd.tags))
    params = v.check_distinct_params(v.check_param(k, val, f"params[{i}]") for i, (k, val) in enumerate(cmd.params))
    tags = dict(v.check_run_tag(k, val, f"tags[{i}]") for i, (k, val) in enumerate(cmd.tags))
    metrics = _metrics(cmd)
    run = _active_run(view, cmd.run_id)
    conflict = param_conflicts(cmd.run_id, run.params, params.items(), one_param)
    if conflict:
        raise ParamConflictError(conflict)
    out: list[Change] = []
    new_params = {k: val for k, val in params.items() if k not in run.params}
    if new_params:
        out.append(Change(cmd.run_id, ev.ParamsLogged(params=tuple(new_params.items()))))
    if tags:
        out.append(Change(cmd.run_id, ev.TagsSet(tags=tuple(tags.items()))))
        if tags.get("mlflow.runName"):
            out.append(Change(cmd.run_id, ev.RunRenamed(name=v.check_run_name(tags["mlflow.runName"]))))
    return out + metrics


def _delete_run_tag(view: TrackingView, cmd: c.DeleteRunTag, ctx: _Ctx) -> list[Change]:
    if not isinstance(cmd.key, str) or not cmd.key:
        raise ContractError("Missing value for required parameter 'key'.")
    run = _active_run(view, cmd.run_id)
    if cmd.key not in run.tags:
        raise NotFoundError(f"No tag with name: {cmd.key} in run with id {cmd.run_id}")
    return [Change(cmd.run_id, ev.TagsDeleted(keys=(cmd.key,)))]


def _json(item: Any) -> str:
    return orjson.dumps(item, option=orjson.OPT_SORT_KEYS).decode()


def _dataset_inputs(items: Iterable[Any]) -> tuple[str, ...]:
    out = []
    for i, d in enumerate(items):
        ds = d.get("dataset") if isinstance(d, dict) else None
        if not isinstance(ds, dict):
            raise ContractError(v.invalid_value(f"datasets[{i}]", d, "Dataset cannot be None"))
        for f in ("name", "digest", "source_type", "source"):
            if not isinstance(ds.get(f), str) or not ds[f]:
                raise ContractError(f"Dataset {f} cannot be None")
        if len(ds["name"]) > limits.DATASET_NAME.api:
            raise ContractError(f"Dataset name exceeds the maximum length of {limits.DATASET_NAME.api}")
        if len(ds["digest"]) > limits.DATASET_DIGEST.api:
            raise ContractError(f"Dataset digest exceeds the maximum length of {limits.DATASET_DIGEST.api}")
        tags = d.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, dict) for t in tags):
            raise ContractError(v.invalid_value(f"datasets[{i}].tags", tags, "expected a list of tags"))
        out.append(_json({"tags": tags, "dataset": ds}))
    return tuple(out)


def _model_refs(items: Iterable[Any], with_step: bool) -> tuple[str, ...]:
    out = []
    for m in items:
        if not isinstance(m, dict) or not isinstance(m.get("model_id"), str) or not m["model_id"]:
            raise ContractError(v.invalid_value("models", m, "needs a model_id"))
        ref: dict[str, Any] = {"model_id": m["model_id"]}
        if with_step:
            ref["step"] = v.check_int64(m.get("step") or 0, "step")
        out.append(_json(ref))
    return tuple(out)


def _log_inputs(view: TrackingView, cmd: c.LogInputs, ctx: _Ctx) -> list[Change]:
    if len(cmd.datasets) > limits.MAX_ENTITIES_PER_BATCH:
        raise ContractError(f"A batch logging request can contain at most {limits.MAX_ENTITIES_PER_BATCH} "
                            "datasets.")
    body = RunInputsLogged(datasets=_dataset_inputs(cmd.datasets), models=_model_refs(cmd.models, False))
    _active_run(view, cmd.run_id)
    return [Change(cmd.run_id, body)] if body.datasets or body.models else []


def _log_outputs(view: TrackingView, cmd: c.LogOutputs, ctx: _Ctx) -> list[Change]:
    body = RunOutputsLogged(models=_model_refs(cmd.models, True))
    _active_run(view, cmd.run_id)
    return [Change(cmd.run_id, body)] if body.models else []


# ---------------------------------------------------------------- dispatch


class _Ctx(NamedTuple):
    now_ms: int
    artifact_root: str


_DECIDERS: dict[type, Callable[[TrackingView, Any, _Ctx], list[Change]]] = {
    c.CreateExperiment: _create_experiment,
    c.EnsureExperiment: _ensure_experiment,
    c.RenameExperiment: _rename_experiment,
    c.DeleteExperiment: _delete_experiment,
    c.RestoreExperiment: _restore_experiment,
    c.SetExperimentTag: _set_experiment_tag,
    c.DeleteExperimentTag: _delete_experiment_tag,
    c.CreateRun: _create_run,
    c.UpdateRun: _update_run,
    c.DeleteRun: _delete_run,
    c.RestoreRun: _restore_run,
    c.LogBatch: _log_batch,
    c.LogParam: _log_param,
    c.DeleteRunTag: _delete_run_tag,
    c.LogInputs: _log_inputs,
    c.LogOutputs: _log_outputs,
}


def decide(view: TrackingView, command: c.Command, *, now_ms: int, artifact_root: str = "") -> list[Change]:
    """The events ``command`` causes in the state ``view`` shows, or the error that refuses it.

    ``artifact_root`` makes a new experiment's default location ``<root>/<id>`` ('' leaves it to the
    server, which fills it in on read). Deleting or restoring an experiment does the same to its runs
    (as MLflow's stores do), so ``view.run_ids`` must list them.
    """
    handler = _DECIDERS.get(type(command))
    if handler is None:
        raise TypeError(f"not a tracking command: {command!r}")
    return handler(view, command, _Ctx(now_ms, artifact_root))
