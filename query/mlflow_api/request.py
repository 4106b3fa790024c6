"""Reading MLflow requests: GETs carry query parameters, writes a JSON body; both become one dict.

Helpers here turn missing or ill-typed fields into ``INVALID_PARAMETER_VALUE``
with the field's name, the way MLflow's server validates its protobuf messages.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from .errors import invalid

__all__ = ["read_params", "required_str", "optional_str", "optional_int", "str_list"]


async def read_params(request: Request) -> dict[str, Any]:
    """Query parameters (repeated keys become lists) overlaid with the JSON object body, if any."""
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values if len(values) > 1 or key.endswith("[]") else values[0]
    if request.method in ("POST", "PATCH", "PUT", "DELETE"):
        raw = await request.body()
        if raw.strip():
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                raise invalid(f"request body is not valid JSON: {exc}") from None
            if not isinstance(body, dict):
                raise invalid(f"request body must be a JSON object, got {type(body).__name__}")
            out.update(body)
    return out


def required_str(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None or value == "":
        raise invalid(f"Missing value for required parameter '{name}'.")
    if not isinstance(value, str):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected a string")
    return value


def optional_str(params: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = params.get(name)
    if value is None:
        return default
    if not isinstance(value, str):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected a string")
    return value


def optional_int(params: dict[str, Any], name: str, default: int | None = None) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected an integer")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected an integer") from None


def str_list(params: dict[str, Any], name: str) -> list[str]:
    """A repeated field: a JSON list, repeated query keys, or one value."""
    value = params.get(name, params.get(name + "[]"))
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) for v in items):
        raise invalid(f"Invalid value {value!r} for parameter '{name}': expected strings")
    return items
