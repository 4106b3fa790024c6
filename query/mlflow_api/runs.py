"""MLflow runs: create, get, update, delete, restore, search, log-batch / -metric / -parameter, set-tag,
delete-tag, log-inputs, outputs. Every write becomes tracking events; every read comes from the projections.

Writes are idempotent under the client's POST retries: metric points are
keyed by (run, key, step) with the client's timestamp, params accept the same
value again, tags are last-write-wins, so a retried ``log-batch`` changes no
count, latest value or history.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from math import isfinite
from typing import Any

import orjson
from fastapi import APIRouter, Request

from producer import limits
from producer.ids import new_id
from tracking import (
    CreateRun,
    DeleteRun,
    DeleteRunTag,
    LogBatch,
    LogInputs,
    LogOutputs,
    LogParam,
    MetricPoint,
    RestoreRun,
    Run,
    UpdateRun,
)

from ..commands import execute
from ..filters import parse_filter, parse_order_by
from ..routes.registry import actor_of
from ..run_search import Latest
from ..run_state import run_state_dict
from ..services import Services
from .common import run_or_404
from .convert import decode_token, encode_token, io_json, kv, run_info_json, run_json
from .errors import invalid, not_found
from .log_reads import LogReads
from .request import Field, check_schema, missing_value, optional_int, optional_str, required_str
from .routing import mlflow_route, wire_float

router = APIRouter()

MAX_SEARCH_RESULTS = 50_000
RUN_VIEW_TYPES = {"ACTIVE_ONLY": "ACTIVE_ONLY", "DELETED_ONLY": "DELETED_ONLY", "ALL": "ALL",
                  "1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}


def run_id_of(params: dict[str, Any]) -> str:
    """``run_id``, or the deprecated ``run_uuid`` older clients send."""
    check_schema(params, {"run_id": ("string", True)})
    rid = params.get("run_id") or params.get("run_uuid")
    assert isinstance(rid, str)
    return rid


#: MLflow's request schemas of the run writes (field order = the order MLflow checks them in).
LOG_METRIC: dict[str, Field] = {
    "run_id": ("string", True), "key": ("string", True), "value": ("float", True), "timestamp": ("int", True),
    "step": ("int", False), "model_id": ("string", False), "dataset_name": ("string", False),
    "dataset_digest": ("string", False)}
LOG_PARAM: dict[str, Field] = {"run_id": ("string", True), "key": ("string", True), "value": ("string", False)}
SET_TAG: dict[str, Field] = {"run_id": ("string", True), "key": ("string", True), "value": ("string", False)}
DELETE_TAG: dict[str, Field] = {"run_id": ("string", True), "key": ("string", True)}
LOG_BATCH: dict[str, Field] = {"run_id": ("string", True), "metrics": ("array", False), "params": ("array", False),
                               "tags": ("array", False)}
#: Per entry of a log-batch list: the fields MLflow requires.
BATCH_REQUIRED = {"metrics": ("key", "value", "timestamp"), "params": ("key",), "tags": ("key",)}
#: ``log-inputs``: neither list is required (a request naming no datasets and no models changes nothing).
LOG_INPUTS: dict[str, Field] = {"run_id": ("string", True), "datasets": ("array", False), "models": ("array", False)}
LOG_OUTPUTS: dict[str, Field] = {"run_id": ("string", True), "models": ("array", True)}


def _check_batch(params: dict[str, Any]) -> None:
    check_schema(params, LOG_BATCH)
    for what, fields in BATCH_REQUIRED.items():
        for i, item in enumerate(params.get(what) or []):
            for f in fields:
                if isinstance(item, dict) and item.get(f) in (None, ""):
                    raise missing_value(f"{what}[{i}].{f}")


def experiment_location(services: Services, experiment_id: str, cache: dict[str, str] | None = None) -> str:
    """An experiment's artifact location as the API shows it (proxied), runs' ``artifact_uri`` prefix."""
    if cache is not None and experiment_id in cache:
        return cache[experiment_id]
    exp = services.reads.experiment(experiment_id)
    loc = (exp["artifact_location"] if exp else "") or f"{services.settings.artifact_root}/{experiment_id}"
    from .convert import proxied_location

    loc = proxied_location(loc, services.settings.artifact_root)
    if cache is not None:
        cache[experiment_id] = loc
    return loc


def _run_parts(run: Run, latest: Mapping[str, Latest]) -> tuple[dict[str, Any], orjson.Fragment]:
    """A run's info fields and its ``data`` (latest metrics, params, tags) already serialised: what the
    read model keeps per run (:meth:`ReadModel.derived`) so a search page re-serialises only runs that
    changed. The same JSON as :func:`run_json` over :func:`run_state_dict`."""
    metrics = [{"key": k, "value": v if isfinite(v := float(m[0])) else wire_float(v), "timestamp": int(m[2]),
                "step": int(m[1])} for k, m in sorted(latest.items())]
    data = {"metrics": metrics, "params": kv(dict(sorted(run.params.items()))), "tags": kv(dict(sorted(run.tags.items())))}
    return run_state_dict(run, {}), orjson.Fragment(orjson.dumps(data))


def runs_json(services: Services, run_ids: list[str]) -> list[dict[str, Any]]:
    model, locations = services.reads.model, dict[str, str]()
    if model is None:
        runs = services.reads.runs(run_ids)
        io = LogReads(services.store).run_io([r["run_id"] for r in runs])
        return [run_json(r, experiment_location(services, r["experiment_id"], locations),
                         *io.get(r["run_id"], (None, None))) for r in runs]
    parts = [p for rid in dict.fromkeys(run_ids) if (p := model.derived(rid, _run_parts)) is not None]
    io = LogReads(services.store).run_io([info["run_id"] for info, _ in parts if model.has_io(info["run_id"])])
    return [{"info": run_info_json(info, experiment_location(services, info["experiment_id"], locations)),
             "data": data, **io_json(*io.get(info["run_id"], (None, None)))} for info, data in parts]


def get_run_json(services: Services, run_id: str) -> dict[str, Any]:
    found = runs_json(services, [run_id])
    if not found:
        raise not_found(f"Run '{run_id}' not found")
    return found[0]


# ------------------------------------------------------------------ lifecycle


#: MLflow's switch (default on): the server cuts param and tag values to their limit instead of refusing them.
TRUNCATE_ENV = "MLFLOW_TRUNCATE_LONG_VALUES"
_VALUE_LIMITS = {"params": limits.PARAM_VALUE.api, "tags": limits.RUN_TAG_VALUE.api}


def truncating(env: Mapping[str, str] | None = None) -> bool:
    """Whether over-long param / tag values are cut (MLflow 3's default) rather than refused."""
    return (os.environ if env is None else env).get(TRUNCATE_ENV, "true").strip().lower() not in ("false", "0", "no")


def cut(value: Any, what: str, enabled: bool) -> Any:
    """A param (``what="params"``) or tag value cut to MLflow's limit when ``enabled``; else as given
    (the domain then refuses it with MLflow's wording)."""
    limit = _VALUE_LIMITS.get(what)
    if enabled and limit is not None and isinstance(value, str) and len(value) > limit:
        return value[:limit]
    return value


def pairs_of(items: Any, what: str) -> tuple[tuple[Any, Any], ...]:
    """``[{"key": k, "value": v}, ...]`` as pairs, values as the client sent them (the domain checks them),
    except that over-long values are cut as MLflow's server cuts them (:func:`truncating`)."""
    if items is None:
        return ()
    if not isinstance(items, list):
        raise invalid(f"Invalid value for parameter '{what}': expected a list")
    out = []
    enabled = truncating()
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid(f"Invalid value {item!r} for parameter '{what}[{i}]': expected an object with key and value")
        value = item.get("value", "")
        value = value if isinstance(value, str) or value is None else str(value)
        out.append((item.get("key"), cut(value, what, enabled)))
    return tuple(out)


def _metric_points(items: Any) -> tuple[MetricPoint, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise invalid("Invalid value for parameter 'metrics': expected a list")
    now = int(time.time() * 1000)
    out = []
    for i, m in enumerate(items):
        if not isinstance(m, dict):
            raise invalid(f"Invalid value {m!r} for parameter 'metrics[{i}]': expected an object with key, value, "
                          "timestamp, step")
        ts = m.get("timestamp")
        out.append(MetricPoint(key=m.get("key"), value=m.get("value"), timestamp_ms=now if ts in (None, "") else ts,
                               step=m.get("step") or 0, model_id=str(m.get("model_id") or ""),
                               dataset_name=str(m.get("dataset_name") or ""),
                               dataset_digest=str(m.get("dataset_digest") or "")))
    return tuple(out)


@mlflow_route(router, "/runs/create", "POST")
def create_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Create a run in an experiment (run id minted here)."""
    tags = pairs_of(params.get("tags"), "tags")
    start = optional_int(params, "start_time")
    user = optional_str(params, "user_id") or next((str(v) for k, v in tags if k == "mlflow.user"), "")
    run_id = new_id()
    execute(services, CreateRun(run_id=run_id, experiment_id=optional_str(params, "experiment_id") or "0",
                                start_time_ms=int(time.time() * 1000) if start is None else start,
                                name=optional_str(params, "run_name") or "", tags=tags, user=user),
            actor=actor_of(request))
    return {"run": get_run_json(services, run_id)}


def _run_in_memory(services: Services, params: dict[str, Any]) -> bool:
    """runs/get from memory: the read model is on and the run logged no inputs / outputs (those are read
    from ClickHouse)."""
    model = services.reads.model
    return model is not None and not model.has_io(str(params.get("run_id") or params.get("run_uuid") or ""))


@mlflow_route(router, "/runs/get", "GET", in_memory=_run_in_memory)
def get_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """A run: info, latest metrics, params, tags, inputs, outputs."""
    return {"run": get_run_json(services, run_id_of(params))}


@mlflow_route(router, "/runs/update", "POST")
def update_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Change a run's status (ending it with end_time when terminal) and/or its name."""
    run_id = run_id_of(params)
    execute(services, UpdateRun(run_id=run_id, status=optional_str(params, "status"),
                                end_time_ms=optional_int(params, "end_time"), name=optional_str(params, "run_name")),
            actor=actor_of(request))
    run = run_or_404(services, run_id)
    return {"run_info": run_info_json(run, experiment_location(services, run["experiment_id"]))}


@mlflow_route(router, "/runs/delete", "POST")
def delete_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Mark a run deleted (restorable)."""
    execute(services, DeleteRun(run_id=run_id_of(params)), actor=actor_of(request))
    return {}


@mlflow_route(router, "/runs/restore", "POST")
def restore_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Restore a deleted run."""
    execute(services, RestoreRun(run_id=run_id_of(params)), actor=actor_of(request))
    return {}


# ---------------------------------------------------------------- logging


@mlflow_route(router, "/runs/log-batch", "POST")
def log_batch(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Log up to 1000 metrics, 100 params and 100 tags to a run at once (all or nothing)."""
    _check_batch(params)
    execute(services, LogBatch(run_id=run_id_of(params), metrics=_metric_points(params.get("metrics")),
                               params=pairs_of(params.get("params"), "params"), tags=pairs_of(params.get("tags"), "tags")),
            actor=actor_of(request))
    return {}


@mlflow_route(router, "/runs/log-metric", "POST")
def log_metric(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Log one metric point (``model_id`` / ``dataset_*`` put it on a logged model as well)."""
    check_schema(params, LOG_METRIC)
    point = {k: params.get(k) for k in ("key", "value", "timestamp", "step", "model_id", "dataset_name",
                                        "dataset_digest")}
    execute(services, LogBatch(run_id=run_id_of(params), metrics=_metric_points([point])), actor=actor_of(request))
    return {}


@mlflow_route(router, "/runs/log-parameter", "POST")
def log_param(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Log one param (immutable: a different value for a logged key is INVALID_PARAMETER_VALUE)."""
    check_schema(params, LOG_PARAM)
    ((key, value),) = pairs_of([{"key": required_str(params, "key"), "value": params.get("value")}], "params")
    execute(services, LogParam(run_id=run_id_of(params), key=key, value=value), actor=actor_of(request))
    return {}


@mlflow_route(router, "/runs/set-tag", "POST")
def set_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Set one tag (mlflow.runName also renames the run)."""
    check_schema(params, SET_TAG)
    key = required_str(params, "key")
    execute(services, LogBatch(run_id=run_id_of(params), tags=pairs_of([{"key": key, "value": params.get("value", "")}],
                                                                      "tags")), actor=actor_of(request))
    return {}


@mlflow_route(router, "/runs/delete-tag", "POST")
def delete_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete one tag of a run."""
    check_schema(params, DELETE_TAG)
    execute(services, DeleteRunTag(run_id=run_id_of(params), key=required_str(params, "key")), actor=actor_of(request))
    return {}


def _list(params: dict[str, Any], name: str) -> tuple[Any, ...]:
    """A list field :func:`check_schema` has already checked (absent or null: empty)."""
    return tuple(params.get(name) or ())


@mlflow_route(router, "/runs/log-inputs", "POST")
def log_inputs(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Record datasets (and models) a run used."""
    check_schema(params, LOG_INPUTS)
    execute(services, LogInputs(run_id=run_id_of(params), datasets=_list(params, "datasets"),
                                models=_list(params, "models")), actor=actor_of(request))
    return {}


@mlflow_route(router, "/runs/outputs", "POST")
def log_outputs(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Record models a run produced (MLflow 3 ``log_outputs``)."""
    check_schema(params, LOG_OUTPUTS)
    execute(services, LogOutputs(run_id=run_id_of(params), models=_list(params, "models")), actor=actor_of(request))
    return {}


#: The run tag ``runs/log-model`` appends to (``mlflow.utils.mlflow_tags.MLFLOW_LOGGED_MODELS``).
LOG_MODEL_HISTORY = "mlflow.log-model.history"
LOG_MODEL: dict[str, Field] = {"run_id": ("string", True), "model_json": ("string", True)}
_MODEL_FIELDS = ("artifact_path", "flavors", "utc_time_created", "run_id")


def logged_model_entry(model_json: str) -> dict[str, Any]:
    """What ``runs/log-model`` records of a model: MLflow's ``Model.get_tags_dict`` (run id, time, artifact
    path, uuid, flavors without their ``config``), after MLflow's checks of ``model_json``."""
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    try:
        model = json.loads(model_json)
    except ValueError:
        raise invalid(f"Malformed model info. \n {model_json} \n is not a valid JSON.") from None
    if not isinstance(model, dict):  # mlflow server answers 500 here
        raise invalid(f"Malformed model info. \n {model_json} \n is not a JSON object.")
    missing = set(_MODEL_FIELDS) - set(model)
    if missing:
        raise invalid(f"Model json is missing mandatory fields: {missing}")
    try:
        entry: dict[str, Any] = Model.from_dict(model).get_tags_dict()
    except MlflowException as exc:
        raise invalid(exc.message) from exc
    return entry


def appended_history(previous: str | None, entry: dict[str, Any]) -> str:
    """The ``mlflow.log-model.history`` tag value with ``entry`` added, written as MLflow's ``json.dumps``."""
    return json.dumps([*(json.loads(previous) if previous else []), entry])


@mlflow_route(router, "/runs/log-model", "POST")
def log_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The legacy model record (the client still sends it after ``log_model``): appends the model's summary
    to the run's ``mlflow.log-model.history`` tag, as mlflow server does (read, append, write the tag)."""
    check_schema(params, LOG_MODEL)
    run_id = run_id_of(params)
    entry = logged_model_entry(str(params["model_json"]))
    run = services.reads.run(run_id, counts=False)
    if run is None:
        raise not_found(f"Run with id={run_id} not found")
    previous = run["tags"].get(LOG_MODEL_HISTORY)  # a deleted run: the tag write below is refused
    execute(services, LogBatch(run_id=run_id, tags=pairs_of([{"key": LOG_MODEL_HISTORY,
                                                              "value": appended_history(previous, entry)}], "tags")),
            actor=actor_of(request))
    return {}


# ----------------------------------------------------------------- search


@mlflow_route(router, "/runs/search", "POST", "GET")
def search_runs(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Search runs of experiments with MLflow's filter grammar, order_by, paging and run_view_type."""
    experiment_ids = params.get("experiment_ids") or []
    if isinstance(experiment_ids, str):
        experiment_ids = [experiment_ids]
    if not isinstance(experiment_ids, list) or not all(isinstance(e, str) for e in experiment_ids):
        raise invalid("Invalid value for parameter 'experiment_ids': expected a list of strings")
    view = RUN_VIEW_TYPES.get(str(params.get("run_view_type") or "ACTIVE_ONLY").upper())
    if view is None:
        raise invalid(f"Invalid run_view_type {params.get('run_view_type')!r}")
    max_results = optional_int(params, "max_results", 1000)
    assert max_results is not None
    if not 1 <= max_results <= MAX_SEARCH_RESULTS:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results' supplied. It must be at most "
                      f"{MAX_SEARCH_RESULTS}, and at least 1")
    clauses = parse_filter(optional_str(params, "filter"))
    raw_order = params.get("order_by") or []
    orders = parse_order_by(raw_order if isinstance(raw_order, list) else [raw_order])
    offset = decode_token(optional_str(params, "page_token"))
    if not experiment_ids:
        return {"runs": []}
    ids = services.reads.search_runs(experiment_ids, clauses, orders, view_type=view, max_results=max_results + 1,
                                     offset=offset)
    out: dict[str, Any] = {"runs": runs_json(services, ids[:max_results])}
    if len(ids) > max_results:
        out["next_page_token"] = encode_token(offset + max_results)
    return out
