"""MLflow experiments: create, get, get-by-name, search, update, delete, restore, set-experiment-tag."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from producer.events import (
    ExperimentCreated,
    ExperimentDeleted,
    ExperimentRenamed,
    ExperimentRestored,
    ExperimentTagSet,
)
from producer.ids import experiment_id_for

from ..filters import EXPERIMENT_ATTRIBUTES, Clause, parse_filter, parse_order_by
from ..services import Services
from . import ROUTERS
from .common import append_one, append_or_raise, clause_holds, experiment_or_404
from .convert import decode_token, encode_token, experiment_json, tags_of
from .errors import already_exists, invalid, not_found
from .request import optional_int, optional_str, required_str
from .routing import mlflow_route

router = APIRouter()
ROUTERS.append(router)

MAX_NAME_LENGTH = 500
MAX_TAG_KEY_LENGTH = 250
MAX_TAG_VALUE_LENGTH = 20_000
VIEW_TYPES = {"ACTIVE_ONLY": ("active",), "DELETED_ONLY": ("deleted",), "ALL": ("active", "deleted"),
              "1": ("active",), "2": ("deleted",), "3": ("active", "deleted")}


def _json(services: Services, e: dict[str, Any]) -> dict[str, Any]:
    return experiment_json(e, services.settings.artifact_root)


def _free_id(services: Services, name: str) -> str:
    """The name's derived id, or (when another experiment, since renamed, holds it) the next free variant."""
    eid, k = experiment_id_for(name), 0
    while (held := services.reads.experiment(eid)) is not None and held["name"] != name:
        k += 1
        eid = experiment_id_for(f"{name}#{k}")
    return eid


@mlflow_route(router, "/experiments/create", "POST")
def create_experiment(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Create an experiment (RESOURCE_ALREADY_EXISTS if the name is taken, deleted experiments included)."""
    name = required_str(params, "name").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise invalid(f"Invalid experiment name {name!r}: 1 to {MAX_NAME_LENGTH} characters")
    if services.reads.experiment_by_name(name) is not None:
        raise already_exists(f"Experiment(name={name}) already exists.")
    tags = tags_of(params.get("tags"), "experiment tag")
    eid = _free_id(services, name)
    location = optional_str(params, "artifact_location") or f"{services.settings.artifact_root}/{eid}"
    append_one(services, eid, ExperimentCreated(name=name, artifact_location=location, tags=tuple(tags.items())))
    return {"experiment_id": eid}


@mlflow_route(router, "/experiments/get", "GET")
def get_experiment(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Get an experiment by id."""
    return {"experiment": _json(services, experiment_or_404(services, required_str(params, "experiment_id")))}


@mlflow_route(router, "/experiments/get-by-name", "GET")
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


@mlflow_route(router, "/experiments/search", "POST", "GET")
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
    found = [e for e in services.reads.experiments("ALL") if e["lifecycle_stage"] in stages
             and all(_matches(e, c) for c in clauses)]
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
    exp = experiment_or_404(services, required_str(params, "experiment_id"))
    new_name = required_str(params, "new_name").strip()
    if not new_name or len(new_name) > MAX_NAME_LENGTH:
        raise invalid(f"Invalid experiment name {new_name!r}")
    if exp["lifecycle_stage"] != "active":
        raise invalid("Cannot rename a non-active experiment.")
    if new_name != exp["name"]:
        if services.reads.experiment_by_name(new_name) is not None:
            raise already_exists(f"Experiment(name={new_name}) already exists.")
        append_one(services, exp["experiment_id"], ExperimentRenamed(name=new_name))
    return {}


@mlflow_route(router, "/experiments/delete", "POST")
def delete_experiment(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete an experiment (restorable)."""
    exp = experiment_or_404(services, required_str(params, "experiment_id"))
    if exp["experiment_id"] == "0":
        raise invalid("Cannot delete the default experiment '0'. This is an internally reserved experiment.")
    append_one(services, exp["experiment_id"], ExperimentDeleted())
    return {}


@mlflow_route(router, "/experiments/restore", "POST")
def restore_experiment(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Restore a deleted experiment."""
    exp = experiment_or_404(services, required_str(params, "experiment_id"))
    append_one(services, exp["experiment_id"], ExperimentRestored())
    return {}


@mlflow_route(router, "/experiments/set-experiment-tag", "POST")
def set_experiment_tag(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Set a tag on an experiment."""
    exp = experiment_or_404(services, required_str(params, "experiment_id"))
    key = required_str(params, "key")
    value = params.get("value", "")
    if not isinstance(value, str):
        raise invalid(f"Invalid value {value!r} for parameter 'value': expected a string")
    if len(key) > MAX_TAG_KEY_LENGTH or len(value) > MAX_TAG_VALUE_LENGTH:
        raise invalid(f"Experiment tag key must be <= {MAX_TAG_KEY_LENGTH} and value <= {MAX_TAG_VALUE_LENGTH} "
                      "characters")
    if exp["lifecycle_stage"] != "active":
        raise invalid(f"The experiment {exp['experiment_id']} must be in the 'active' state.")
    append_or_raise(services, [services.event(exp["experiment_id"], ExperimentTagSet(key=key, value=value))])
    return {}
