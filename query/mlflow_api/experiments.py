"""MLflow experiments: create, get, get-by-name, search, update, delete, restore, set/delete-experiment-tag,
search-datasets.

Writes are tracking commands (:mod:`tracking`) run by :func:`query.commands.execute`: MLflow's rules and
wording live in the domain, not here."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, Request

import registry as reg
from producer.errors import ContractError
from tracking import (
    CreateExperiment,
    DeleteExperiment,
    DeleteExperimentTag,
    RenameExperiment,
    RestoreExperiment,
    SetExperimentTag,
)

from ..auth.guard import grant_creator, readable_for
from ..commands import execute
from ..filters import EXPERIMENT_ATTRIBUTES, Clause, parse_filter, parse_order_by
from ..routes.registry import actor_of
from ..services import Services
from .common import clause_holds, experiment_or_404
from .convert import decode_token, encode_token, experiment_json, tags_of
from .errors import invalid, not_found
from .request import check_schema, optional_int, optional_str, required_str
from .routing import mlflow_route, with_model

router = APIRouter()

VIEW_TYPES = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",), "ALL": ("active", "deleted"),
              "1": ("active",), "2": ("deleted",), "3": ("active", "deleted")}


def _json(services: Services, e: dict[str, Any]) -> dict[str, Any]:
    return experiment_json(e, services.settings.artifact_root)


def artifact_location_of(location: str, allowed_schemes: str = "") -> str:
    """An ``artifact_location`` as mlflow server 3.17.2 stores it: refused with fragments or params, or with a
    scheme that names a host (unless ``allowed_schemes``, MLflow's comma-separated environment variable, lists
    it); a relative local path or ``file:`` URI made absolute against the server's working directory (MLflow's
    own ``resolve_uri_if_local``); anything else as given."""
    from mlflow.utils import uri

    resolve: Callable[[str], str] = uri.resolve_uri_if_local
    if not location:
        return ""
    parsed = urlparse(location)
    if parsed.fragment or parsed.params:
        raise invalid("'artifact_location' URL can't include fragments or params.")
    try:
        reg.check_source_host(location, frozenset(s.strip().lower() for s in allowed_schemes.split(",") if s.strip()),
                              field="artifact_location")
        local = reg.is_local(location)  # a file: URI of another host: refused (mlflow server answers 500)
    except ContractError as exc:
        raise invalid(str(exc)) from exc
    return resolve(location) if local else location


@mlflow_route(router, "/experiments/create", "POST")
def create_experiment(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Create an experiment (RESOURCE_ALREADY_EXISTS if the name is taken, deleted experiments included)."""
    check_schema(params, {"name": ("string", True), "artifact_location": ("string", False), "tags": ("array", False)})
    location = artifact_location_of(optional_str(params, "artifact_location") or "",
                                    os.environ.get(reg.ALLOWED_SCHEMES_ENV, ""))
    cmd = CreateExperiment(name=required_str(params, "name"), artifact_location=location,
                           tags=tuple(tags_of(params.get("tags"), "experiment tag").items()))
    events = execute(services, cmd, actor=actor_of(request))
    grant_creator(request, "experiment", events[0].entity)
    return {"experiment_id": events[0].entity}


@mlflow_route(router, "/experiments/get", "GET", in_memory=with_model)
def get_experiment(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Get an experiment by id."""
    return {"experiment": _json(services, experiment_or_404(services, required_str(params, "experiment_id")))}


@mlflow_route(router, "/experiments/get-by-name", "GET", in_memory=with_model)
def get_experiment_by_name(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Get an experiment by name."""
    name = required_str(params, "experiment_name")
    found = services.reads.experiment_by_name(name)
    if found is None:
        raise not_found(f"Could not find experiment with name '{name}'")
    return {"experiment": _json(services, found)}


def _matches(e: dict[str, Any], c: Clause) -> bool:
    value = e["tags"].get(c.key) if c.kind == "tag" else e.get(EXPERIMENT_ATTRIBUTES.get(c.key, c.key))
    return clause_holds(value, c)


@mlflow_route(router, "/experiments/search", "POST", "GET", in_memory=with_model)
def search_experiments(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Search experiments: filter on name / tags / times, order_by, paging, view_type."""
    view = str(params.get("view_type") or "ACTIVE_ONLY").upper()
    if view not in VIEW_TYPES:
        raise invalid(f"Invalid view_type {params.get('view_type')!r}")
    max_results = optional_int(params, "max_results", 1000)
    assert max_results is not None
    if not 1 <= max_results <= 50_000:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results' supplied: must be 1..50000")
    clauses = parse_filter(optional_str(params, "filter"), EXPERIMENT_ATTRIBUTES)
    raw_order = params.get("order_by") or []
    orders = parse_order_by(raw_order if isinstance(raw_order, list) else [raw_order], EXPERIMENT_ATTRIBUTES)
    stages = VIEW_TYPES[view]
    readable = readable_for(request, "experiment")
    found = [e for e in services.reads.experiments("ALL") if e["lifecycle_stage"] in stages
             and all(_matches(e, c) for c in clauses)
             and (readable is None or readable.contains(str(e["experiment_id"])))]
    found.sort(key=lambda e: int(e["experiment_id"]) if e["experiment_id"].isdigit() else 0)
    keys = list(orders) or []
    if not keys:
        found.sort(key=lambda e: e["creation_time"], reverse=True)
    for o in reversed(keys):
        field = EXPERIMENT_ATTRIBUTES.get(o.key, o.key) if o.kind == "attribute" else None
        if field is None:
            raise invalid(f"Invalid order_by entity {o.kind}.{o.key}: experiments order by attributes only")
        found.sort(key=lambda e, f=field: e[f], reverse=not o.ascending)  # type: ignore[misc]
    offset = decode_token(optional_str(params, "page_token"))
    page = found[offset:offset + max_results]
    out: dict[str, Any] = {"experiments": [_json(services, e) for e in page]}
    if offset + max_results < len(found):
        out["next_page_token"] = encode_token(offset + max_results)
    return out


@mlflow_route(router, "/experiments/update", "POST")
def update_experiment(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Rename an experiment."""
    execute(services, RenameExperiment(experiment_id=required_str(params, "experiment_id"),
                                       new_name=required_str(params, "new_name")), actor=actor_of(request))
    return {}


@mlflow_route(router, "/experiments/delete", "POST")
def delete_experiment(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete an experiment and its runs (restorable)."""
    execute(services, DeleteExperiment(experiment_id=required_str(params, "experiment_id")), actor=actor_of(request))
    return {}


@mlflow_route(router, "/experiments/restore", "POST")
def restore_experiment(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Restore a deleted experiment and the runs its deletion deleted."""
    execute(services, RestoreExperiment(experiment_id=required_str(params, "experiment_id")), actor=actor_of(request))
    return {}


@mlflow_route(router, "/experiments/set-experiment-tag", "POST")
def set_experiment_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Set a tag on an experiment."""
    execute(services, SetExperimentTag(experiment_id=required_str(params, "experiment_id"),
                                       key=required_str(params, "key"), value=params.get("value", "")),
            actor=actor_of(request))
    return {}


@mlflow_route(router, "/experiments/delete-experiment-tag", "POST")
def delete_experiment_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a tag of an experiment."""
    execute(services, DeleteExperimentTag(experiment_id=required_str(params, "experiment_id"),
                                          key=required_str(params, "key")), actor=actor_of(request))
    return {}


#: ``experiments/search-datasets``: at most this many experiments per request, and summaries per answer (MLflow's).
MAX_DATASET_EXPERIMENTS = 20
MAX_DATASET_SUMMARIES = 1000


@mlflow_route(router, "/experiments/search-datasets", "POST")
def search_datasets(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The datasets runs of these experiments logged as inputs: experiment, name, digest, context (the UI's
    dataset filter)."""
    check_schema(params, {"experiment_ids": ("array", False)})
    ids = params.get("experiment_ids") or []
    if not ids:
        raise invalid("SearchDatasets request must specify at least one experiment_id.")
    if len(ids) > MAX_DATASET_EXPERIMENTS:
        raise invalid(f"SearchDatasets request cannot specify more than {MAX_DATASET_EXPERIMENTS} experiment_ids. "
                      f"Received {len(ids)} experiment_ids.")
    summaries = services.reads.dataset_summaries([str(i) for i in ids], MAX_DATASET_SUMMARIES)
    return {"dataset_summaries": [{k: v for k, v in s.items() if v} for s in summaries]}
