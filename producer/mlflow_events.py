"""Body types for what only MLflow's API records: run inputs (datasets), run outputs, logged models.

``MLFLOW_BODIES`` lists them (:mod:`producer.contract` puts them in
``EVENT_TYPES``). Logged models have no ClickHouse projection: the MLflow
API folds them from the log on read (``query/mlflow_api/log_reads.py``),
since they are few and read rarely. Run inputs are also projected into
``run_inputs`` (the ``datasets.*`` filters of run search).

Entities: ``run_inputs_logged`` / ``run_outputs_logged`` → the run id;
``logged_model_*`` → the logged model id (``m-<32 hex>``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import orjson

from . import limits
from .errors import ContractError
from .events import Body, _opt_str, _str, _str_map

__all__ = ["RunInputsLogged", "RunOutputsLogged", "LoggedModelCreated", "LoggedModelFinalized",
           "LoggedModelTagsSet", "LoggedModelTagDeleted", "LoggedModelParamsLogged", "LoggedModelDeleted",
           "MLFLOW_EVENT_TYPES", "MLFLOW_BODIES"]

MAX_JSON_LEN = limits.MLFLOW_JSON.stored


def _json_list(d: Mapping[str, Any], name: str) -> tuple[str, ...]:
    """A list of JSON objects kept as canonical JSON strings (hashable, immutable)."""
    v = d.get(name, [])
    if not isinstance(v, list) or not all(isinstance(x, dict) for x in v):
        raise ContractError(f"field {name!r} must be a list of objects")
    out = tuple(orjson.dumps(x, option=orjson.OPT_SORT_KEYS).decode() for x in v)
    if sum(map(len, out)) > MAX_JSON_LEN:
        raise ContractError(f"field {name!r} is larger than {MAX_JSON_LEN} bytes")
    return out


def _objects(items: tuple[str, ...]) -> list[Any]:
    return [orjson.loads(x) for x in items]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInputsLogged(Body):
    """MLflow ``log-inputs``: dataset inputs ``{"tags": [...], "dataset": {...}}`` and model inputs."""

    TYPE: ClassVar[str] = "run_inputs_logged"
    datasets: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RunInputsLogged:
        return cls(datasets=_json_list(d, "datasets"), models=_json_list(d, "models"))

    def to_wire(self) -> dict[str, Any]:
        return {"datasets": _objects(self.datasets), "models": _objects(self.models)}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutputsLogged(Body):
    """MLflow ``log-outputs``: models ``{"model_id": ..., "step": ...}`` a run produced."""

    TYPE: ClassVar[str] = "run_outputs_logged"
    models: tuple[str, ...] = ()

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RunOutputsLogged:
        return cls(models=_json_list(d, "models"))

    def to_wire(self) -> dict[str, Any]:
        return {"models": _objects(self.models)}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelCreated(Body):
    """An MLflow-3 logged model (status PENDING until finalized). Entity: its id ``m-...``."""

    TYPE: ClassVar[str] = "logged_model_created"
    experiment_id: str
    name: str
    artifact_location: str
    source_run_id: str = ""
    model_type: str = ""
    params: tuple[tuple[str, str], ...] = ()
    tags: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> LoggedModelCreated:
        return cls(experiment_id=_str(d, "experiment_id", max_len=limits.EXPERIMENT_ID.stored, empty=False),
                   name=_str(d, "name", empty=False), artifact_location=_str(d, "artifact_location", empty=False),
                   source_run_id=_opt_str(d, "source_run_id") or "", model_type=_opt_str(d, "model_type") or "",
                   params=_str_map(d, "params", max_value_len=limits.PARAM_VALUE.stored),
                   tags=_str_map(d, "tags", max_value_len=limits.RUN_TAG_VALUE.stored))

    def to_wire(self) -> dict[str, Any]:
        return {"experiment_id": self.experiment_id, "name": self.name, "artifact_location": self.artifact_location,
                "source_run_id": self.source_run_id, "model_type": self.model_type, "params": dict(self.params),
                "tags": dict(self.tags)}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelFinalized(Body):
    TYPE: ClassVar[str] = "logged_model_finalized"
    status: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> LoggedModelFinalized:
        status = _str(d, "status", empty=False)
        if status not in ("LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED", "LOGGED_MODEL_PENDING"):
            raise ContractError(f"invalid logged model status {status!r}")
        return cls(status=status)

    def to_wire(self) -> dict[str, Any]:
        return {"status": self.status}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelTagsSet(Body):
    TYPE: ClassVar[str] = "logged_model_tags_set"
    tags: tuple[tuple[str, str], ...]

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> LoggedModelTagsSet:
        return cls(tags=_str_map(d, "tags", max_value_len=limits.RUN_TAG_VALUE.stored))

    def to_wire(self) -> dict[str, Any]:
        return {"tags": dict(self.tags)}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelTagDeleted(Body):
    TYPE: ClassVar[str] = "logged_model_tag_deleted"
    key: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> LoggedModelTagDeleted:
        return cls(key=_str(d, "key", empty=False))

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelParamsLogged(Body):
    TYPE: ClassVar[str] = "logged_model_params_logged"
    params: tuple[tuple[str, str], ...]

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> LoggedModelParamsLogged:
        return cls(params=_str_map(d, "params", max_value_len=limits.PARAM_VALUE.stored))

    def to_wire(self) -> dict[str, Any]:
        return {"params": dict(self.params)}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedModelDeleted(Body):
    TYPE: ClassVar[str] = "logged_model_deleted"

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> LoggedModelDeleted:
        return cls()

    def to_wire(self) -> dict[str, Any]:
        return {}


MLFLOW_BODIES: tuple[type[Body], ...] = (
    RunInputsLogged, RunOutputsLogged, LoggedModelCreated, LoggedModelFinalized, LoggedModelTagsSet,
    LoggedModelTagDeleted, LoggedModelParamsLogged, LoggedModelDeleted,
)
MLFLOW_EVENT_TYPES = tuple(c.TYPE for c in MLFLOW_BODIES)
