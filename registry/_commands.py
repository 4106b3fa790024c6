"""Registry commands: what a caller asks for, before validation against state.

Commands name the model by its *current* name, as users (and MLflow's API)
do; :func:`registry.decide` resolves it to the stable id. Versions are
``int`` (the MLflow layer converts its string versions). Tags are tuples of
``(key, value)`` pairs, as in event bodies.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Command",
    "CreateModel",
    "RenameModel",
    "UpdateModelDescription",
    "SetModelTag",
    "DeleteModelTag",
    "DeleteModel",
    "CreateVersion",
    "UpdateVersionDescription",
    "SetVersionTag",
    "DeleteVersionTag",
    "TransitionStage",
    "DeleteVersion",
    "SetAlias",
    "DeleteAlias",
]

Tags = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateModel:
    name: str
    description: str = ""
    tags: Tags = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RenameModel:
    name: str
    new_name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateModelDescription:
    name: str
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetModelTag:
    name: str
    key: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteModelTag:
    """Deleting a tag the model does not have is not an error and records nothing (as in MLflow)."""

    name: str
    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteModel:
    name: str


@dataclass(frozen=True, slots=True, kw_only=True)
class CreateVersion:
    """Register ``source`` as the model's next version (numbered by the registry, never by the caller)."""

    name: str
    source: str
    run_id: str | None = None
    run_link: str = ""
    description: str = ""
    tags: Tags = ()
    model_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class UpdateVersionDescription:
    name: str
    version: int
    description: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVersionTag:
    name: str
    version: int
    key: str
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteVersionTag:
    """Deleting a tag the version does not have records nothing (as in MLflow)."""

    name: str
    version: int
    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TransitionStage:
    """Move a version to ``stage`` (any case). With ``archive_existing_versions`` (only
    for Staging / Production) every other version in that stage moves to Archived."""

    name: str
    version: int
    stage: str
    archive_existing_versions: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteVersion:
    """Delete a version; aliases pointing at it are deleted first, each as its own event."""

    name: str
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SetAlias:
    """Point ``@alias`` at ``version``, moving it if it pointed elsewhere."""

    name: str
    alias: str
    version: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DeleteAlias:
    """Deleting an alias the model does not have records nothing (as in MLflow)."""

    name: str
    alias: str


Command = (
    CreateModel | RenameModel | UpdateModelDescription | SetModelTag | DeleteModelTag | DeleteModel
    | CreateVersion | UpdateVersionDescription | SetVersionTag | DeleteVersionTag | TransitionStage
    | DeleteVersion | SetAlias | DeleteAlias
)
