"""Reading MLflow requests: GETs carry query parameters, writes a JSON body; both become one dict.

Helpers here turn missing or ill-typed fields into ``INVALID_PARAMETER_VALUE``
with the field's name, the way MLflow's server validates its protobuf messages.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import orjson
from fastapi import Request

from .errors import invalid

__all__ = ["read_params", "body_params", "required_str", "optional_str",
           "optional_int", "str_list", "check_schema", "Field", "SEE_DOCS",
           "invalid_value", "missing_value"]

#: What MLflow's server appends to every request-validation message.
SEE_DOCS = " See the API docs for more information about request parameters."

Kind = Literal["string", "int", "float", "bool", "array", "object"]
#: One field of a request schema: its JSON kind and whether it is required.
Field = tuple[Kind, bool]


def missing_value(name: str) -> Exception:
    """MLflow's wording for an absent (or null, or empty) required field."""
    return invalid(f"Missing value for required parameter '{name}'.{SEE_DOCS}")


def invalid_value(name: str, value: Any) -> Exception:
    """MLflow's wording for a field of the wrong type: the value as JSON, and its Python type."""
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return invalid(f"Invalid value {shown} for parameter '{name}' supplied:  "  # sic: MLflow's two spaces
                   f"Hint: Value was of type '{type(value).__name__}'.{SEE_DOCS}")


def _number(value: Any, parse: type[int] | type[float]) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return parse is float or float(value).is_integer()
    if isinstance(value, str):
        try:
            parse(value)
        except ValueError:
            return False
        return True
    return False


_KIND_CHECKS: dict[Kind, Any] = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: _number(v, int),
    "float": lambda v: _number(v, float),
    "bool": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}


def check_schema(params: Mapping[str, Any], schema: Mapping[str, Field]) -> None:
    """Validate a request the way MLflow's server does before it looks at anything else: fields in
    ``schema``'s order; a required field that is absent, null or ``""`` is :func:`missing_value`, a present
    field of another kind is :func:`invalid_value` (``run_uuid`` stands in for a null ``run_id``)."""
    for name, (kind, required) in schema.items():
        value = params.get(name)
        if name == "run_id" and value is None:
            value = params.get("run_uuid")
        if value is None or (value == "" and kind == "string"):
            if required:
                raise missing_value(name)
            continue
        if not _KIND_CHECKS[kind](value):
            raise invalid_value(name, value)


async def read_params(request: Request) -> dict[str, Any]:
    """Query parameters (repeated keys become lists) overlaid with the JSON object body, if any."""
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values if len(values) > 1 or key.endswith("[]") else values[0]
    if request.method in ("POST", "PATCH", "PUT", "DELETE"):
        raw = await request.body()
        if raw.strip():
            out.update(body_params(raw))
    return out


def body_params(raw: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def required_str(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise missing_value(name)
    if not isinstance(value, str):
        raise invalid_value(name, value)
    return value


def optional_str(params: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise invalid_value(name, value)
    return value


def optional_int(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not _number(value, int):
        raise invalid_value(name, value)
    return int(value)


def str_list(params: dict[str, Any], name: str) -> list[str]:
    """A repeated field: a JSON list, repeated query keys, or one value."""
    value = params.get(name, params.get(name + "[]"))
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in items):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected strings")
    return items
