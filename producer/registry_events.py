"""Body types of the model-registry events (``REGISTRY_BODIES``, listed in :mod:`producer.contract`).

Entity: every registry event's envelope ``entity`` is the registered model's
**stable id**, minted once by ``registered_model_created`` and never changed
by a rename. The model's *name* lives in the bodies of
``registered_model_created`` / ``registered_model_renamed`` and is folded into
a name index (see :mod:`registry`). The actor (who) and the time (when) live
in the envelope (``Event.actor``, ``Event.ts_ms``), never in a body.

Stages on the wire are always canonical: ``None``, ``Staging``,
``Production``, ``Archived`` (the string ``"None"``, not JSON null).
Version numbers are positive integers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from . import limits
from .errors import ContractError
from .events import Body, _int, _key, _opt_str, _str, _str_map

__all__ = [
    "STAGES",
    "REGISTRY_EVENT_TYPES",
    "REGISTRY_BODIES",
    "RegisteredModelCreated",
    "RegisteredModelRenamed",
    "RegisteredModelDescriptionUpdated",
    "RegisteredModelTagSet",
    "RegisteredModelTagDeleted",
    "RegisteredModelDeleted",
    "ModelVersionCreated",
    "ModelVersionDescriptionUpdated",
    "ModelVersionTagSet",
    "ModelVersionTagDeleted",
    "ModelVersionStageTransitioned",
    "ModelVersionDeleted",
    "RegisteredModelAliasSet",
    "RegisteredModelAliasDeleted",
]

#: Canonical stage names, in MLflow's order.
STAGES = ("None", "Staging", "Production", "Archived")

MAX_NAME_LEN = limits.REGISTRY_NAME.stored
MAX_ALIAS_LEN = limits.REGISTRY_ALIAS.stored
MAX_TAG_VALUE_LEN = limits.REGISTRY_TAG_VALUE.stored

Tags = tuple[tuple[str, str], ...]


def _version(d: Mapping[str, Any], name: str = "version") -> int:
    v: int = _int(d, name)  # type: ignore[assignment]
    if v < 1:
        raise ContractError(f"field {name!r} must be a positive integer, got {v}")
    return v


def _opt_version(d: Mapping[str, Any], name: str) -> int | None:
    if d.get(name) is None:
        return None
    return _version(d, name)


def _stage(d: Mapping[str, Any], name: str) -> str:
    s = _str(d, name)
    if s not in STAGES:
        raise ContractError(f"field {name!r} must be one of {', '.join(STAGES)}, got {s!r}")
    return s


def _name(d: Mapping[str, Any], name: str) -> str:
    return _str(d, name, max_len=MAX_NAME_LEN, empty=False)


def _alias(d: Mapping[str, Any]) -> str:
    return _str(d, "alias", max_len=MAX_ALIAS_LEN, empty=False)


def _bool(d: Mapping[str, Any], name: str) -> bool:
    v = d.get(name, False)
    if type(v) is not bool:
        raise ContractError(f"field {name!r} must be a boolean, got {type(v).__name__}")
    return v


def _tags(d: Mapping[str, Any]) -> Tags:
    return _str_map(d, "tags", max_value_len=MAX_TAG_VALUE_LEN)


def _tag_value(d: Mapping[str, Any]) -> str:
    return _str(d, "value", max_len=MAX_TAG_VALUE_LEN)


# ------------------------------------------------------------ registered model


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelCreated(Body):
    """A registered model came into being. ``entity`` is its new stable id."""

    TYPE: ClassVar[str] = "registered_model_created"
    name: str
    description: str = ""
    tags: Tags = ()

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RegisteredModelCreated:
        return cls(name=_name(d, "name"), description=_opt_str(d, "description") or "", tags=_tags(d))

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "tags": dict(self.tags)}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelRenamed(Body):
    """The model's name changed; its id (the entity), versions and history stay."""

    TYPE: ClassVar[str] = "registered_model_renamed"
    old_name: str
    new_name: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RegisteredModelRenamed:
        return cls(old_name=_name(d, "old_name"), new_name=_name(d, "new_name"))

    def to_wire(self) -> dict[str, Any]:
        return {"old_name": self.old_name, "new_name": self.new_name}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelDescriptionUpdated(Body):
    TYPE: ClassVar[str] = "registered_model_description_updated"
    description: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RegisteredModelDescriptionUpdated:
        return cls(description=_str(d, "description"))

    def to_wire(self) -> dict[str, Any]:
        return {"description": self.description}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelTagSet(Body):
    TYPE: ClassVar[str] = "registered_model_tag_set"
    key: str
    value: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RegisteredModelTagSet:
        return cls(key=_key(d.get("key"), "tag"), value=_tag_value(d))

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key, "value": self.value}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelTagDeleted(Body):
    TYPE: ClassVar[str] = "registered_model_tag_deleted"
    key: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RegisteredModelTagDeleted:
        return cls(key=_key(d.get("key"), "tag"))

    def to_wire(self) -> dict[str, Any]:
        return {"key": self.key}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelDeleted(Body):
    """The model and all its versions are gone; its name is free for a new model."""

    TYPE: ClassVar[str] = "registered_model_deleted"

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RegisteredModelDeleted:
        return cls()

    def to_wire(self) -> dict[str, Any]:
        return {}


# --------------------------------------------------------------- model version


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionCreated(Body):
    """Version ``version`` (the model's next number, never reused) of the model.

    ``source`` is where the model files live (``runs:/…``, ``s3://…``,
    ``models:/m-…``); ``run_id`` the run that produced it, if any; ``model_id``
    the MLflow-3 logged model it registers, if any. New versions start in
    stage ``None``.
    """

    TYPE: ClassVar[str] = "model_version_created"
    version: int
    source: str
    run_id: str | None = None
    run_link: str = ""
    description: str = ""
    tags: Tags = ()
    model_id: str | None = None

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ModelVersionCreated:
        return cls(
            version=_version(d),
            source=_str(d, "source", empty=False),
            run_id=_opt_str(d, "run_id"),
            run_link=_opt_str(d, "run_link") or "",
            description=_opt_str(d, "description") or "",
            tags=_tags(d),
            model_id=_opt_str(d, "model_id"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "source": self.source,
            "run_id": self.run_id,
            "run_link": self.run_link,
            "description": self.description,
            "tags": dict(self.tags),
            "model_id": self.model_id,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionDescriptionUpdated(Body):
    TYPE: ClassVar[str] = "model_version_description_updated"
    version: int
    description: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ModelVersionDescriptionUpdated:
        return cls(version=_version(d), description=_str(d, "description"))

    def to_wire(self) -> dict[str, Any]:
        return {"version": self.version, "description": self.description}


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionTagSet(Body):
    TYPE: ClassVar[str] = "model_version_tag_set"
    version: int
    key: str
    value: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ModelVersionTagSet:
        return cls(version=_version(d), key=_key(d.get("key"), "tag"), value=_tag_value(d))

    def to_wire(self) -> dict[str, Any]:
        return {"version": self.version, "key": self.key, "value": self.value}


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionTagDeleted(Body):
    TYPE: ClassVar[str] = "model_version_tag_deleted"
    version: int
    key: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ModelVersionTagDeleted:
        return cls(version=_version(d), key=_key(d.get("key"), "tag"))

    def to_wire(self) -> dict[str, Any]:
        return {"version": self.version, "key": self.key}


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionStageTransitioned(Body):
    """Version ``version`` moved from ``from_stage`` to ``to_stage``.

    A transition requested with ``archive_existing_versions`` is followed, at
    the same timestamp, by one event per other version that was in
    ``to_stage``: each moves it to ``Archived`` and names the requested
    version in ``archived_by_version`` (None on every user-requested event).
    """

    TYPE: ClassVar[str] = "model_version_stage_transitioned"
    version: int
    from_stage: str
    to_stage: str
    archive_existing_versions: bool = False
    archived_by_version: int | None = None

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ModelVersionStageTransitioned:
        return cls(
            version=_version(d),
            from_stage=_stage(d, "from_stage"),
            to_stage=_stage(d, "to_stage"),
            archive_existing_versions=_bool(d, "archive_existing_versions"),
            archived_by_version=_opt_version(d, "archived_by_version"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "from_stage": self.from_stage,
            "to_stage": self.to_stage,
            "archive_existing_versions": self.archive_existing_versions,
            "archived_by_version": self.archived_by_version,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelVersionDeleted(Body):
    """The version is gone; its number is never handed out again."""

    TYPE: ClassVar[str] = "model_version_deleted"
    version: int

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ModelVersionDeleted:
        return cls(version=_version(d))

    def to_wire(self) -> dict[str, Any]:
        return {"version": self.version}


# --------------------------------------------------------------------- aliases


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelAliasSet(Body):
    """``@alias`` now points at ``version``; ``previous_version`` is where it pointed before (None if new)."""

    TYPE: ClassVar[str] = "registered_model_alias_set"
    alias: str
    version: int
    previous_version: int | None = None

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RegisteredModelAliasSet:
        return cls(alias=_alias(d), version=_version(d), previous_version=_opt_version(d, "previous_version"))

    def to_wire(self) -> dict[str, Any]:
        return {"alias": self.alias, "version": self.version, "previous_version": self.previous_version}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelAliasDeleted(Body):
    """``@alias`` is gone; ``version`` is the version it pointed at."""

    TYPE: ClassVar[str] = "registered_model_alias_deleted"
    alias: str
    version: int

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RegisteredModelAliasDeleted:
        return cls(alias=_alias(d), version=_version(d))

    def to_wire(self) -> dict[str, Any]:
        return {"alias": self.alias, "version": self.version}


#: Every registry body type.
REGISTRY_BODIES: tuple[type[Body], ...] = (
    RegisteredModelCreated, RegisteredModelRenamed, RegisteredModelDescriptionUpdated,
    RegisteredModelTagSet, RegisteredModelTagDeleted, RegisteredModelDeleted,
    ModelVersionCreated, ModelVersionDescriptionUpdated, ModelVersionTagSet,
    ModelVersionTagDeleted, ModelVersionStageTransitioned, ModelVersionDeleted,
    RegisteredModelAliasSet, RegisteredModelAliasDeleted,
)
#: Every registry event type name, for consumers that route by type.
REGISTRY_EVENT_TYPES = frozenset(c.TYPE for c in REGISTRY_BODIES)
