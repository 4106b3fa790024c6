"""MLflow's model registry API (registered-models, model-versions) over the event-sourced registry.

Every call runs a :mod:`registry` command through the server's
:class:`~registry.service.RegistryService` as the request's actor (HTTP Basic
user — what ``MLFLOW_TRACKING_USERNAME`` sends — else the ``X-Runledger-Actor``
header, else ``anonymous``), so it is recorded as registry events and shows up
in ``GET /api/v1/registry/models/{name}/history``.
"""

from __future__ import annotations

from typing import Any, Callable

from fastapi import APIRouter, Request

import registry as reg
from registry.service import RegistryService

from ..filters import Clause, parse_filter, parse_order_by
from ..registry_startup import registry_service
from ..routes.registry import actor_of
from ..services import Services
from . import ROUTERS
from .common import clause_holds
from .convert import decode_token, encode_token, kv, proxied_location, tags_of
from .errors import invalid, not_found
from .log_reads import LogReads
from .request import optional_int, optional_str, required_str, str_list
from .routing import mlflow_route

router = APIRouter()
ROUTERS.append(router)

MODEL_ATTRIBUTES = {"name": "name", "creation_timestamp": "created_ms", "last_updated_timestamp": "updated_ms"}
VERSION_ATTRIBUTES = {"name": "name", "version": "version", "version_number": "version", "run_id": "run_id",
                      "source": "source", "source_path": "source", "current_stage": "stage", "model_id": "model_id",
                      "creation_timestamp": "created_ms", "last_updated_timestamp": "updated_ms"}


def _service(services: Services) -> RegistryService:
    return registry_service(services)


def _run(services: Services, request: Request, command: reg.Command) -> list[Any]:
    return _service(services).execute(command, actor_of(request))


def _version_number(params: dict[str, Any]) -> int:
    raw = params.get("version")
    try:
        number = int(str(raw))
    except (TypeError, ValueError):
        raise invalid(f"Invalid value {raw!r} for parameter 'version': expected a version number") from None
    if number < 1:
        raise invalid(f"Invalid value {raw!r} for parameter 'version': versions start at 1")
    return number


def version_json(model: reg.ModelState, v: reg.VersionState) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": model.name, "version": str(v.version), "creation_timestamp": v.created_ms,
        "last_updated_timestamp": v.updated_ms, "user_id": v.created_by, "current_stage": v.stage,
        "description": v.description, "source": v.source, "status": "READY", "tags": kv(v.tags),
        "run_link": v.run_link, "aliases": reg.aliases_of(model, v.version),
    }
    if v.run_id:
        out["run_id"] = v.run_id
    if v.model_id:
        out["model_id"] = v.model_id
    return out


def model_json(model: reg.ModelState) -> dict[str, Any]:
    return {
        "name": model.name, "creation_timestamp": model.created_ms, "last_updated_timestamp": model.updated_ms,
        "user_id": model.created_by, "description": model.description, "tags": kv(model.tags),
        "latest_versions": [version_json(model, v) for v in reg.latest_versions(model).values()],
        "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(model.aliases.items())],
    }


_NEGATIONS = ("!=", "NOT LIKE", "NOT ILIKE", "NOT IN", "IS NULL")


def _tag_holds(tags: Any, c: Clause) -> bool:
    """A tag clause; a model or version without the tag satisfies the negations, as in MLflow (its client
    hides prompts with ``tags.`mlflow.prompt.is_prompt` != 'true'``)."""
    value = tags.get(c.key)
    return c.op in _NEGATIONS if value is None else clause_holds(value, c)


def _model(services: Services, name: str) -> reg.ModelState:
    return _service(services).model(name)


# ------------------------------------------------------------ registered models


@mlflow_route(router, "/registered-models/create", "POST")
def create_registered_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Create a registered model."""
    name = required_str(params, "name")
    tags = tags_of(params.get("tags"), "registered model tag")
    _run(services, request, reg.CreateModel(name=name, description=optional_str(params, "description") or "",
                                            tags=tuple(tags.items())))
    return {"registered_model": model_json(_model(services, name))}


@mlflow_route(router, "/registered-models/get", "GET")
def get_registered_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Get a registered model with its latest versions per stage and its aliases."""
    return {"registered_model": model_json(_model(services, required_str(params, "name")))}


@mlflow_route(router, "/registered-models/rename", "POST")
def rename_registered_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Rename a registered model (its versions and audit trail follow)."""
    new_name = required_str(params, "new_name")
    _run(services, request, reg.RenameModel(name=required_str(params, "name"), new_name=new_name))
    return {"registered_model": model_json(_model(services, new_name))}


@mlflow_route(router, "/registered-models/update", "PATCH", "POST")
def update_registered_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Update a registered model's description."""
    name = required_str(params, "name")
    _run(services, request, reg.UpdateModelDescription(name=name, description=optional_str(params, "description")
                                                       or ""))
    return {"registered_model": model_json(_model(services, name))}


@mlflow_route(router, "/registered-models/delete", "DELETE", "POST")
def delete_registered_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a registered model (its name becomes free)."""
    _run(services, request, reg.DeleteModel(name=required_str(params, "name")))
    return {}


@mlflow_route(router, "/registered-models/set-tag", "POST")
def set_registered_model_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Set a tag of a registered model."""
    value = params.get("value", "")
    _run(services, request, reg.SetModelTag(name=required_str(params, "name"), key=required_str(params, "key"),
                                            value=value if isinstance(value, str) else str(value)))
    return {}


@mlflow_route(router, "/registered-models/delete-tag", "DELETE", "POST")
def delete_registered_model_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a tag of a registered model."""
    _run(services, request, reg.DeleteModelTag(name=required_str(params, "name"), key=required_str(params, "key")))
    return {}


@mlflow_route(router, "/registered-models/alias", "POST")
def set_alias(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Point an alias at a version (moving it if set)."""
    _run(services, request, reg.SetAlias(name=required_str(params, "name"), alias=required_str(params, "alias"),
                                         version=_version_number(params)))
    return {}


@mlflow_route(router, "/registered-models/alias", "DELETE")
def delete_alias(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete an alias."""
    _run(services, request, reg.DeleteAlias(name=required_str(params, "name"), alias=required_str(params, "alias")))
    return {}


@mlflow_route(router, "/registered-models/alias", "GET")
def get_version_by_alias(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The version an alias points at."""
    name, alias = required_str(params, "name"), required_str(params, "alias")
    model = _model(services, name)
    number = model.aliases.get(alias)
    if number is None:
        raise not_found(f"Registered model alias {alias} not found.")
    return {"model_version": version_json(model, model.versions[number])}


@mlflow_route(router, "/registered-models/get-latest-versions", "POST", "GET")
def get_latest_versions(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The highest version in each of the given stages (all stages by default)."""
    model = _model(services, required_str(params, "name"))
    try:
        latest = reg.latest_versions(model, str_list(params, "stages"))
    except ValueError as exc:
        raise invalid(str(exc)) from None
    return {"model_versions": [version_json(model, v) for v in latest.values()]}


def _page(items: list[Any], params: dict[str, Any], default: int, render: Callable[[Any], Any],
          key: str) -> dict[str, Any]:
    max_results = optional_int(params, "max_results", default)
    assert max_results is not None
    if not 1 <= max_results <= 200_000:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results'")
    offset = decode_token(optional_str(params, "page_token"))
    out: dict[str, Any] = {key: [render(x) for x in items[offset:offset + max_results]]}
    if offset + max_results < len(items):
        out["next_page_token"] = encode_token(offset + max_results)
    return out


def _sort(items: list[Any], params: dict[str, Any], attributes: dict[str, str],
          value: Callable[[Any, str], Any]) -> None:
    raw = params.get("order_by") or []
    for o in reversed(parse_order_by(raw if isinstance(raw, list) else [raw], attributes)):
        if o.kind != "attribute":
            raise invalid(f"Invalid order_by {o.kind}.{o.key}: order by name, version or timestamps")
        items.sort(key=lambda x, f=attributes[o.key]: value(x, f), reverse=not o.ascending)


@mlflow_route(router, "/registered-models/search", "GET", "POST")
def search_registered_models(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Search registered models: filter on name (= != LIKE ILIKE) and tags., order_by, paging."""
    clauses = parse_filter(optional_str(params, "filter"), MODEL_ATTRIBUTES)

    def holds(m: reg.ModelState, c: Clause) -> bool:
        if c.kind == "tag":
            return _tag_holds(m.tags, c)
        if c.kind != "attribute":
            raise invalid(f"Invalid filter on {c.kind}.{c.key}: registered models filter on name and tags")
        return clause_holds(getattr(m, MODEL_ATTRIBUTES[c.key]), c)

    models = [m for m in reg.list_models(_service(services).state()) if all(holds(m, c) for c in clauses)]
    _sort(models, params, MODEL_ATTRIBUTES, lambda m, f: getattr(m, f))
    return _page(models, params, 100, model_json, "registered_models")


# -------------------------------------------------------------- model versions


@mlflow_route(router, "/model-versions/create", "POST")
def create_model_version(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Register a new version (numbered 1, 2, 3 ... per model, never reused)."""
    name = required_str(params, "name")
    events = _run(services, request, reg.CreateVersion(
        name=name, source=required_str(params, "source"), run_id=optional_str(params, "run_id") or None,
        run_link=optional_str(params, "run_link") or "", description=optional_str(params, "description") or "",
        tags=tuple(tags_of(params.get("tags"), "model version tag").items()),
        model_id=optional_str(params, "model_id") or None))
    number = events[0].body.version
    model = _model(services, name)
    return {"model_version": version_json(model, model.versions[number])}


def _version(services: Services, params: dict[str, Any]) -> tuple[reg.ModelState, reg.VersionState]:
    model = _model(services, required_str(params, "name"))
    return model, reg.version_in(model, _version_number(params))


@mlflow_route(router, "/model-versions/get", "GET")
def get_model_version(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """One version of a model."""
    return {"model_version": version_json(*_version(services, params))}


@mlflow_route(router, "/model-versions/update", "PATCH", "POST")
def update_model_version(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Update a version's description."""
    name, number = required_str(params, "name"), _version_number(params)
    _run(services, request, reg.UpdateVersionDescription(name=name, version=number,
                                                         description=optional_str(params, "description") or ""))
    return {"model_version": version_json(*_version(services, params))}


@mlflow_route(router, "/model-versions/delete", "DELETE", "POST")
def delete_model_version(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a version (its number is never reused)."""
    _run(services, request, reg.DeleteVersion(name=required_str(params, "name"), version=_version_number(params)))
    return {}


@mlflow_route(router, "/model-versions/transition-stage", "POST")
def transition_stage(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Move a version to None / Staging / Production / Archived (optionally archiving the others there)."""
    archive = params.get("archive_existing_versions", False)
    if isinstance(archive, str):
        archive = archive.lower() == "true"
    _run(services, request, reg.TransitionStage(name=required_str(params, "name"), version=_version_number(params),
                                                stage=required_str(params, "stage"),
                                                archive_existing_versions=bool(archive)))
    return {"model_version": version_json(*_version(services, params))}


@mlflow_route(router, "/model-versions/set-tag", "POST")
def set_model_version_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Set a tag of a version."""
    value = params.get("value", "")
    _run(services, request, reg.SetVersionTag(name=required_str(params, "name"), version=_version_number(params),
                                              key=required_str(params, "key"),
                                              value=value if isinstance(value, str) else str(value)))
    return {}


@mlflow_route(router, "/model-versions/delete-tag", "DELETE", "POST")
def delete_model_version_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a tag of a version."""
    _run(services, request, reg.DeleteVersionTag(name=required_str(params, "name"), version=_version_number(params),
                                                 key=required_str(params, "key")))
    return {}


@mlflow_route(router, "/model-versions/get-download-uri", "GET")
def get_download_uri(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Where a version's files are: its logged model's artifacts, its run's artifacts, or its source URI."""
    _, v = _version(services, params)
    root = services.settings.artifact_root
    if v.model_id or v.source.startswith("models:/m-"):
        model_id = v.model_id or v.source[len("models:/"):].split("/")[0]
        lm = LogReads(services.store).logged_models([model_id]).get(model_id)
        if lm is not None:
            return {"artifact_uri": proxied_location(lm["artifact_location"], root)}
    if v.source.startswith("runs:/"):
        run_id, _, path = v.source[len("runs:/"):].partition("/")
        run = services.reads.run(run_id)
        if run is not None:
            exp = services.reads.experiment(run["experiment_id"])
            base = proxied_location(exp["artifact_location"] if exp else f"{root}/{run['experiment_id']}", root)
            return {"artifact_uri": f"{base.rstrip('/')}/{run_id}/artifacts/{path}".rstrip("/")}
    return {"artifact_uri": proxied_location(v.source, root)}


@mlflow_route(router, "/model-versions/search", "GET", "POST")
def search_model_versions(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Search versions: filter on name, version, run_id, source, tags., order_by, paging."""
    clauses = parse_filter(optional_str(params, "filter"), VERSION_ATTRIBUTES)
    rows = [(m, v) for m in reg.list_models(_service(services).state()) for v in m.versions.values()]

    def field(row: tuple[reg.ModelState, reg.VersionState], f: str) -> Any:
        return row[0].name if f == "name" else getattr(row[1], f)

    def holds(row: tuple[reg.ModelState, reg.VersionState], c: Clause) -> bool:
        if c.kind == "tag":
            return _tag_holds(row[1].tags, c)
        if c.kind != "attribute":
            raise invalid(f"Invalid filter on {c.kind}.{c.key}: model versions filter on attributes and tags")
        return clause_holds(field(row, VERSION_ATTRIBUTES[c.key]), c)

    found = [r for r in rows if all(holds(r, c) for c in clauses)]
    found.sort(key=lambda r: (r[0].name, -r[1].version))
    _sort(found, params, VERSION_ATTRIBUTES, field)
    return _page(found, params, 10_000, lambda r: version_json(*r), "model_versions")
