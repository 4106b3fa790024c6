"""Input rules of registry commands, matching MLflow's model-registry validation.

Every failure is a :class:`ContractError` (a ``ValueError``: the HTTP layers
answer 400 / ``INVALID_PARAMETER_VALUE``) whose message names the field.
"""

from __future__ import annotations

import posixpath
import re

from producer.errors import ContractError
from producer.registry_events import MAX_ALIAS_LEN, MAX_NAME_LEN, MAX_TAG_VALUE_LEN, STAGES

__all__ = [
    "ACTIVE_STAGES",
    "canonical_stage",
    "check_model_name",
    "check_alias",
    "check_version",
    "check_tag",
    "check_text",
]

#: Stages that ``archive_existing_versions`` may target (MLflow's "active" stages).
ACTIVE_STAGES = ("Staging", "Production")
MAX_TAG_KEY_LEN = 250

_CANONICAL = {s.lower(): s for s in STAGES}
_ALIAS_RE = re.compile(r"[\w\-]+")
_VERSION_ALIAS_RE = re.compile(r"[vV]\d+")


def canonical_stage(stage: object) -> str:
    """``"production"`` -> ``"Production"``; any case is accepted, as in MLflow."""
    canon = _CANONICAL.get(stage.lower()) if isinstance(stage, str) else None
    if canon is None:
        raise ContractError(f"Invalid Model Version stage: {stage}. Value must be one of {', '.join(STAGES)}.")
    return canon


def check_model_name(name: object, field: str = "name") -> str:
    """Non-blank, at most 256 characters, no ``/`` or ``:``, and not a path that normalises elsewhere."""
    if not isinstance(name, str) or not name.strip():
        raise ContractError(f"{field} must be a non-blank string, got {name!r}")
    if len(name) > MAX_NAME_LEN:
        raise ContractError(f"{field} longer than {MAX_NAME_LEN} characters")
    if "/" in name or ":" in name:
        raise ContractError(f"invalid model {field} {name!r}: names cannot contain '/' or ':'")
    if posixpath.normpath(name) != name or name.startswith(".."):
        normalised = posixpath.normpath(name)
        raise ContractError(f"invalid model {field} {name!r}: it would resolve to {normalised!r} as a path")
    return name


def check_alias(alias: object) -> str:
    """Letters, digits, ``_`` and ``-`` only, at most 255; ``latest`` and ``v<digits>`` are reserved."""
    if not isinstance(alias, str) or not alias:
        raise ContractError(f"alias must be a non-empty string, got {alias!r}")
    if not _ALIAS_RE.fullmatch(alias):
        raise ContractError(f"invalid alias {alias!r}: only letters, digits, '_' and '-' are allowed")
    if len(alias) > MAX_ALIAS_LEN:
        raise ContractError(f"alias longer than {MAX_ALIAS_LEN} characters")
    if alias.lower() == "latest":
        raise ContractError("'latest' alias name (case insensitive) is reserved.")
    if _VERSION_ALIAS_RE.fullmatch(alias):
        raise ContractError(f"Version alias name '{alias}' is reserved.")
    return alias


def check_version(version: object) -> int:
    """A positive ``int`` (callers convert MLflow's string versions first)."""
    if type(version) is not int or version < 1:
        raise ContractError(f"version must be a positive integer, got {version!r}")
    return version


def check_tag(key: object, value: object) -> None:
    if not isinstance(key, str) or not key:
        raise ContractError(f"tag key must be a non-empty string, got {key!r}")
    if len(key) > MAX_TAG_KEY_LEN:
        raise ContractError(f"tag key {key[:40]!r}... longer than {MAX_TAG_KEY_LEN} characters")
    if not isinstance(value, str):
        raise ContractError(f"tag {key!r} value must be a string, got {type(value).__name__}")
    if len(value) > MAX_TAG_VALUE_LEN:
        raise ContractError(f"tag {key!r} value longer than {MAX_TAG_VALUE_LEN} characters")


def check_text(value: object, field: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        raise ContractError(f"{field} must be a string, got {type(value).__name__}")
    if not empty and not value:
        raise ContractError(f"{field} must not be empty")
    return value
