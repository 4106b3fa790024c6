"""MLflow 3 logged models: create, get, search, finalize (PATCH), tags, params, delete, artifact listing and
download (``artifacts/directories``, ``artifacts/files``: what MLflow's UI reads).

``mlflow.<flavor>.log_model`` creates one (status PENDING), uploads its files
through the ``mlflow-artifacts`` proxy to ``mlflow-artifacts:/<exp>/models/<id>/artifacts``,
then finalizes it (READY); ``register_model("runs:/<run>/<name>")`` finds it by
searching ``name = '<name>'`` in the run's experiment. Each change is an event
(``producer.mlflow_events``), folded on read.
"""

from __future__ import annotations

import json
import posixpath
from collections.abc import Iterator
from operator import itemgetter
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from producer.ids import new_id
from producer.mlflow_events import (
    LoggedModelCreated,
    LoggedModelDeleted,
    LoggedModelFinalized,
    LoggedModelParamsLogged,
    LoggedModelTagDeleted,
    LoggedModelTagsSet,
)
from tracking import default_run_name

from ..artifacts import ArtifactStore
from ..filters import Clause, parse_filter
from ..services import Services, get_services
from .artifacts import artifacts_at
from .common import append_or_raise, clause_holds, experiment_or_404
from .convert import decode_token, encode_token, kv, metric_json, proxied_location, tags_of
from .errors import invalid, not_found
from .log_reads import LogReads
from .request import optional_int, optional_str, required_str
from .routing import mlflow_route

router = APIRouter()

ATTRIBUTES = {"name": "name", "model_id": "model_id", "source_run_id": "source_run_id", "status": "status",
              "model_type": "model_type", "experiment_id": "experiment_id",
              "creation_timestamp": "creation_timestamp_ms", "creation_time": "creation_timestamp_ms",
              "last_updated_timestamp": "last_updated_timestamp_ms"}
#: The tag MLflow keeps on a logged model: a JSON list of the ``{"name", "version"}`` registering it.
MODEL_VERSIONS_TAG = "mlflow.modelVersions"
STATUSES = {"LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED", "1", "2", "3"}
_STATUS_NUMBERS = {"1": "LOGGED_MODEL_PENDING", "2": "LOGGED_MODEL_READY", "3": "LOGGED_MODEL_UPLOAD_FAILED"}


def _as_mlflow_writes(entry: Any) -> Any:
    """A ``{"name", "version"}`` entry with the version as a number, as MLflow's server writes it."""
    if isinstance(entry, dict) and isinstance(entry.get("version"), str) and entry["version"].isdigit():
        return {**entry, "version": int(entry["version"])}
    return entry


def unique_model_versions(value: str, *added: dict[str, Any]) -> str:
    """The ``mlflow.modelVersions`` tag (a JSON list of ``{"name", "version": <int>}``) plus ``added``, each
    entry once. The stock client appends the version it registered to what the server already recorded, so
    without this every ``register_model`` would list its version twice. A value that is not such a
    list is kept as the caller wrote it."""
    try:
        entries = orjson.loads(value or "[]")
    except orjson.JSONDecodeError:
        return value
    if not isinstance(entries, list):
        return value
    unique: list[Any] = []
    for entry in map(_as_mlflow_writes, [*entries, *added]):
        if entry not in unique:
            unique.append(entry)
    return json.dumps(unique)


def model_metrics(services: Services, model_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    """Metrics logged with a ``model_id`` (``mlflow.models.evaluate``, ``log_metric(model_id=...)``), per model,
    in one query: every point, as MLflow's stores keep them."""
    if not model_ids:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for mid, run_id, key, ds_name, ds_digest, step, ts, value in services.store.query_rows(
            "SELECT model_id, run_id, key, dataset_name, dataset_digest, step, toUnixTimestamp64Milli(timestamp), value "
            "FROM model_metrics FINAL WHERE model_id IN {ids:Array(String)} ORDER BY model_id, key, step, timestamp",
            {"ids": model_ids}):
        metric = {**metric_json(key, value, ts, step), "run_id": run_id, "model_id": mid}
        if ds_name:
            metric["dataset_name"], metric["dataset_digest"] = ds_name, ds_digest
        out.setdefault(mid, []).append(metric)
    return out


def model_json(services: Services, m: dict[str, Any], metrics: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """A logged model in MLflow's shape; ``metrics`` None = read them for this one model."""
    if metrics is None:
        metrics = model_metrics(services, [m["model_id"]]).get(m["model_id"], [])
    info = {
        "model_id": m["model_id"], "experiment_id": m["experiment_id"], "name": m["name"],
        "artifact_uri": proxied_location(m["artifact_location"], services.settings.artifact_root),
        "status": m["status"], "creation_timestamp_ms": m["creation_timestamp_ms"],
        "last_updated_timestamp_ms": m["last_updated_timestamp_ms"], "tags": kv(m["tags"]),
    }
    for field in ("source_run_id", "model_type"):
        if m[field]:
            info[field] = m[field]
    return {"info": info, "data": {"params": kv(m["params"]), "metrics": metrics}}


def model_or_404(services: Services, model_id: str) -> dict[str, Any]:
    found = LogReads(services.store).logged_models([model_id]).get(model_id)
    if found is None or found["deleted"]:
        raise not_found(f"Logged model with ID '{model_id}' not found.")
    return found


@mlflow_route(router, "/logged-models", "POST")
def create_logged_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Create a logged model (PENDING) in an experiment, optionally from a run."""
    experiment_id = required_str(params, "experiment_id")
    exp = experiment_or_404(services, experiment_id)
    run_id = optional_str(params, "source_run_id") or ""  # kept as given, as MLflow does: a run elsewhere is fine
    model_id = f"m-{new_id()}"
    name = optional_str(params, "name") or default_run_name(model_id)  # MLflow: a random adjective-noun-N
    location = f"{exp['artifact_location'].rstrip('/')}/models/{model_id}/artifacts"
    body = LoggedModelCreated(experiment_id=experiment_id, name=name, artifact_location=location,
                              source_run_id=run_id, model_type=optional_str(params, "model_type") or "",
                              params=tuple(tags_of(params.get("params"), "param").items()),
                              tags=tuple(tags_of(params.get("tags"), "tag").items()))
    append_or_raise(services, [services.event(model_id, body)])
    return {"model": model_json(services, model_or_404(services, model_id))}


@mlflow_route(router, "/logged-models/search", "POST")
def search_logged_models(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Search logged models of experiments: filter on name, source_run_id, status, tags., params."""
    experiment_ids = params.get("experiment_ids") or []
    if not isinstance(experiment_ids, list) or not all(isinstance(e, str) for e in experiment_ids):
        raise invalid("Invalid value for parameter 'experiment_ids': expected a list of strings")
    max_results = optional_int(params, "max_results", 100)
    assert max_results is not None
    if not 1 <= max_results <= 50_000:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results'")
    clauses = parse_filter(optional_str(params, "filter"), ATTRIBUTES)
    if any(c.kind == "metric" for c in clauses):
        raise invalid("Filtering logged models by metrics is not supported by runledger")
    offset = decode_token(optional_str(params, "page_token"))
    models = [m for m in LogReads(services.store).logged_models().values()
              if not m["deleted"] and (not experiment_ids or m["experiment_id"] in experiment_ids)
              and all(_holds(m, c) for c in clauses)]
    datasets = _datasets(params.get("datasets"))
    if datasets:
        logged = model_metrics(services, [m["model_id"] for m in models])
        models = [m for m in models if any(_on_dataset(metric, d) for metric in logged.get(m["model_id"], [])
                                           for d in datasets)]
    models.sort(key=lambda m: (-m["creation_timestamp_ms"], m["model_id"]))
    _order(models, params.get("order_by"))
    page = models[offset:offset + max_results]
    metrics = model_metrics(services, [m["model_id"] for m in page])
    out: dict[str, Any] = {"models": [model_json(services, m, metrics.get(m["model_id"], [])) for m in page]}
    if offset + max_results < len(models):
        out["next_page_token"] = encode_token(offset + max_results)
    return out


def _datasets(raw: Any) -> list[dict[str, str]]:
    """``datasets``: ``[{"dataset_name", "dataset_digest"?}, ...]``; a model matches one when it has a metric
    logged on that dataset (as MLflow's store)."""
    if raw in (None, []):
        return []
    if not isinstance(raw, list) or not all(isinstance(d, dict) and isinstance(d.get("dataset_name"), str)
                                            for d in raw):
        raise invalid(f"Invalid value {raw!r} for parameter 'datasets': expected a list of "
                      "{dataset_name, dataset_digest} objects")
    return raw


def _on_dataset(metric: dict[str, Any], d: dict[str, str]) -> bool:
    return bool(metric.get("dataset_name") == d["dataset_name"]
                and (not d.get("dataset_digest") or metric.get("dataset_digest") == d["dataset_digest"]))


def _order(models: list[dict[str, Any]], order_by: Any) -> None:
    """Sort by MLflow's ``order_by`` objects (``{"field_name": "name", "ascending": true}``), attributes only;
    newest first stays the tie-break."""
    if order_by in (None, []):
        return
    if not isinstance(order_by, list) or not all(isinstance(o, dict) for o in order_by):
        raise invalid(f"Invalid value {order_by!r} for parameter 'order_by': expected a list of "
                      "{field_name, ascending} objects")
    for o in reversed(order_by):
        field, ascending = o.get("field_name"), o.get("ascending", True)
        if not isinstance(field, str) or field not in ATTRIBUTES or not isinstance(ascending, bool):
            raise invalid(f"Invalid order_by {o!r}: field_name must be one of {', '.join(sorted(ATTRIBUTES))} "
                          "(metrics are not supported) and ascending a boolean")
        models.sort(key=itemgetter(ATTRIBUTES[field]), reverse=not ascending)


def _holds(m: dict[str, Any], c: Clause) -> bool:
    if c.kind == "tag":
        return clause_holds(m["tags"].get(c.key), c)
    if c.kind == "param":
        return clause_holds(m["params"].get(c.key), c)
    return clause_holds(m.get(ATTRIBUTES[c.key]), c)


@mlflow_route(router, "/logged-models/{model_id}", "GET")
def get_logged_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Get a logged model."""
    return {"model": model_json(services, model_or_404(services, request.path_params["model_id"]))}


@mlflow_route(router, "/logged-models/{model_id}", "PATCH")
def finalize_logged_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Finalize a logged model: READY (or UPLOAD_FAILED)."""
    model_id = request.path_params["model_id"]
    status = str(params.get("status", ""))
    if status not in STATUSES:
        raise invalid(f"Invalid logged model status {params.get('status')!r}")
    model_or_404(services, model_id)
    append_or_raise(services, [services.event(model_id, LoggedModelFinalized(
        status=_STATUS_NUMBERS.get(status, status)))])
    return {"model": model_json(services, model_or_404(services, model_id))}


@mlflow_route(router, "/logged-models/{model_id}", "DELETE")
def delete_logged_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a logged model."""
    model_id = request.path_params["model_id"]
    model_or_404(services, model_id)
    append_or_raise(services, [services.event(model_id, LoggedModelDeleted())])
    return {}


@mlflow_route(router, "/logged-models/{model_id}/tags", "PATCH")
def set_logged_model_tags(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Set tags of a logged model."""
    model_id = request.path_params["model_id"]
    tags = tags_of(params.get("tags"), "tag")
    model_or_404(services, model_id)
    if MODEL_VERSIONS_TAG in tags:
        tags[MODEL_VERSIONS_TAG] = unique_model_versions(tags[MODEL_VERSIONS_TAG])
    if tags:
        append_or_raise(services, [services.event(model_id, LoggedModelTagsSet(tags=tuple(tags.items())))])
    return {}


@mlflow_route(router, "/logged-models/{model_id}/tags/{tag_key:path}", "DELETE")
def delete_logged_model_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a tag of a logged model."""
    model_id, key = request.path_params["model_id"], request.path_params["tag_key"]
    model = model_or_404(services, model_id)
    if key not in model["tags"]:
        raise not_found(f"No tag with key {key!r} found for model with ID {model_id!r}.")
    append_or_raise(services, [services.event(model_id, LoggedModelTagDeleted(key=key))])
    return {}


@mlflow_route(router, "/logged-models/{model_id}/params", "POST")
def log_logged_model_params(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Log params of a logged model."""
    model_id = request.path_params["model_id"]
    values = tags_of(params.get("params"), "param")
    model_or_404(services, model_id)
    if values:
        append_or_raise(services, [services.event(model_id, LoggedModelParamsLogged(params=tuple(values.items())))])
    return {}


def _artifacts(services: Services, model: dict[str, Any], relative: str) -> tuple[ArtifactStore, str]:
    """The store and path of a file or folder under a logged model's artifacts: the proxy's, or the local
    folder under ``--default-artifact-root`` (``..`` is refused either way)."""
    uri = proxied_location(model["artifact_location"], services.settings.artifact_root)
    return artifacts_at(services, uri, relative)


@mlflow_route(router, "/logged-models/{model_id}/artifacts/directories", "GET")
def list_logged_model_artifacts(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """List a logged model's files under ``artifact_directory_path`` (paths relative to its artifact root)."""
    model = model_or_404(services, request.path_params["model_id"])
    directory = optional_str(params, "artifact_directory_path") or ""
    store, at = _artifacts(services, model, directory)
    files = store.list(at)
    return {"root_uri": proxied_location(model["artifact_location"], services.settings.artifact_root),
            "files": [{"path": posixpath.join(directory.strip("/"), f.path), "is_dir": f.is_dir,
                       **({} if f.size is None else {"file_size": f.size})} for f in files]}


@router.get("/logged-models/{model_id}/artifacts/files", summary="Download one file of a logged model")
async def get_logged_model_artifact(model_id: str, request: Request,
                                    services: Services = Depends(get_services)) -> Response:
    """The file at ``?artifact_file_path=`` under a logged model's artifacts (what MLflow's UI fetches)."""
    relative = request.query_params.get("artifact_file_path", "")
    if not relative.strip("/"):
        raise invalid('Request must include the "artifact_file_path" query parameter.')
    model = await run_in_threadpool(model_or_404, services, model_id)
    store, at = await run_in_threadpool(_artifacts, services, model, relative)
    chunks: Iterator[bytes] = await run_in_threadpool(store.open, at)
    return StreamingResponse(iterate_in_threadpool(chunks), media_type="application/octet-stream")
