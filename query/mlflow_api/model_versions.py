"""MLflow's model-versions API over the event-sourced registry.

Versions are numbered 1, 2, 3 … per model and never reused; they are READY
as soon as ``create`` answers. ``create`` checks the source's lineage as
MLflow 3's server does (:func:`lineage`, rules in ``registry._sources``: no
``..``, no local paths, ``runs:/<id>``, ``mlflow-artifacts`` and
``models:/<model id>`` sources must lie in the given ``run_id`` / ``model_id``,
a ``models:/name/N`` source — ``copy_model_version`` — is pinned to the
version it names and inherits its run and logged model) and, for an
MLflow-3 logged model, records the version on the logged model's
``mlflow.modelVersions`` tag, as MLflow does.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Request

import registry as reg
from producer.errors import NotFoundError
from producer.mlflow_events import LoggedModelTagsSet
from producer.registry_events import ModelVersionCreated
from registry.service import RegistryService

from ..auth.guard import readable_for
from ..filters import Clause, parse_filter
from ..registry_startup import registry_service
from ..services import Services
from .common import append_or_raise, clause_holds
from .common_registry import (
    VERSION_ATTRIBUTES,
    execute,
    flag,
    model_named,
    page,
    sort_rows,
    tag_holds,
    version_json,
    version_number,
)
from .convert import proxied_location, tags_of
from .errors import invalid, not_found
from .log_reads import LogReads
from .logged_models import MODEL_VERSIONS_TAG, unique_model_versions
from .request import optional_str, required_str
from .routing import mlflow_route, with_model
from .runs import experiment_location

router = APIRouter()

Row = tuple[reg.ModelState, reg.VersionState]
#: How many ``models:/name/N`` hops :func:`download_uri` follows (a copy of a copy of ...).
MAX_SOURCE_HOPS = 8


def _version(services: Services, params: dict[str, Any]) -> Row:
    model = model_named(services, required_str(params, "name"))
    return model, reg.version_in(model, version_number(params))


@mlflow_route(router, "/model-versions/create", "POST")
def create_model_version(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Register a new version (numbered 1, 2, 3 ... per model, never reused); READY at once."""
    name = required_str(params, "name")
    tags = tags_of(params.get("tags"), "model version tag")
    service: RegistryService = registry_service(services)
    service.model(name)  # an unknown model is RESOURCE_DOES_NOT_EXIST before the source is looked at
    source, run_id, model_id = lineage(services, service, required_str(params, "source"),
                                       optional_str(params, "run_id") or None, optional_str(params, "model_id") or None)
    events = execute(services, request, reg.CreateVersion(
        name=name, source=source, run_id=run_id, run_link=optional_str(params, "run_link") or "",
        description=optional_str(params, "description") or "", tags=tuple(tags.items()), model_id=model_id))
    created = events[0].body
    assert isinstance(created, ModelVersionCreated)
    number = created.version
    if model_id:
        record_on_logged_model(services, model_id, name, number, events[0].actor)
    model = model_named(services, name)
    return {"model_version": version_json(model, model.versions[number])}


@mlflow_route(router, "/model-versions/get", "GET", in_memory=with_model)
def get_model_version(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """One version of a model."""
    return {"model_version": version_json(*_version(services, params))}


@mlflow_route(router, "/model-versions/update", "PATCH", "POST")
def update_model_version(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Update a version's description."""
    name, number = required_str(params, "name"), version_number(params)
    execute(services, request, reg.UpdateVersionDescription(name=name, version=number,
                                                            description=optional_str(params, "description") or ""))
    return {"model_version": version_json(*_version(services, params))}


@mlflow_route(router, "/model-versions/delete", "DELETE", "POST")
def delete_model_version(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a version (its number is never reused; aliases pointing at it go with it)."""
    execute(services, request, reg.DeleteVersion(name=required_str(params, "name"), version=version_number(params)))
    return {}


@mlflow_route(router, "/model-versions/transition-stage", "POST")
def transition_stage(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Move a version to None / Staging / Production / Archived (optionally archiving the others there)."""
    execute(services, request, reg.TransitionStage(
        name=required_str(params, "name"), version=version_number(params), stage=required_str(params, "stage"),
        archive_existing_versions=flag(params, "archive_existing_versions")))
    return {"model_version": version_json(*_version(services, params))}


@mlflow_route(router, "/model-versions/set-tag", "POST")
def set_model_version_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Set a tag of a version."""
    execute(services, request, reg.SetVersionTag(name=required_str(params, "name"), version=version_number(params),
                                                 key=required_str(params, "key"),
                                                 value=optional_str(params, "value") or ""))
    return {}


@mlflow_route(router, "/model-versions/delete-tag", "DELETE", "POST")
def delete_model_version_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a tag of a version."""
    execute(services, request, reg.DeleteVersionTag(name=required_str(params, "name"),
                                                    version=version_number(params), key=required_str(params, "key")))
    return {}


@mlflow_route(router, "/model-versions/get-download-uri", "GET")
def get_download_uri(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Where a version's files are: its logged model's artifacts, the version it copies, or its source URI."""
    _, v = _version(services, params)
    return {"artifact_uri": download_uri(services, registry_service(services), v)}


@mlflow_route(router, "/model-versions/search", "GET", "POST", in_memory=with_model)
def search_model_versions(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Search versions: filter on name, version, run_id, source, stage, model_id, tags.; order_by; paging.
    Order as MLflow 3's server: ``order_by``, then name, then newest version first; with no ``order_by``,
    the most recently updated versions first."""
    clauses = parse_filter(optional_str(params, "filter"), VERSION_ATTRIBUTES)
    readable = readable_for(request, "registered_model")
    rows: list[Row] = [(m, v) for m in reg.list_models(registry_service(services).state())
                       if readable is None or readable.contains(m.name) for v in m.versions.values()]
    found = [r for r in rows if all(_holds(r, c) for c in clauses)]
    found.sort(key=lambda r: (r[0].name, -r[1].version))
    sort_rows(found, params.get("order_by") or ["last_updated_timestamp DESC"], VERSION_ATTRIBUTES, _field)
    return page(found, params, 10_000, lambda r: version_json(*r), "model_versions")


def _field(row: Row, field: str) -> Any:
    return row[0].name if field == "name" else getattr(row[1], field)


def _holds(row: Row, c: Clause) -> bool:
    if c.kind == "tag":
        return tag_holds(row[1].tags, c)
    if c.kind != "attribute":
        raise invalid(f"Invalid filter on {c.kind}.{c.key}: model versions filter on attributes and tags")
    return clause_holds(_field(row, VERSION_ATTRIBUTES[c.key]), c)


# ------------------------------------------------------------------- lineage


def logged_model_ref(source: str) -> str | None:
    """The logged-model id of a ``models:/<model id>`` source (one segment, no ``@``), else None."""
    if not source.startswith("models:/") or source.startswith("models://"):
        return None
    ref = source[len("models:/"):].rstrip("/")
    return ref if ref and "/" not in ref and "@" not in ref else None


def run_artifact_uri(services: Services, run_id: str) -> str | None:
    """A run's ``artifact_uri`` as the API shows it, None if there is no such run."""
    run = services.reads.run(run_id, counts=False)
    if run is None:
        return None
    return f"{experiment_location(services, run['experiment_id']).rstrip('/')}/{run_id}/artifacts"


def lineage(services: Services, service: RegistryService, source: str, run_id: str | None,
            model_id: str | None) -> tuple[str, str | None, str | None]:
    """``(source, run_id, model_id)`` to record, after MLflow 3's checks of a new version's source.

    ``models:/name/N|stage|@alias|latest`` becomes ``models:/name/N`` with that version's run and logged
    model (unless the caller gave them, which must then agree). Then the rules of
    :mod:`registry._sources`: with a ``model_id``, the source must fit that logged model, which must exist
    (RESOURCE_DOES_NOT_EXIST) and whose source run becomes the version's run when none is given; without
    one, the source must fit ``run_id`` (``runs:/<run_id>/…``, the run's ``mlflow-artifacts`` files, or
    another scheme such as ``s3://``, taken as given).
    """
    allowed = os.environ.get(reg.ALLOWED_SCHEMES_ENV, "")
    reg.check_source_host(source, frozenset(s.strip().lower() for s in allowed.split(",") if s.strip()))
    parsed = urlparse(source)
    if parsed.scheme == "models" and parsed.netloc:
        raise invalid(f"Invalid model version source: '{source}'. Registered model sources must use the active "
                      "model registry.")
    if parsed.scheme == "models" and logged_model_ref(source) is None:
        name = reg.parse_models_uri(source).name
        v = service.resolve(source)
        if (run_id and run_id != v.run_id) or (model_id and model_id != v.model_id):
            raise invalid(f"Invalid model version source: '{source}'. The run_id and model_id request parameters "
                          "must match the referenced model version.")
        source, run_id, model_id = f"models:/{name}/{v.version}", run_id or v.run_id, model_id or v.model_id
    if model_id:
        reg.check_model_source(source, model_id, lambda mid: _logged_model_uri(services, mid))
        logged = _logged_model(services, model_id)
        if logged is None:
            raise not_found(f"Logged model with ID '{model_id}' not found.")
        return source, run_id or logged["source_run_id"] or None, model_id
    reg.check_run_source(source, run_id, lambda rid: run_artifact_uri(services, rid))
    return source, run_id, model_id


def _logged_model(services: Services, model_id: str) -> dict[str, Any] | None:
    found = LogReads(services.store).logged_models([model_id]).get(model_id)
    return None if found is None or found["deleted"] else found


def _logged_model_uri(services: Services, model_id: str) -> str | None:
    """A logged model's artifact URI as the API shows it, None if there is no such model."""
    lm = _logged_model(services, model_id)
    return None if lm is None else proxied_location(lm["artifact_location"], services.settings.artifact_root)


def record_on_logged_model(services: Services, model_id: str, name: str, version: int, actor: str) -> None:
    """Add ``{"name", "version"}`` to the logged model's ``mlflow.modelVersions`` tag (an event)."""
    model = _logged_model(services, model_id)
    if model is None:
        return
    before = model["tags"].get(MODEL_VERSIONS_TAG, "")
    after = unique_model_versions(before, {"name": name, "version": version})
    if after != before:
        body = LoggedModelTagsSet(tags=((MODEL_VERSIONS_TAG, after),))
        append_or_raise(services, [services.event(model_id, body, actor=actor)])


def download_uri(services: Services, service: RegistryService, v: reg.VersionState, hops: int = 0) -> str:
    """The artifact URI of a version's files as mlflow server 3.17.2 answers it: for a ``models:/<model id>``
    source its logged model's artifact location, for a ``models:/name/N`` source the download URI of the
    version it names (followed up to :data:`MAX_SOURCE_HOPS`), else the source itself (``runs:/…`` too,
    which the client resolves through the tracking server)."""
    root = services.settings.artifact_root
    model_id = logged_model_ref(v.source)
    if model_id and (lm := _logged_model(services, model_id)) is not None:
        return proxied_location(lm["artifact_location"], root)
    if v.source.startswith("models:/") and hops < MAX_SOURCE_HOPS:
        try:
            return download_uri(services, service, service.resolve(v.source), hops + 1)
        except (NotFoundError, ValueError):
            pass  # the version it was copied from is gone: answer the source as recorded
    return proxied_location(v.source, root)
