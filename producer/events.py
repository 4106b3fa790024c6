"""The event contract: the envelope and every body type, as frozen value objects.

Every change in runledger is one of these events. They are never updated or
deleted; state is a fold over them. The wire form (see :mod:`producer.codec`)
is a JSON object::

    {"v": 1, "id": "<uuidv7>", "type": "metrics_logged", "entity": "<run id>",
     "src": {"host": "gpu-07", "pid": 4121, "rank": 3}, "seq": 17,
     "ts": 1763850000123, "body": {...}}

* ``v`` — schema version of the envelope and body (see ``SCHEMA_VERSION``).
* ``id`` — globally unique, time-ordered (UUIDv7, 32 hex chars).
* ``entity`` — the aggregate the event belongs to: a run id, an experiment id,
  or a registered model name. Kafka partitions by it, so one entity's events
  keep their order.
* ``src`` / ``seq`` — the producing process and its per-source sequence number.
* ``ts`` — client wall-clock time, milliseconds since the Unix epoch.

Bodies validate themselves in ``from_wire`` and raise :class:`ContractError`
naming the offending field; lengths are the ``stored`` limits of
:mod:`producer.limits`. This module holds the tracking bodies
(``TRACKING_BODIES``); registry and MLflow-only bodies live in
:mod:`producer.registry_events` and :mod:`producer.mlflow_events`, and
:mod:`producer.contract` lists all of them in ``EVENT_TYPES``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from . import limits
from .errors import ContractError

__all__ = [
    "SCHEMA_VERSION",
    "SUPPORTED_VERSIONS",
    "TRACKING_BODIES",
    "Source",
    "Event",
    "Body",
    "ExperimentCreated",
    "ExperimentRenamed",
    "ExperimentDeleted",
    "ExperimentRestored",
    "ExperimentTagSet",
    "ExperimentTagDeleted",
    "RunCreated",
    "RunStatusChanged",
    "RunEnded",
    "RunRenamed",
    "RunDeleted",
    "RunRestored",
    "ParamsLogged",
    "TagsSet",
    "TagsDeleted",
    "MetricsLogged",
    "RUN_STATUSES",
    "TERMINAL_STATUSES",
]

SCHEMA_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
RUN_STATUSES = ("RUNNING", "SCHEDULED", "FINISHED", "FAILED", "KILLED")
TERMINAL_STATUSES = ("FINISHED", "FAILED", "KILLED")


# ----------------------------------------------------------------- validators


def _str(d: Mapping[str, Any], name: str, *, max_len: int = limits.TEXT.stored, empty: bool = True) -> str:
    v = d.get(name)
    if not isinstance(v, str):
        raise ContractError(f"field {name!r} must be a string, got {type(v).__name__}")
    if not empty and not v:
        raise ContractError(f"field {name!r} must not be empty")
    if len(v) > max_len:
        raise ContractError(f"field {name!r} longer than {max_len} characters")
    return v


def _opt_str(d: Mapping[str, Any], name: str, *, max_len: int = limits.TEXT.stored) -> str | None:
    v = d.get(name)
    if v is None:
        return None
    return _str(d, name, max_len=max_len)


def _int(d: Mapping[str, Any], name: str, *, optional: bool = False) -> int | None:
    v = d.get(name)
    if v is None and optional:
        return None
    if type(v) is not int:
        raise ContractError(f"field {name!r} must be an integer, got {type(v).__name__}")
    return v


def _key(k: object, what: str) -> str:
    if not isinstance(k, str) or not k:
        raise ContractError(f"{what} key must be a non-empty string, got {k!r}")
    if len(k) > limits.KEY.stored:
        raise ContractError(f"{what} key {k[:40]!r}... longer than {limits.KEY.stored} characters")
    return k


def _str_map(d: Mapping[str, Any], name: str, *, max_value_len: int) -> tuple[tuple[str, str], ...]:
    v = d.get(name, {})
    if not isinstance(v, dict):
        raise ContractError(f"field {name!r} must be an object of string values")
    out = []
    for k, val in v.items():
        _key(k, name)
        if not isinstance(val, str):
            raise ContractError(f"{name}[{k!r}] must be a string, got {type(val).__name__}")
        if len(val) > max_value_len:
            raise ContractError(f"{name}[{k!r}] longer than {max_value_len} characters")
        out.append((k, val))
    return tuple(out)


def _status(d: Mapping[str, Any], name: str = "status") -> str:
    s = _str(d, name)
    if s not in RUN_STATUSES:
        raise ContractError(f"field {name!r} must be one of {', '.join(RUN_STATUSES)}, got {s!r}")
    return s


# --------------------------------------------------------------------- bodies


class Body:
    """Base of every event body. ``TYPE`` is its wire name."""

    __slots__ = ()
    TYPE: ClassVar[str]

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> Body:  # pragma: no cover - abstract
        raise NotImplementedError

    def to_wire(self) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentCreated(Body):
    """A named experiment came into being. Entity: the experiment id."""

    TYPE: ClassVar[str] = "experiment_created"
    name: str
    artifact_location: str = ""
    tags: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ExperimentCreated:
        return cls(
            name=_str(d, "name", max_len=limits.EXPERIMENT_NAME.stored, empty=False),
            artifact_location=_opt_str(d, "artifact_location") or "",
            tags=_str_map(d, "tags", max_value_len=limits.EXPERIMENT_TAG_VALUE.stored),
        )

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "artifact_location": self.artifact_location, "tags": dict(self.tags)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentRenamed(Body):
    TYPE: ClassVar[str] = "experiment_renamed"
    name: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ExperimentRenamed:
        return cls(name=_str(d, "name", max_len=limits.EXPERIMENT_NAME.stored, empty=False))

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentDeleted(Body):
    TYPE: ClassVar[str] = "experiment_deleted"

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ExperimentDeleted:
        return cls()

    def to_wire(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentRestored(Body):
    TYPE: ClassVar[str] = "experiment_restored"

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ExperimentRestored:
        return cls()

    def to_wire(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentTagSet(Body):
    TYPE: ClassVar[str] = "experiment_tag_set"
    key: str
    value: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ExperimentTagSet:
        return cls(key=_key(d.get("key"), "tag"), value=_str(d, "value", max_len=limits.EXPERIMENT_TAG_VALUE.stored))

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentTagDeleted(Body):
    TYPE: ClassVar[str] = "experiment_tag_deleted"
    key: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ExperimentTagDeleted:
        return cls(key=_key(d.get("key"), "tag"))

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCreated(Body):
    """A run started. Entity: the run id (minted by the client, 32 hex chars)."""

    TYPE: ClassVar[str] = "run_created"
    experiment_id: str
    name: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    parent_run_id: str | None = None
    start_time_ms: int
    user: str = ""
    status: str = "RUNNING"

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RunCreated:
        return cls(
            experiment_id=_str(d, "experiment_id", max_len=limits.EXPERIMENT_ID.stored, empty=False),
            name=_opt_str(d, "name") or "",
            tags=_str_map(d, "tags", max_value_len=limits.RUN_TAG_VALUE.stored),
            parent_run_id=_opt_str(d, "parent_run_id"),
            start_time_ms=_int(d, "start_time_ms"),  # type: ignore[arg-type]
            user=_opt_str(d, "user") or "",
            status=_status(d) if "status" in d else "RUNNING",
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "name": self.name,
            "tags": dict(self.tags),
            "parent_run_id": self.parent_run_id,
            "start_time_ms": self.start_time_ms,
            "user": self.user,
            "status": self.status,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RunStatusChanged(Body):
    """The run moved to a status without ending (e.g. SCHEDULED -> RUNNING)."""

    TYPE: ClassVar[str] = "run_status_changed"
    status: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RunStatusChanged:
        return cls(status=_status(d))

    def to_wire(self) -> dict[str, Any]:
        return {"status": self.status}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEnded(Body):
    """The run reached a terminal status (FINISHED, FAILED or KILLED) at ``end_time_ms``."""

    TYPE: ClassVar[str] = "run_ended"
    status: str
    end_time_ms: int

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RunEnded:
        status = _status(d)
        if status not in TERMINAL_STATUSES:
            raise ContractError(f"run_ended status must be terminal, got {status!r}")
        return cls(status=status, end_time_ms=_int(d, "end_time_ms"))  # type: ignore[arg-type]

    def to_wire(self) -> dict[str, Any]:
        return {"status": self.status, "end_time_ms": self.end_time_ms}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRenamed(Body):
    TYPE: ClassVar[str] = "run_renamed"
    name: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RunRenamed:
        return cls(name=_str(d, "name", max_len=limits.RUN_NAME.stored))

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDeleted(Body):
    TYPE: ClassVar[str] = "run_deleted"

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RunDeleted:
        return cls()

    def to_wire(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRestored(Body):
    TYPE: ClassVar[str] = "run_restored"

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RunRestored:
        return cls()

    def to_wire(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True, slots=True, kw_only=True)
class ParamsLogged(Body):
    """Params of a run; values are strings (as in MLflow). Immutable once logged."""

    TYPE: ClassVar[str] = "params_logged"
    params: tuple[tuple[str, str], ...]

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ParamsLogged:
        params = _str_map(d, "params", max_value_len=limits.PARAM_VALUE.stored)
        if not params:
            raise ContractError("field 'params' must not be empty")
        return cls(params=params)

    def to_wire(self) -> dict[str, Any]:
        return {"params": dict(self.params)}


@dataclass(frozen=True, slots=True, kw_only=True)
class TagsSet(Body):
    TYPE: ClassVar[str] = "tags_set"
    tags: tuple[tuple[str, str], ...]

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> TagsSet:
        tags = _str_map(d, "tags", max_value_len=limits.RUN_TAG_VALUE.stored)
        if not tags:
            raise ContractError("field 'tags' must not be empty")
        return cls(tags=tags)

    def to_wire(self) -> dict[str, Any]:
        return {"tags": dict(self.tags)}


@dataclass(frozen=True, slots=True, kw_only=True)
class TagsDeleted(Body):
    TYPE: ClassVar[str] = "tags_deleted"
    keys: tuple[str, ...]

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> TagsDeleted:
        keys = d.get("keys")
        if not isinstance(keys, list) or not keys:
            raise ContractError("field 'keys' must be a non-empty list of strings")
        return cls(keys=tuple(_key(k, "tag") for k in keys))

    def to_wire(self) -> dict[str, Any]:
        return {"keys": list(self.keys)}


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NONFINITE_IN = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _encode_values(values: tuple[float, ...]) -> list[Any]:
    if all(map(math.isfinite, values)):
        return list(values)
    return [
        v if math.isfinite(v) else ("NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))
        for v in values
    ]


def _decode_values(raw: Any, n: int) -> tuple[float, ...]:
    if not isinstance(raw, list) or len(raw) != n:
        raise ContractError("field 'values' must be a list as long as 'keys'")
    try:
        return tuple(map(float, raw))  # ints, floats, and 'NaN'/'Infinity'/'-Infinity'
    except (TypeError, ValueError) as exc:
        bad = next(v for v in raw if not (type(v) in (int, float) or v in _NONFINITE_IN))
        raise ContractError(f"field 'values' holds a non-number: {bad!r}") from exc


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricsLogged(Body):
    """A columnar batch of metric points of one run, from the event's source rank.

    The four tuples are parallel: point ``i`` is ``(keys[i], steps[i],
    timestamps_ms[i], values[i])``. Non-finite values travel as the strings
    ``"NaN"``, ``"Infinity"``, ``"-Infinity"`` (as proto-JSON does). Steps and
    timestamps are signed 64-bit integers.

    ``model_id`` / ``dataset_name`` / ``dataset_digest`` (optional, on the wire
    only when set) say that every point of the batch is a metric *of* an
    MLflow-3 logged model, evaluated on a dataset (``mlflow.models.evaluate``,
    ``log_metric(model_id=...)``); the points are the run's metrics too.
    """

    TYPE: ClassVar[str] = "metrics_logged"
    keys: tuple[str, ...]
    steps: tuple[int, ...]
    timestamps_ms: tuple[int, ...]
    values: tuple[float, ...]
    model_id: str = ""
    dataset_name: str = ""
    dataset_digest: str = ""

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> MetricsLogged:
        keys, steps, ts = d.get("keys"), d.get("steps"), d.get("timestamps_ms")
        if not isinstance(keys, list) or not keys:
            raise ContractError("field 'keys' must be a non-empty list")
        n = len(keys)
        if not isinstance(steps, list) or len(steps) != n:
            raise ContractError("field 'steps' must be a list as long as 'keys'")
        if not isinstance(ts, list) or len(ts) != n:
            raise ContractError("field 'timestamps_ms' must be a list as long as 'keys'")
        if not all(type(k) is str for k in keys):
            raise ContractError("field 'keys' must hold strings only")
        for k in set(keys):
            _key(k, "metric")
        if not all(type(s) is int for s in steps):
            raise ContractError("field 'steps' must hold integers only")
        if not all(type(t) is int for t in ts):
            raise ContractError("field 'timestamps_ms' must hold integers only")
        if min(steps) < _INT64_MIN or max(steps) > _INT64_MAX:
            raise ContractError("field 'steps' holds a value outside the signed 64-bit range")
        if min(ts) < _INT64_MIN or max(ts) > _INT64_MAX:
            raise ContractError("field 'timestamps_ms' holds a value outside the signed 64-bit range")
        return cls(
            keys=tuple(keys),
            steps=tuple(steps),
            timestamps_ms=tuple(ts),
            values=_decode_values(d.get("values"), n),
            model_id=_opt_str(d, "model_id", max_len=limits.ENTITY.stored) or "",
            dataset_name=_opt_str(d, "dataset_name", max_len=limits.DATASET_NAME.stored) or "",
            dataset_digest=_opt_str(d, "dataset_digest", max_len=limits.DATASET_DIGEST.stored) or "",
        )

    def to_wire(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "keys": list(self.keys),
            "steps": list(self.steps),
            "timestamps_ms": list(self.timestamps_ms),
            "values": _encode_values(self.values),
        }
        if self.model_id:
            d["model_id"] = self.model_id
        if self.dataset_name or self.dataset_digest:
            d["dataset_name"], d["dataset_digest"] = self.dataset_name, self.dataset_digest
        return d


#: The tracking body types, in the order of the contract's documentation.
TRACKING_BODIES: tuple[type[Body], ...] = (
    ExperimentCreated, ExperimentRenamed, ExperimentDeleted, ExperimentRestored, ExperimentTagSet,
    ExperimentTagDeleted, RunCreated, RunStatusChanged, RunEnded, RunRenamed, RunDeleted, RunRestored,
    ParamsLogged, TagsSet, TagsDeleted, MetricsLogged,
)


# ------------------------------------------------------------------- envelope


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """Who produced an event: host name, process id, and distributed rank (0 if none)."""

    host: str = ""
    pid: int = 0
    rank: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One immutable fact. See the module docstring for the meaning of each field."""

    id: str
    type: str
    entity: str
    ts_ms: int
    body: Body
    source: Source = field(default_factory=Source)
    seq: int = 0
    actor: str = ""
    schema_version: int = SCHEMA_VERSION
