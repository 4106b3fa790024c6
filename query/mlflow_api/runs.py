"""MLflow runs: create, get, update, delete, restore, search, log-batch / -metric / -parameter, set-tag,
delete-tag, log-inputs, outputs. Every write becomes tracking events; every read comes from the projections.

Writes are idempotent under the client's POST retries: metric points are
keyed by (run, key, step) with the client's timestamp, params accept the same
value again, tags are last-write-wins, so a retried ``log-batch`` changes no
count, latest value or history.
"""

from __future__ import annotations

import random
import time
from typing import Any

import orjson
from fastapi import APIRouter, Request

from producer.events import (
    MetricsLogged,
    ParamsLogged,
    RunCreated,
    RunDeleted,
    RunEnded,
    RunRenamed,
    RunRestored,
    RunStatusChanged,
    TagsDeleted,
    TagsSet,
)
from producer.ids import new_id
from producer.mlflow_events import RunInputsLogged, RunOutputsLogged

from ..filters import parse_filter, parse_order_by
from ..services import Services
from . import ROUTERS
from .common import active_run, append_or_raise, ensure_active, experiment_or_404, run_or_404
from .convert import decode_token, encode_token, run_info_json, run_json, tags_of
from .errors import invalid
from .log_reads import LogReads
from .request import optional_int, optional_str, required_str
from .routing import mlflow_route

router = APIRouter()
ROUTERS.append(router)

MAX_METRICS_PER_BATCH = 1000
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_ENTITIES_PER_BATCH = 1000
MAX_KEY_LENGTH = 250
MAX_PARAM_VALUE_LENGTH = 6000
MAX_TAG_VALUE_LENGTH = 8000
MAX_SEARCH_RESULTS = 50_000
TERMINAL = ("FINISHED", "FAILED", "KILLED")
STATUSES = ("RUNNING", "SCHEDULED", *TERMINAL)
RUN_VIEW_TYPES = {"ACTIVE_ONLY": "ACTIVE_ONLY", "DELETED_ONLY": "DELETED_ONLY", "ALL": "ALL",
                  "1": "ACTIVE_ONLY", "2": "DELETED_ONLY", "3": "ALL"}
_ADJECTIVES = ("bold", "calm", "brave", "bright", "clever", "gentle", "lucky", "merry", "quick", "shy", "wise")
_NOUNS = ("ant", "bear", "crane", "deer", "eel", "finch", "gull", "hare", "ibis", "lynx", "moth", "owl", "wolf")


def run_id_of(params: dict[str, Any]) -> str:
    """``run_id``, or the deprecated ``run_uuid`` older clients send."""
    rid = params.get("run_id") or params.get("run_uuid")
    if not isinstance(rid, str) or not rid:
        raise invalid("Missing value for required parameter 'run_id'.")
    return rid


def _location(services: Services, experiment_id: str, cache: dict[str, str] | None = None) -> str:
    if cache is not None and experiment_id in cache:
        return cache[experiment_id]
    exp = services.reads.experiment(experiment_id)
    loc = (exp["artifact_location"] if exp else "") or f"{services.settings.artifact_root}/{experiment_id}"
    from .convert import proxied_location

    loc = proxied_location(loc, services.settings.artifact_root)
    if cache is not None:
        cache[experiment_id] = loc
    return loc


def runs_json(services: Services, run_ids: list[str]) -> list[dict[str, Any]]:
    runs = services.reads.runs(run_ids)
    io = LogReads(services.store).run_io([r["run_id"] for r in runs])
    cache: dict[str, str] = {}
    return [run_json(r, _location(services, r["experiment_id"], cache), *io.get(r["run_id"], (None, None)))
            for r in runs]


def get_run_json(services: Services, run_id: str) -> dict[str, Any]:
    run_or_404(services, run_id)
    return runs_json(services, [run_id])[0]


# ------------------------------------------------------------------ lifecycle


@mlflow_route(router, "/runs/create", "POST")
def create_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Create a run in an experiment (run id minted here)."""
    experiment_id = optional_str(params, "experiment_id") or "0"
    exp = experiment_or_404(services, experiment_id)
    if exp["lifecycle_stage"] != "active":
        raise invalid(f"The experiment {experiment_id} must be in the 'active' state. "
                      f"Current state is {exp['lifecycle_stage']}.")
    tags = tags_of(params.get("tags"), "tag")
    _check_tags(tags)
    name = optional_str(params, "run_name") or tags.get("mlflow.runName") or (
        f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}-{random.randrange(1000)}")
    tags["mlflow.runName"] = name
    user = optional_str(params, "user_id") or tags.get("mlflow.user", "")
    start = optional_int(params, "start_time") or int(time.time() * 1000)
    run_id = new_id()
    append_or_raise(services, [services.event(run_id, RunCreated(
        experiment_id=experiment_id, name=name, tags=tuple(tags.items()),
        parent_run_id=tags.get("mlflow.parentRunId") or None, start_time_ms=start, user=user))])
    return {"run": get_run_json(services, run_id)}


@mlflow_route(router, "/runs/get", "GET")
def get_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """A run: info, latest metrics, params, tags, inputs, outputs."""
    return {"run": get_run_json(services, run_id_of(params))}


@mlflow_route(router, "/runs/update", "POST")
def update_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Change a run's status (ending it with end_time when terminal) and/or its name."""
    run_id = run_id_of(params)
    run = active_run(services, run_id)
    status = optional_str(params, "status")
    name = optional_str(params, "run_name")
    events = []
    if status is not None:
        if status not in STATUSES:
            raise invalid(f"Invalid run status {status!r}; one of {', '.join(STATUSES)}")
        if status in TERMINAL:
            end = optional_int(params, "end_time") or int(time.time() * 1000)
            events.append(services.event(run_id, RunEnded(status=status, end_time_ms=end)))
        else:
            events.append(services.event(run_id, RunStatusChanged(status=status)))
    if name:
        events.append(services.event(run_id, RunRenamed(name=name)))
        events.append(services.event(run_id, TagsSet(tags=(("mlflow.runName", name),))))
    if events:
        append_or_raise(services, events)
        run = run_or_404(services, run_id)
    return {"run_info": run_info_json(run, _location(services, run["experiment_id"]))}


@mlflow_route(router, "/runs/delete", "POST")
def delete_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Mark a run deleted (restorable)."""
    run_id = run_id_of(params)
    run_or_404(services, run_id)
    append_or_raise(services, [services.event(run_id, RunDeleted())])
    return {}


@mlflow_route(router, "/runs/restore", "POST")
def restore_run(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Restore a deleted run."""
    run_id = run_id_of(params)
    run_or_404(services, run_id)
    append_or_raise(services, [services.event(run_id, RunRestored())])
    return {}


# ---------------------------------------------------------------- logging


def _check_key(key: Any, what: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise invalid(f"Invalid {what} name: {key!r}. Names must be non-empty strings.")
    if len(key) > MAX_KEY_LENGTH:
        raise invalid(f"{what.capitalize()} name '{key[:50]}...' had length {len(key)}, which exceeded length "
                      f"limit of {MAX_KEY_LENGTH}")
    if key.startswith("/") or ".." in key.split("/"):
        raise invalid(f"Invalid {what} name: '{key}'. Names may not start with '/' or contain '..' path parts.")
    return key


def _check_tags(tags: dict[str, str]) -> None:
    for k, v in tags.items():
        _check_key(k, "tag")
        if len(v) > MAX_TAG_VALUE_LENGTH:
            raise invalid(f"Tag value for '{k}' had length {len(v)}, which exceeded length limit of "
                          f"{MAX_TAG_VALUE_LENGTH}")


def _float(v: Any, key: str) -> float:
    if isinstance(v, bool):
        raise invalid(f"Got invalid value {v!r} for metric '{key}'; expected a number")
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)  # "NaN", "Infinity", "-Infinity": protobuf's JSON for non-finite doubles
        except ValueError:
            pass
    raise invalid(f"Got invalid value {v!r} for metric '{key}'. Please specify value as a valid double "
                  "(64-bit floating point)")


def _int(v: Any, what: str, default: int | None = None) -> int:
    if v is None or v == "":
        if default is None:
            raise invalid(f"Missing value for required parameter '{what}'.")
        return default
    if isinstance(v, bool):
        raise invalid(f"Invalid value {v!r} for '{what}': expected an integer")
    try:
        out = int(v)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value {v!r} for '{what}': expected an integer") from None
    if not -(2**63) <= out < 2**63:
        raise invalid(f"Invalid value {v!r} for '{what}': out of the int64 range")
    return out


def _metrics_event(services: Services, run_id: str, metrics: list[Any]) -> list[Any]:
    if not metrics:
        return []
    keys, steps, stamps, values = [], [], [], []
    now = int(time.time() * 1000)
    for m in metrics:
        if not isinstance(m, dict):
            raise invalid(f"Invalid metric {m!r}: expected an object with key, value, timestamp, step")
        key = _check_key(m.get("key"), "metric")
        keys.append(key)
        values.append(_float(m.get("value"), key))
        stamps.append(_int(m.get("timestamp"), "timestamp", now))
        steps.append(_int(m.get("step"), "step", 0))
    return [services.event(run_id, MetricsLogged(keys=tuple(keys), steps=tuple(steps), timestamps_ms=tuple(stamps),
                                                 values=tuple(values)))]


def _params_event(services: Services, run_id: str, params: list[Any]) -> list[Any]:
    if not params:
        return []
    out: dict[str, str] = {}
    for p in params:
        if not isinstance(p, dict):
            raise invalid(f"Invalid param {p!r}: expected an object with key and value")
        key = _check_key(p.get("key"), "param")
        value = p.get("value", "")
        value = value if isinstance(value, str) else str(value)
        if len(value) > MAX_PARAM_VALUE_LENGTH:
            raise invalid(f"Param value '{value[:50]}...' had length {len(value)}, which exceeded length limit of "
                          f"{MAX_PARAM_VALUE_LENGTH}")
        if key in out and out[key] != value:
            raise invalid(f"Duplicate parameter keys have been submitted: [{key}]. Please ensure the request "
                          "contains only one param value per param key.")
        out[key] = value
    return [services.event(run_id, ParamsLogged(params=tuple(out.items())))]


def _tags_events(services: Services, run_id: str, tags: dict[str, str]) -> list[Any]:
    if not tags:
        return []
    _check_tags(tags)
    events = [services.event(run_id, TagsSet(tags=tuple(tags.items())))]
    if tags.get("mlflow.runName"):
        events.append(services.event(run_id, RunRenamed(name=tags["mlflow.runName"])))
    return events


def _as_list(params: dict[str, Any], name: str) -> list[Any]:
    v = params.get(name) or []
    if not isinstance(v, list):
        raise invalid(f"Invalid value for parameter '{name}': expected a list")
    return v


@mlflow_route(router, "/runs/log-batch", "POST")
def log_batch(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Log up to 1000 metrics, 100 params and 100 tags to a run at once."""
    run_id = run_id_of(params)
    metrics, ps, tags = _as_list(params, "metrics"), _as_list(params, "params"), _as_list(params, "tags")
    if len(metrics) > MAX_METRICS_PER_BATCH:
        raise invalid(f"A batch logging request can contain at most {MAX_METRICS_PER_BATCH} metrics. "
                      f"Got {len(metrics)} metrics. Please split up metrics across multiple requests and try again.")
    for what, items in (("params", ps), ("tags", tags)):
        if len(items) > MAX_PARAMS_TAGS_PER_BATCH:
            raise invalid(f"A batch logging request can contain at most {MAX_PARAMS_TAGS_PER_BATCH} {what}. "
                          f"Got {len(items)} {what}. Please split up {what} across multiple requests and try again.")
    if len(metrics) + len(ps) + len(tags) > MAX_ENTITIES_PER_BATCH:
        raise invalid(f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} total "
                      "metrics, params and tags.")
    events = (_params_event(services, run_id, ps) + _tags_events(services, run_id, tags_of(tags, "tag"))
              + _metrics_event(services, run_id, metrics))
    ensure_active(services, run_id)
    if events:
        append_or_raise(services, events)
    return {}


@mlflow_route(router, "/runs/log-metric", "POST")
def log_metric(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Log one metric point."""
    run_id = run_id_of(params)
    events = _metrics_event(services, run_id, [{k: params.get(k) for k in ("key", "value", "timestamp", "step")}])
    ensure_active(services, run_id)
    append_or_raise(services, events)
    return {}


@mlflow_route(router, "/runs/log-parameter", "POST")
def log_param(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Log one param (immutable: a different value for a logged key is INVALID_PARAMETER_VALUE)."""
    run_id = run_id_of(params)
    events = _params_event(services, run_id, [{"key": params.get("key"), "value": params.get("value", "")}])
    ensure_active(services, run_id)
    append_or_raise(services, events)
    return {}


@mlflow_route(router, "/runs/set-tag", "POST")
def set_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Set one tag (mlflow.runName also renames the run)."""
    run_id = run_id_of(params)
    key = required_str(params, "key")
    value = params.get("value", "")
    events = _tags_events(services, run_id, {key: value if isinstance(value, str) else str(value)})
    ensure_active(services, run_id)
    append_or_raise(services, events)
    return {}


@mlflow_route(router, "/runs/delete-tag", "POST")
def delete_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete one tag of a run."""
    run_id = run_id_of(params)
    key = required_str(params, "key")
    run = active_run(services, run_id)
    if key not in run["tags"]:
        raise invalid(f"No tag with name: {key} in run with id {run_id}")
    append_or_raise(services, [services.event(run_id, TagsDeleted(keys=(key,)))])
    return {}


def _dataset_inputs(items: list[Any]) -> tuple[str, ...]:
    out = []
    for d in items:
        ds = d.get("dataset") if isinstance(d, dict) else None
        if not isinstance(ds, dict) or not all(isinstance(ds.get(f), str) and ds.get(f) for f in
                                               ("name", "digest", "source_type", "source")):
            raise invalid(f"Invalid dataset input {d!r}: dataset needs name, digest, source_type and source")
        if len(ds["name"]) > 500 or len(ds["digest"]) > 36:
            raise invalid("Dataset name must be <= 500 and digest <= 36 characters")
        entry = {"tags": [t for t in d.get("tags") or [] if isinstance(t, dict)], "dataset": ds}
        out.append(orjson.dumps(entry, option=orjson.OPT_SORT_KEYS).decode())
    return tuple(out)


def _model_refs(items: list[Any], with_step: bool) -> tuple[str, ...]:
    out = []
    for m in items:
        if not isinstance(m, dict) or not isinstance(m.get("model_id"), str) or not m["model_id"]:
            raise invalid(f"Invalid model reference {m!r}: needs a model_id")
        ref: dict[str, Any] = {"model_id": m["model_id"]}
        if with_step:
            ref["step"] = _int(m.get("step"), "step", 0)
        out.append(orjson.dumps(ref, option=orjson.OPT_SORT_KEYS).decode())
    return tuple(out)


@mlflow_route(router, "/runs/log-inputs", "POST")
def log_inputs(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Record datasets (and models) a run used."""
    run_id = run_id_of(params)
    datasets = _as_list(params, "datasets")
    if len(datasets) > MAX_ENTITIES_PER_BATCH:
        raise invalid(f"A batch logging request can contain at most {MAX_ENTITIES_PER_BATCH} datasets.")
    body = RunInputsLogged(datasets=_dataset_inputs(datasets), models=_model_refs(_as_list(params, "models"), False))
    ensure_active(services, run_id)
    append_or_raise(services, [services.event(run_id, body)])
    return {}


@mlflow_route(router, "/runs/outputs", "POST")
def log_outputs(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Record models a run produced (MLflow 3 ``log_outputs``)."""
    run_id = run_id_of(params)
    body = RunOutputsLogged(models=_model_refs(_as_list(params, "models"), True))
    ensure_active(services, run_id)
    append_or_raise(services, [services.event(run_id, body)])
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
