"""``decide``: validate one command against the current state and return the events it causes.

Pure: no I/O, no clock, no randomness — time, actor and id factory come in as
arguments. The caller appends the returned events (in order, all or none) and
then folds them with :func:`registry.apply`. Serialising commands per model
(the service's per-model lock) is what keeps version numbers from colliding:
``decide`` numbers a new version ``last_version + 1`` of the state it is given.

An empty list means "valid, but nothing to record" (deleting a tag or alias
that is not there, as MLflow accepts silently).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from producer.errors import AlreadyExistsError, ContractError
from producer.events import Body, Event
from producer.ids import IdFactory
from producer.registry_events import (
    ModelVersionCreated,
    ModelVersionDeleted,
    ModelVersionDescriptionUpdated,
    ModelVersionStageTransitioned,
    ModelVersionTagDeleted,
    ModelVersionTagSet,
    RegisteredModelAliasDeleted,
    RegisteredModelAliasSet,
    RegisteredModelCreated,
    RegisteredModelDeleted,
    RegisteredModelDescriptionUpdated,
    RegisteredModelRenamed,
    RegisteredModelTagDeleted,
    RegisteredModelTagSet,
)

from . import _commands as c
from ._reads import get_model, version_in
from ._state import RegistryState
from ._validate import (
    ACTIVE_STAGES,
    canonical_stage,
    check_alias,
    check_model_name,
    check_tag,
    check_text,
    check_version,
)

__all__ = ["decide"]


class _Ctx(NamedTuple):
    now_ms: int
    actor: str
    new_id: IdFactory
    model_id_for: Callable[[str], str] | None

    def event(self, entity: str, body: Body) -> Event:
        return Event(id=self.new_id(), type=body.TYPE, entity=entity, ts_ms=self.now_ms, body=body, actor=self.actor)


def decide(state: RegistryState, command: c.Command, now_ms: int, actor: str, new_id: IdFactory, *,
           model_id_for: Callable[[str], str] | None = None) -> list[Event]:
    """The events ``command`` causes in ``state``, stamped ``now_ms`` and ``actor``; ids from ``new_id``.

    ``CreateModel`` mints the new model's stable id with ``model_id_for(name)``
    when given (the service derives it from the name, so that two processes
    creating one name at once collide on one entity), else with ``new_id()``.

    ``state`` may be the whole registry or one model's fold. Commands that
    check name uniqueness (create, rename) need ``state.names`` to hold the
    live names (at least the one asked for). Raises ``NotFoundError``
    (unknown or deleted model / version), ``AlreadyExistsError`` (name taken),
    ``ContractError`` (invalid stage, alias, name, tag, version).
    """
    handler = _DECIDERS.get(type(command))
    if handler is None:
        raise TypeError(f"not a registry command: {command!r}")
    if type(now_ms) is not int or now_ms < 0:
        raise ContractError(f"now_ms must be a non-negative integer, got {now_ms!r}")
    return handler(state, command, _Ctx(now_ms, actor, new_id, model_id_for))


def _tags(tags: c.Tags) -> c.Tags:
    for key, value in tags:
        check_tag(key, value)
    return tuple(dict(tags).items())  # a repeated key: the last value wins, once


def _create_model(state: RegistryState, cmd: c.CreateModel, ctx: _Ctx) -> list[Event]:
    name = check_model_name(cmd.name)
    description = check_text(cmd.description, "description")
    body = RegisteredModelCreated(name=name, description=description, tags=_tags(cmd.tags))
    if name in state.names:
        raise AlreadyExistsError(f"Registered Model (name={name}) already exists.")
    model_id = ctx.model_id_for(name) if ctx.model_id_for is not None else ctx.new_id()
    return [ctx.event(model_id, body)]


def _rename_model(state: RegistryState, cmd: c.RenameModel, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    new_name = check_model_name(cmd.new_name, "new_name")
    if new_name in state.names:
        raise AlreadyExistsError(f"Registered Model (name={new_name}) already exists.")
    return [ctx.event(model.id, RegisteredModelRenamed(old_name=model.name, new_name=new_name))]


def _update_model_description(state: RegistryState, cmd: c.UpdateModelDescription, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    body = RegisteredModelDescriptionUpdated(description=check_text(cmd.description, "description"))
    return [ctx.event(model.id, body)]


def _set_model_tag(state: RegistryState, cmd: c.SetModelTag, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    check_tag(cmd.key, cmd.value)
    return [ctx.event(model.id, RegisteredModelTagSet(key=cmd.key, value=cmd.value))]


def _delete_model_tag(state: RegistryState, cmd: c.DeleteModelTag, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    check_tag(cmd.key, "")
    if cmd.key not in model.tags:
        return []
    return [ctx.event(model.id, RegisteredModelTagDeleted(key=cmd.key))]


def _delete_model(state: RegistryState, cmd: c.DeleteModel, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    return [ctx.event(model.id, RegisteredModelDeleted())]


def _create_version(state: RegistryState, cmd: c.CreateVersion, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    if cmd.run_id is not None:
        check_text(cmd.run_id, "run_id", empty=False)
    if cmd.model_id is not None:
        check_text(cmd.model_id, "model_id", empty=False)
    body = ModelVersionCreated(
        version=model.last_version + 1,
        source=check_text(cmd.source, "source", empty=False),
        run_id=cmd.run_id,
        run_link=check_text(cmd.run_link, "run_link"),
        description=check_text(cmd.description, "description"),
        tags=_tags(cmd.tags),
        model_id=cmd.model_id,
    )
    return [ctx.event(model.id, body)]


def _update_version_description(state: RegistryState, cmd: c.UpdateVersionDescription, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    version = version_in(model, check_version(cmd.version)).version
    body = ModelVersionDescriptionUpdated(version=version, description=check_text(cmd.description, "description"))
    return [ctx.event(model.id, body)]


def _set_version_tag(state: RegistryState, cmd: c.SetVersionTag, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    version = version_in(model, check_version(cmd.version)).version
    check_tag(cmd.key, cmd.value)
    return [ctx.event(model.id, ModelVersionTagSet(version=version, key=cmd.key, value=cmd.value))]


def _delete_version_tag(state: RegistryState, cmd: c.DeleteVersionTag, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    mv = version_in(model, check_version(cmd.version))
    check_tag(cmd.key, "")
    if cmd.key not in mv.tags:
        return []
    return [ctx.event(model.id, ModelVersionTagDeleted(version=mv.version, key=cmd.key))]


def _transition_stage(state: RegistryState, cmd: c.TransitionStage, ctx: _Ctx) -> list[Event]:
    stage = canonical_stage(cmd.stage)
    archive = cmd.archive_existing_versions
    if type(archive) is not bool:
        raise ContractError(f"archive_existing_versions must be a boolean, got {archive!r}")
    if archive and stage not in ACTIVE_STAGES:
        raise ContractError(
            f"archive_existing_versions only applies to the active stages {', '.join(ACTIVE_STAGES)}, not {stage!r}"
        )
    model = get_model(state, cmd.name)
    mv = version_in(model, check_version(cmd.version))
    events = [ctx.event(model.id, ModelVersionStageTransitioned(
        version=mv.version, from_stage=mv.stage, to_stage=stage, archive_existing_versions=archive))]
    if archive:
        for other in sorted(n for n, v in model.versions.items() if v.stage == stage and n != mv.version):
            events.append(ctx.event(model.id, ModelVersionStageTransitioned(
                version=other, from_stage=stage, to_stage="Archived", archived_by_version=mv.version)))
    return events


def _delete_version(state: RegistryState, cmd: c.DeleteVersion, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    mv = version_in(model, check_version(cmd.version))
    events = [
        ctx.event(model.id, RegisteredModelAliasDeleted(alias=alias, version=mv.version))
        for alias in sorted(a for a, n in model.aliases.items() if n == mv.version)
    ]
    events.append(ctx.event(model.id, ModelVersionDeleted(version=mv.version)))
    return events


def _set_alias(state: RegistryState, cmd: c.SetAlias, ctx: _Ctx) -> list[Event]:
    alias = check_alias(cmd.alias)
    model = get_model(state, cmd.name)
    mv = version_in(model, check_version(cmd.version))
    body = RegisteredModelAliasSet(alias=alias, version=mv.version, previous_version=model.aliases.get(alias))
    return [ctx.event(model.id, body)]


def _delete_alias(state: RegistryState, cmd: c.DeleteAlias, ctx: _Ctx) -> list[Event]:
    model = get_model(state, cmd.name)
    check_text(cmd.alias, "alias", empty=False)
    version = model.aliases.get(cmd.alias)
    if version is None:
        return []
    return [ctx.event(model.id, RegisteredModelAliasDeleted(alias=cmd.alias, version=version))]


_DECIDERS: dict[type, Callable[[RegistryState, c.Command, _Ctx], list[Event]]] = {
    c.CreateModel: _create_model,  # type: ignore[dict-item]
    c.RenameModel: _rename_model,  # type: ignore[dict-item]
    c.UpdateModelDescription: _update_model_description,  # type: ignore[dict-item]
    c.SetModelTag: _set_model_tag,  # type: ignore[dict-item]
    c.DeleteModelTag: _delete_model_tag,  # type: ignore[dict-item]
    c.DeleteModel: _delete_model,  # type: ignore[dict-item]
    c.CreateVersion: _create_version,  # type: ignore[dict-item]
    c.UpdateVersionDescription: _update_version_description,  # type: ignore[dict-item]
    c.SetVersionTag: _set_version_tag,  # type: ignore[dict-item]
    c.DeleteVersionTag: _delete_version_tag,  # type: ignore[dict-item]
    c.TransitionStage: _transition_stage,  # type: ignore[dict-item]
    c.DeleteVersion: _delete_version,  # type: ignore[dict-item]
    c.SetAlias: _set_alias,  # type: ignore[dict-item]
    c.DeleteAlias: _delete_alias,  # type: ignore[dict-item]
}
