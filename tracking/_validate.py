"""Validation of tracking commands: MLflow's rules and wording, runledger's limits.

Pure functions raising :class:`producer.errors.ContractError` (a
``ValueError``; MLflow's ``INVALID_PARAMETER_VALUE``). The messages follow
``mlflow/utils/validation.py`` so a user sees the same text from runledger as
from a stock server. Lengths come from :mod:`producer.limits` (``api``).
"""

from __future__ import annotations

import json
import math
import posixpath
import re
from collections.abc import Iterable, Mapping
from typing import Any

from producer import limits
from producer.errors import ContractError
from producer.events import RUN_STATUSES

__all__ = [
    "invalid_value",
    "check_key",
    "check_metric_key",
    "check_param",
    "check_run_tag",
    "check_experiment_name",
    "check_experiment_tag",
    "check_run_name",
    "check_status",
    "check_batch_counts",
    "check_int64",
    "check_metric_value",
    "check_distinct_params",
]

_NAME_CHARS = re.compile(r"^[/\w.\- :]*$")
_INT64 = (-(2**63), 2**63 - 1)


def invalid_value(path: str, value: Any, message: str | None = None) -> str:
    """MLflow's ``invalid_value`` message."""
    shown = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    if message:
        return f"Invalid value {shown} for parameter '{path}' supplied: {message}"
    return f"Invalid value {shown} for parameter '{path}' supplied."


def _exceeds(what: str, limit: int) -> str:
    return f"'{what}' exceeds the maximum length of {limit} characters"


def _path_not_unique(name: str) -> bool:
    norm = posixpath.normpath(name)
    return norm != name or norm == "." or norm.startswith("..") or norm.startswith("/")


def check_key(name: Any, path: str = "key") -> str:
    """A metric, param or tag name: MLflow's characters, no path tricks, at most ``limits.KEY.api``."""
    if name is None or name == "":
        raise ContractError(f"Missing value for required parameter '{path}'.")
    if not isinstance(name, str):
        raise ContractError(invalid_value(path, name, "Names must be strings."))
    if not _NAME_CHARS.match(name):
        raise ContractError(invalid_value(path, name, "Names may only contain alphanumerics, underscores (_), "
                                                      "dashes (-), periods (.), spaces ( ), colon(:) and slashes (/)."))
    if _path_not_unique(name):
        raise ContractError(invalid_value(path, name, (
            "Names may be treated as files in certain cases, and must not resolve to other names when treated as "
            f"such. This name would resolve to {posixpath.normpath(name)!r}")))
    if len(name) > limits.KEY.api:
        raise ContractError(_exceeds(path, limits.KEY.api))
    return name


def check_metric_key(name: Any, path: str = "name") -> str:
    return check_key(name, path)


def _check_len(value: str, limit: int, what: str) -> str:
    if len(value) > limit:
        raise ContractError(_exceeds(what, limit))
    return value


def _as_str(value: Any, path: str) -> str:
    if value is None:
        raise ContractError(f"Missing value for required parameter '{path}'.")
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return str(value)
    if not isinstance(value, str):
        raise ContractError(invalid_value(path, value, "expected a string"))
    return value


def check_param(key: Any, value: Any, path: str = "") -> tuple[str, str]:
    k = check_key(key, f"{path}.key" if path else "key")
    v = _as_str(value, f"{path}.value" if path else "value")
    return k, _check_len(v, limits.PARAM_VALUE.api, "Param value")


def check_run_tag(key: Any, value: Any, path: str = "") -> tuple[str, str]:
    k = check_key(key, f"{path}.key" if path else "key")
    v = _as_str("" if value is None else value, f"{path}.value" if path else "value")
    return k, _check_len(v, limits.RUN_TAG_VALUE.api, f"{path}.value" if path else "value")


def check_experiment_tag(key: Any, value: Any) -> tuple[str, str]:
    k = check_key(key, "key")
    _check_len(k, limits.EXPERIMENT_TAG_KEY.api, "key")
    v = _as_str("" if value is None else value, "value")
    return k, _check_len(v, limits.EXPERIMENT_TAG_VALUE.api, "value")


def check_experiment_name(name: Any) -> str:
    if name is None or name == "":
        raise ContractError(f"Invalid experiment name: '{'' if name is None else name}'")
    if not isinstance(name, str):
        raise ContractError(f"Invalid experiment name: {name}. Expects a string.")
    if not name.strip():
        raise ContractError(f"Invalid experiment name: '{name}'")
    return _check_len(name, limits.EXPERIMENT_NAME.api, "name")


def check_run_name(name: Any) -> str:
    if not isinstance(name, str):
        raise ContractError(invalid_value("run_name", name, "expected a string"))
    return _check_len(name, limits.RUN_NAME.api, "run_name")


def check_status(status: Any) -> str:
    if status not in RUN_STATUSES:
        raise ContractError(invalid_value("status", status, f"must be one of {', '.join(RUN_STATUSES)}"))
    return str(status)


def check_int64(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ContractError(invalid_value(path, value, "expected a 64-bit integer"))
    if not _INT64[0] <= value <= _INT64[1]:
        raise ContractError(invalid_value(path, value, "out of the signed 64-bit range"))
    return int(value)


def check_metric_value(value: Any, key: str, path: str = "value") -> float:
    """A double; protobuf's JSON strings for non-finite values are accepted."""
    if isinstance(value, bool) or value is None:
        raise ContractError(invalid_value(path, value, f"metric '{key}': Please specify value as a valid double "
                                                       "(64-bit floating point)"))
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            pass
        else:
            if math.isfinite(out) or value in ("NaN", "Infinity", "-Infinity", "nan", "inf", "-inf"):
                return out
    raise ContractError(invalid_value(path, value, f"metric '{key}': Please specify value as a valid double "
                                                   "(64-bit floating point)"))


def check_batch_counts(n_metrics: int, n_params: int, n_tags: int) -> None:
    for what, n, limit in (("metrics", n_metrics, limits.MAX_METRICS_PER_BATCH),
                           ("params", n_params, limits.MAX_PARAMS_TAGS_PER_BATCH),
                           ("tags", n_tags, limits.MAX_PARAMS_TAGS_PER_BATCH),
                           ("metrics, params, and tags", n_metrics + n_params + n_tags,
                            limits.MAX_ENTITIES_PER_BATCH)):
        if n > limit:
            raise ContractError(f"A batch logging request can contain at most {limit} {what}. Got {n} {what}. "
                                f"Please split up {what} across multiple requests and try again.")


def check_distinct_params(params: Iterable[tuple[str, str]]) -> dict[str, str]:
    """One value per key within one request (MLflow refuses ``[a=1, a=2]`` but accepts ``[a=1, a=1]``)."""
    out: dict[str, str] = {}
    dupes: list[str] = []
    for k, v in params:
        if k in out and out[k] != v and k not in dupes:
            dupes.append(k)
        out.setdefault(k, v)
    if dupes:
        raise ContractError(f"Duplicate parameter keys have been submitted: {dupes}. Please ensure the request "
                            "contains only one param value per param key.")
    return out


def tags_dict(tags: Mapping[str, Any] | Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Validated run tags as a dict (later keys win, as MLflow's store does)."""
    items = tags.items() if isinstance(tags, Mapping) else tags
    return dict(check_run_tag(k, v) for k, v in items)
