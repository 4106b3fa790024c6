"""MLflow's registered-models API over the event-sourced registry (versions: ``model_versions.py``).

Every write runs a :mod:`registry` command through the server's
:class:`~registry.service.RegistryService` as the request's actor (HTTP Basic
user — what ``MLFLOW_TRACKING_USERNAME`` sends — else the ``X-Runledger-Actor``
header, else ``anonymous``), so it is recorded as registry events and shows up
in ``GET /api/v1/registry/models/{name}/history``. Reads come from the
service's folded state, so a write is readable as soon as it answered.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

import registry as reg

from ..auth.guard import grant_creator, move_model_grants, readable_for
from ..filters import Clause, parse_filter
from ..registry_startup import registry_service
from ..services import Services
from .common import clause_holds
from .common_registry import (
    MAX_MODELS_RESULTS_LIMIT,
    MODEL_ATTRIBUTES,
    execute,
    model_json,
    model_named,
    page,
    sort_rows,
    tag_holds,
    version_json,
    version_number,
)
from .convert import tags_of
from .errors import invalid
from .request import optional_str, required_str, str_list
from .routing import mlflow_route, with_model

router = APIRouter()


@mlflow_route(router, "/registered-models/create", "POST")
def create_registered_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Create a registered model."""
    name = required_str(params, "name")
    tags = tags_of(params.get("tags"), "registered model tag")
    execute(services, request, reg.CreateModel(name=name, description=optional_str(params, "description") or "",
                                            tags=tuple(tags.items())))
    grant_creator(request, "registered_model", name)
    return {"registered_model": model_json(model_named(services, name))}


@mlflow_route(router, "/registered-models/get", "GET", in_memory=with_model)
def get_registered_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Get a registered model with its latest versions per stage and its aliases."""
    return {"registered_model": model_json(model_named(services, required_str(params, "name")))}


@mlflow_route(router, "/registered-models/rename", "POST")
def rename_registered_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Rename a registered model (its versions and audit trail follow)."""
    new_name, old_name = required_str(params, "new_name"), required_str(params, "name")
    execute(services, request, reg.RenameModel(name=old_name, new_name=new_name))
    move_model_grants(request, old_name, new_name)
    return {"registered_model": model_json(model_named(services, new_name))}


@mlflow_route(router, "/registered-models/update", "PATCH", "POST")
def update_registered_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Update a registered model's description."""
    name = required_str(params, "name")
    execute(services, request, reg.UpdateModelDescription(name=name, description=optional_str(params, "description")
                                                       or ""))
    return {"registered_model": model_json(model_named(services, name))}


@mlflow_route(router, "/registered-models/delete", "DELETE", "POST")
def delete_registered_model(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a registered model (its name becomes free)."""
    execute(services, request, reg.DeleteModel(name=required_str(params, "name")))
    return {}


@mlflow_route(router, "/registered-models/set-tag", "POST")
def set_registered_model_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Set a tag of a registered model."""
    execute(services, request, reg.SetModelTag(name=required_str(params, "name"), key=required_str(params, "key"),
                                               value=optional_str(params, "value") or ""))
    return {}


@mlflow_route(router, "/registered-models/delete-tag", "DELETE", "POST")
def delete_registered_model_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a tag of a registered model."""
    execute(services, request, reg.DeleteModelTag(name=required_str(params, "name"), key=required_str(params, "key")))
    return {}


@mlflow_route(router, "/registered-models/alias", "POST")
def set_alias(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Point an alias at a version (moving it if set)."""
    execute(services, request, reg.SetAlias(name=required_str(params, "name"), alias=required_str(params, "alias"),
                                         version=version_number(params)))
    return {}


@mlflow_route(router, "/registered-models/alias", "DELETE")
def delete_alias(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete an alias."""
    execute(services, request, reg.DeleteAlias(name=required_str(params, "name"), alias=required_str(params, "alias")))
    return {}


@mlflow_route(router, "/registered-models/alias", "GET", in_memory=with_model)
def get_version_by_alias(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The version an alias points at."""
    name, alias = required_str(params, "name"), required_str(params, "alias")
    model = model_named(services, name)
    number = model.aliases.get(alias)
    if number is None:
        raise invalid(f"Registered model alias {alias} not found.")  # MLflow: INVALID_PARAMETER_VALUE
    return {"model_version": version_json(model, model.versions[number])}


@mlflow_route(router, "/registered-models/get-latest-versions", "POST", "GET", in_memory=with_model)
def get_latest_versions(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The highest version in each of the given stages (all stages by default)."""
    model = model_named(services, required_str(params, "name"))
    try:
        latest = reg.latest_versions(model, str_list(params, "stages"))
    except ValueError as exc:
        raise invalid(str(exc)) from None
    return {"model_versions": [version_json(model, v) for v in latest.values()]}


@mlflow_route(router, "/registered-models/search", "GET", "POST", in_memory=with_model)
def search_registered_models(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Search registered models: filter on name (= != LIKE ILIKE) and tags., order_by, paging."""
    clauses = parse_filter(optional_str(params, "filter"), MODEL_ATTRIBUTES)

    def holds(m: reg.ModelState, c: Clause) -> bool:
        if c.kind == "tag":
            return tag_holds(m.tags, c)
        if c.kind != "attribute":
            raise invalid(f"Invalid filter on {c.kind}.{c.key}: registered models filter on name and tags")
        return clause_holds(getattr(m, MODEL_ATTRIBUTES[c.key]), c)

    readable = readable_for(request, "registered_model")
    models = [m for m in reg.list_models(registry_service(services).state()) if all(holds(m, c) for c in clauses)
              and (readable is None or readable.contains(m.name))]
    sort_rows(models, params.get("order_by"), MODEL_ATTRIBUTES, getattr)
    return page(models, params, 100, model_json, "registered_models", MAX_MODELS_RESULTS_LIMIT)
