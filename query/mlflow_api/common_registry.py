"""What the registry's MLflow endpoints share: the service and actor of a request, MLflow's JSON shapes
of registered models and versions, argument checks, Python-side search (filter, order, page).

The JSON shapes, :func:`version_number`, :func:`flag`, :func:`tag_holds`,
:func:`sort_rows` and :func:`page` are pure (unit-tested without a server);
the rest reaches the server's :class:`~registry.service.RegistryService`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from fastapi import Request

import registry as reg
from producer.events import Event

from ..filters import Clause, parse_order_by
from ..registry_startup import registry_service
from ..routes.registry import actor_of
from ..services import Services
from .common import clause_holds
from .convert import decode_token, encode_token, kv
from .errors import invalid
from .request import invalid_value, optional_int, optional_str

__all__ = ["MODEL_ATTRIBUTES", "VERSION_ATTRIBUTES", "execute", "model_named", "version_number", "flag",
           "version_json", "model_json", "tag_holds", "sort_rows", "page"]

T = TypeVar("T")

#: Filter / order_by attribute -> ``ModelState`` field.
MODEL_ATTRIBUTES = {"name": "name", "creation_timestamp": "created_ms", "last_updated_timestamp": "updated_ms",
                    "timestamp": "updated_ms"}  # MLflow's order_by alias
#: Filter / order_by attribute -> ``VersionState`` field (``name`` is the model's).
VERSION_ATTRIBUTES = {"name": "name", "version": "version", "version_number": "version", "run_id": "run_id",
                      "source": "source", "source_path": "source", "current_stage": "stage", "model_id": "model_id",
                      "creation_timestamp": "created_ms", "last_updated_timestamp": "updated_ms"}
#: The most results one search page may ask for (MLflow's thresholds): model versions, registered models.
MAX_RESULTS_LIMIT = 200_000
MAX_MODELS_RESULTS_LIMIT = 1000

_NEGATIONS = ("!=", "NOT LIKE", "NOT ILIKE", "NOT IN", "IS NULL")


def execute(services: Services, request: Request, command: reg.Command) -> list[Event]:
    """Run ``command`` through the registry as the request's actor; the events it recorded."""
    return registry_service(services).execute(command, actor_of(request))


def model_named(services: Services, name: str) -> reg.ModelState:
    """The live registered model called ``name`` (``NotFoundError`` -> RESOURCE_DOES_NOT_EXIST)."""
    return registry_service(services).model(name)


def version_number(params: Mapping[str, Any]) -> int:
    """The ``version`` parameter (MLflow sends it as a string) as a number >= 1."""
    raw = params.get("version")
    if isinstance(raw, bool):
        raise invalid(f"Parameter 'version' must be an integer, got '{raw}'.")
    try:
        number = int(str(raw))
    except (TypeError, ValueError):
        raise invalid(f"Parameter 'version' must be an integer, got '{raw}'.") from None
    if number < 1:
        raise invalid(f"Invalid value {raw!r} for parameter 'version': versions start at 1")
    return number


def flag(params: Mapping[str, Any], name: str) -> bool:
    """A boolean parameter: JSON true/false, or "true"/"false" in a query string; absent is False."""
    raw = params.get(name, False)
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, str) and raw.lower() in ("true", "false"):
        return raw.lower() == "true"
    raise invalid(f"Invalid value {raw!r} for parameter '{name}': expected true or false")


def version_json(model: reg.ModelState, v: reg.VersionState) -> dict[str, Any]:
    """MLflow's ``ModelVersion`` message. Versions are registered synchronously, so ``status`` is always
    READY (the client polls up to 300 s on anything else)."""
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
    """MLflow's ``RegisteredModel`` message: ``latest_versions`` is the highest version per stage."""
    return {
        "name": model.name, "creation_timestamp": model.created_ms, "last_updated_timestamp": model.updated_ms,
        "user_id": model.created_by, "description": model.description, "tags": kv(model.tags),
        "latest_versions": [version_json(model, v) for v in reg.latest_versions(model).values()],
        "aliases": [{"alias": a, "version": str(n)} for a, n in sorted(model.aliases.items())],
    }


def tag_holds(tags: Mapping[str, str], c: Clause) -> bool:
    """A tag clause; a model or version without the tag satisfies the negations, as in MLflow (its client
    hides prompts with ``tags.`mlflow.prompt.is_prompt` != 'true'`` on every search)."""
    value = tags.get(c.key)
    return c.op in _NEGATIONS if value is None else clause_holds(value, c)


def sort_rows(items: list[T], raw_order_by: Any, attributes: Mapping[str, str],
              value: Callable[[T, str], Any]) -> None:
    """Sort ``items`` in place by MLflow ``order_by`` strings (``"name DESC"``); attributes only.
    ``value(item, field)`` reads a field named in ``attributes``' values; None sorts first."""
    if raw_order_by in (None, "", []):
        return
    order_by = raw_order_by if isinstance(raw_order_by, list) else [raw_order_by]
    if not all(isinstance(o, str) for o in order_by):
        raise invalid(f"Invalid value {raw_order_by!r} for parameter 'order_by': expected strings")
    for o in reversed(parse_order_by(order_by, dict(attributes))):
        if o.kind != "attribute":
            raise invalid(f"Invalid order_by {o.kind}.{o.key}: order by {', '.join(sorted(attributes))}")
        field = attributes[o.key]

        def key(x: T, f: str = field) -> tuple[bool, Any]:
            return _nones_first(value(x, f))

        items.sort(key=key, reverse=not o.ascending)


def _nones_first(v: Any) -> tuple[bool, Any]:
    return (False, 0) if v is None else (True, v)


def page(items: Sequence[T], params: Mapping[str, Any], default_max_results: int,
         render: Callable[[T], Any], key: str, limit: int = MAX_RESULTS_LIMIT) -> dict[str, Any]:
    """One page of ``items`` under ``key``, and ``next_page_token`` (an offset) when more remain."""
    max_results = optional_int(dict(params), "max_results", default_max_results)
    assert max_results is not None
    if max_results > limit:
        raise invalid_value("max_results", params.get("max_results"))
    if max_results < 1:
        raise invalid(f"Invalid value for max_results. It must be a positive integer, but got {max_results}")
    offset = decode_token(optional_str(dict(params), "page_token"))
    out: dict[str, Any] = {key: [render(x) for x in items[offset:offset + max_results]]}
    if offset + max_results < len(items):
        out["next_page_token"] = encode_token(offset + max_results)
    return out
