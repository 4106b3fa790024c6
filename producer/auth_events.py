"""Body types of the authentication and permission events (``AUTH_BODIES``, listed in :mod:`producer.contract`).

Every auth event has the one entity :data:`AUTH_ENTITY`, so the whole auth
history is one ordered stream (one Kafka partition; ``ORDER BY event_id`` in
the log). Who made the change and when live in the envelope (``actor``,
``ts``). Secrets never travel: a password is stored as its argon2 hash, an
API token as the SHA-256 of its (random, 256-bit) value. Auth events have no
projection tables and are not visible through the SQL endpoint; the server
folds them (:mod:`auth`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from .errors import ContractError
from .events import Body, _str

__all__ = [
    "AUTH_ENTITY",
    "AUTH_BODIES",
    "AUTH_EVENT_TYPES",
    "PERMISSION_NAMES",
    "UserCreated",
    "UserPasswordUpdated",
    "UserAdminUpdated",
    "UserDeleted",
    "ExperimentPermissionSet",
    "ExperimentPermissionDeleted",
    "RegisteredModelPermissionSet",
    "RegisteredModelPermissionDeleted",
    "ApiTokenCreated",
    "ApiTokenRevoked",
]

#: The entity of every auth event.
AUTH_ENTITY = "runledger.auth"
#: Permission names as MLflow's basic-auth app has them.
PERMISSION_NAMES = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")

MAX_USERNAME_LEN = 256
MAX_HASH_LEN = 1024


def _username(d: Mapping[str, Any]) -> str:
    return _str(d, "username", max_len=MAX_USERNAME_LEN, empty=False)


def _hash(d: Mapping[str, Any], name: str) -> str:
    return _str(d, name, max_len=MAX_HASH_LEN, empty=False)


def _permission(d: Mapping[str, Any]) -> str:
    p = _str(d, "permission")
    if p not in PERMISSION_NAMES:
        raise ContractError(f"field 'permission' must be one of {', '.join(PERMISSION_NAMES)}, got {p!r}")
    return p


def _flag(d: Mapping[str, Any], name: str) -> bool:
    v = d.get(name, False)
    if type(v) is not bool:
        raise ContractError(f"field {name!r} must be a boolean, got {type(v).__name__}")
    return v


@dataclass(frozen=True, slots=True, kw_only=True)
class UserCreated(Body):
    """A user came into being, with the argon2 hash of their password."""

    TYPE: ClassVar[str] = "auth_user_created"
    username: str
    password_hash: str
    is_admin: bool = False

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> UserCreated:
        return cls(username=_username(d), password_hash=_hash(d, "password_hash"), is_admin=_flag(d, "is_admin"))

    def to_wire(self) -> dict[str, Any]:
        return {"username": self.username, "password_hash": self.password_hash, "is_admin": self.is_admin}


@dataclass(frozen=True, slots=True, kw_only=True)
class UserPasswordUpdated(Body):
    """A user's password changed (every cached verification of the old one is void)."""

    TYPE: ClassVar[str] = "auth_user_password_updated"
    username: str
    password_hash: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> UserPasswordUpdated:
        return cls(username=_username(d), password_hash=_hash(d, "password_hash"))

    def to_wire(self) -> dict[str, Any]:
        return {"username": self.username, "password_hash": self.password_hash}


@dataclass(frozen=True, slots=True, kw_only=True)
class UserAdminUpdated(Body):
    TYPE: ClassVar[str] = "auth_user_admin_updated"
    username: str
    is_admin: bool

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> UserAdminUpdated:
        return cls(username=_username(d), is_admin=_flag(d, "is_admin"))

    def to_wire(self) -> dict[str, Any]:
        return {"username": self.username, "is_admin": self.is_admin}


@dataclass(frozen=True, slots=True, kw_only=True)
class UserDeleted(Body):
    """A user is gone, with their permissions and tokens; the name may be created again."""

    TYPE: ClassVar[str] = "auth_user_deleted"
    username: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> UserDeleted:
        return cls(username=_username(d))

    def to_wire(self) -> dict[str, Any]:
        return {"username": self.username}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentPermissionSet(Body):
    """A user's permission on one experiment (created or updated)."""

    TYPE: ClassVar[str] = "auth_experiment_permission_set"
    experiment_id: str
    username: str
    permission: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ExperimentPermissionSet:
        return cls(experiment_id=_str(d, "experiment_id", max_len=256, empty=False), username=_username(d),
                   permission=_permission(d))

    def to_wire(self) -> dict[str, Any]:
        return {"experiment_id": self.experiment_id, "username": self.username, "permission": self.permission}


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentPermissionDeleted(Body):
    TYPE: ClassVar[str] = "auth_experiment_permission_deleted"
    experiment_id: str
    username: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ExperimentPermissionDeleted:
        return cls(experiment_id=_str(d, "experiment_id", max_len=256, empty=False), username=_username(d))

    def to_wire(self) -> dict[str, Any]:
        return {"experiment_id": self.experiment_id, "username": self.username}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelPermissionSet(Body):
    """A user's permission on one registered model, by name (as MLflow keys it)."""

    TYPE: ClassVar[str] = "auth_registered_model_permission_set"
    name: str
    username: str
    permission: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RegisteredModelPermissionSet:
        return cls(name=_str(d, "name", max_len=256, empty=False), username=_username(d), permission=_permission(d))

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "username": self.username, "permission": self.permission}


@dataclass(frozen=True, slots=True, kw_only=True)
class RegisteredModelPermissionDeleted(Body):
    TYPE: ClassVar[str] = "auth_registered_model_permission_deleted"
    name: str
    username: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> RegisteredModelPermissionDeleted:
        return cls(name=_str(d, "name", max_len=256, empty=False), username=_username(d))

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "username": self.username}


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiTokenCreated(Body):
    """An API token for ``username``: only the SHA-256 (hex) of its value is kept."""

    TYPE: ClassVar[str] = "auth_token_created"
    token_id: str
    username: str
    name: str
    token_sha256: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ApiTokenCreated:
        return cls(token_id=_str(d, "token_id", max_len=64, empty=False), username=_username(d),
                   name=_str(d, "name", max_len=256), token_sha256=_hash(d, "token_sha256"))

    def to_wire(self) -> dict[str, Any]:
        return {"token_id": self.token_id, "username": self.username, "name": self.name,
                "token_sha256": self.token_sha256}


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiTokenRevoked(Body):
    TYPE: ClassVar[str] = "auth_token_revoked"
    token_id: str

    @classmethod
    def from_wire(cls, d: Mapping[str, Any]) -> ApiTokenRevoked:
        return cls(token_id=_str(d, "token_id", max_len=64, empty=False))

    def to_wire(self) -> dict[str, Any]:
        return {"token_id": self.token_id}


AUTH_BODIES: tuple[type[Body], ...] = (
    UserCreated, UserPasswordUpdated, UserAdminUpdated, UserDeleted,
    ExperimentPermissionSet, ExperimentPermissionDeleted,
    RegisteredModelPermissionSet, RegisteredModelPermissionDeleted,
    ApiTokenCreated, ApiTokenRevoked,
)
#: Wire names of the auth event types.
AUTH_EVENT_TYPES: frozenset[str] = frozenset(cls.TYPE for cls in AUTH_BODIES)
