"""The fold: ``apply(state, event) -> state`` and everything built on it.

Live projection (``apply``), rebuild from the stored log (``project``),
``as_of`` and ``history`` all run the same per-event step, ``_step``. It never
raises on a well-formed event and never mutates a state it was given; an
event it cannot place (another domain's type, a model or version the state
does not hold — e.g. one model's fold fed another model's events, or
``as_of`` cutting a skewed log) changes nothing. A redelivered
``registered_model_created`` or ``model_version_created`` (an id or number
already folded) changes nothing either, so a duplicate can never reset a
model.

Events must be in order per model (entity); across models any interleaving
folds to the same state, so a log read back ``ORDER BY entity, event_id``
rebuilds the same registry as the live fold.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable
from typing import Any

from producer.events import Event
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

from ._state import EMPTY, ModelState, RegistryState, VersionState

__all__ = ["apply", "project", "replay", "as_of"]


def apply(state: RegistryState, event: Event) -> RegistryState:
    """``state`` with ``event`` folded in (a new value; ``state`` is untouched)."""
    if event.type not in _REGISTRY_TYPES:
        return state
    models = dict(state.models)
    # Only creations, renames and deletes touch the name index: share it otherwise.
    names = dict(state.names) if event.type in _NAME_TYPES else state.names
    _step(models, names, event)  # type: ignore[arg-type]
    return RegistryState(models, names)


def project(events: Iterable[Event], initial: RegistryState = EMPTY) -> RegistryState:
    """Fold ``events`` into ``initial``: the same as ``functools.reduce(apply, events, initial)``.

    It runs the same step as ``apply``, only into two dicts of its own instead
    of copying them per event (the models it does not change are shared,
    never mutated) — what makes a 100,000-event replay fast.
    """
    models, names = dict(initial.models), dict(initial.names)
    for event in events:
        _step(models, names, event)
    return RegistryState(models, names)


def replay(events: Iterable[Event], initial: RegistryState = EMPTY) -> RegistryState:
    """``project`` for a rebuild from the log: the same fold, with CPython's cyclic GC paused.

    A replay keeps about ten container objects per event alive (decoded JSON,
    envelope, body, state), and the cyclic collector re-scans the survivors
    again and again: with it running, decode + fold of 100,000 events takes
    about twice as long (``benchmarks/registry_fold.py``). Events and registry
    state hold no reference cycles, so the collector has nothing to find there. Pass a lazy iterable (a generator
    that decodes pages of the log) so decoding runs paused too. The collector
    is re-enabled on return or error, if it was enabled on entry.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        return project(events, initial)
    finally:
        if was_enabled:
            gc.enable()


def as_of(events: Iterable[Event], t_ms: int, initial: RegistryState = EMPTY) -> RegistryState:
    """The registry as it was at ``t_ms``: the fold of the events with ``ts_ms <= t_ms``."""
    return project((e for e in events if e.ts_ms <= t_ms), initial)


def _step(models: dict[str, ModelState], names: dict[str, str], event: Event) -> None:
    """Fold one event into ``models`` / ``names`` in place; both must be private to the caller."""
    fold = _MODEL_FOLDS.get(event.type)
    if fold is None:
        if event.type == RegisteredModelCreated.TYPE and event.entity not in models:
            model = _created(event)
            models[model.id] = model
            _claim(models, names, model)
        return
    old = models.get(event.entity)
    if old is None or old.deleted_ms is not None:
        return
    new = fold(old, event.body, event)
    if new is old:
        return
    models[new.id] = new
    if new.name != old.name or new.deleted_ms is not None:
        if names.get(old.name) == old.id:
            del names[old.name]
        if new.deleted_ms is None:
            _claim(models, names, new)


def _claim(models: dict[str, ModelState], names: dict[str, str], model: ModelState) -> None:
    """Give ``model`` its name in the index, unless a live model claimed that name later."""
    holder_id = names.get(model.name)
    if holder_id is not None and holder_id != model.id:
        holder = models[holder_id]
        if (holder.named_ms, holder.id) > (model.named_ms, model.id):
            return
    names[model.name] = model.id


def _created(e: Event) -> ModelState:
    b: RegisteredModelCreated = e.body  # type: ignore[assignment]
    ts = e.ts_ms
    return ModelState(
        id=e.entity, name=b.name, description=b.description, tags=dict(b.tags), versions={}, aliases={},
        last_version=0, created_ms=ts, updated_ms=ts, created_by=e.actor, named_ms=ts,
    )


# ------------------------------------------------------- model-level changes


def _renamed(m: ModelState, b: RegisteredModelRenamed, e: Event) -> ModelState:
    return m._replace(name=b.new_name, named_ms=e.ts_ms, updated_ms=e.ts_ms)


def _description(m: ModelState, b: RegisteredModelDescriptionUpdated, e: Event) -> ModelState:
    return m._replace(description=b.description, updated_ms=e.ts_ms)


def _tag_set(m: ModelState, b: RegisteredModelTagSet, e: Event) -> ModelState:
    return m._replace(tags={**m.tags, b.key: b.value})  # tags and aliases leave updated_ms, as in MLflow


def _tag_deleted(m: ModelState, b: RegisteredModelTagDeleted, e: Event) -> ModelState:
    return m._replace(tags={k: v for k, v in m.tags.items() if k != b.key})


def _deleted(m: ModelState, b: RegisteredModelDeleted, e: Event) -> ModelState:
    return m._replace(deleted_ms=e.ts_ms, updated_ms=e.ts_ms)


def _alias_set(m: ModelState, b: RegisteredModelAliasSet, e: Event) -> ModelState:
    if b.version not in m.versions:
        return m
    return _model_with(m, m.updated_ms, aliases={**m.aliases, b.alias: b.version})


def _alias_deleted(m: ModelState, b: RegisteredModelAliasDeleted, e: Event) -> ModelState:
    return _model_with(m, m.updated_ms, aliases={a: n for a, n in m.aliases.items() if a != b.alias})


# ----------------------------------------------------- version-level changes


def _version_created(m: ModelState, b: ModelVersionCreated, e: Event) -> ModelState:
    if b.version <= m.last_version:
        return m
    ts = e.ts_ms
    v = VersionState(
        version=b.version, source=b.source, run_id=b.run_id, run_link=b.run_link, model_id=b.model_id,
        description=b.description, tags=dict(b.tags), stage="None", created_ms=ts, updated_ms=ts,
        created_by=e.actor,
    )
    return _model_with(m, ts, versions={**m.versions, b.version: v}, last_version=b.version)


def _version_description(m: ModelState, b: ModelVersionDescriptionUpdated, e: Event) -> ModelState:
    v = m.versions.get(b.version)
    return m if v is None else _version_with(m, v, e.ts_ms, m.updated_ms, description=b.description)


def _version_tag_set(m: ModelState, b: ModelVersionTagSet, e: Event) -> ModelState:
    v = m.versions.get(b.version)
    return m if v is None else _version_with(m, v, v.updated_ms, m.updated_ms, tags={**v.tags, b.key: b.value})


def _version_tag_deleted(m: ModelState, b: ModelVersionTagDeleted, e: Event) -> ModelState:
    v = m.versions.get(b.version)
    if v is None:
        return m
    return _version_with(m, v, v.updated_ms, m.updated_ms, tags={k: x for k, x in v.tags.items() if k != b.key})


def _stage(m: ModelState, b: ModelVersionStageTransitioned, e: Event) -> ModelState:
    v = m.versions.get(b.version)
    return m if v is None else _version_with(m, v, e.ts_ms, e.ts_ms, stage=b.to_stage)


def _version_deleted(m: ModelState, b: ModelVersionDeleted, e: Event) -> ModelState:
    if b.version not in m.versions:
        return m
    return _model_with(
        m, e.ts_ms,
        versions={n: v for n, v in m.versions.items() if n != b.version},
        aliases={a: n for a, n in m.aliases.items() if n != b.version},
    )


# The two helpers below are the hot path of a replay (versions and aliases
# change most). They unpack and rebuild the tuple positionally, ~3x cheaper
# than ``_replace`` or keywords; ``_FIELD_ORDER`` pins the order they assume.

_new = tuple.__new__
_FIELD_ORDER = (
    ("id", "name", "description", "tags", "versions", "aliases", "last_version", "created_ms", "updated_ms",
     "created_by", "named_ms", "deleted_ms"),
    ("version", "source", "run_id", "run_link", "model_id", "description", "tags", "stage", "created_ms",
     "updated_ms", "created_by"),
)
if (ModelState._fields, VersionState._fields) != _FIELD_ORDER:  # pragma: no cover - a guard for editors
    raise RuntimeError("registry._fold assumes another field order of ModelState / VersionState")


def _model_with(
    m: ModelState, ts: int, *, versions: Any = None, aliases: Any = None, last_version: int | None = None
) -> ModelState:
    """``m`` with new versions / aliases / last_version (those given) and ``updated_ms=ts``."""
    (id_, name, description, tags, old_versions, old_aliases, old_last, created_ms, _, created_by, named_ms,
     deleted_ms) = m
    return _new(ModelState, (
        id_, name, description, tags,
        old_versions if versions is None else versions,
        old_aliases if aliases is None else aliases,
        old_last if last_version is None else last_version,
        created_ms, ts, created_by, named_ms, deleted_ms,
    ))


def _version_with(
    m: ModelState, v: VersionState, ts: int, model_ts: int, *, description: str | None = None, tags: Any = None,
    stage: str | None = None,
) -> ModelState:
    """``m`` (``updated_ms=model_ts``) whose version ``v`` has the given description / tags / stage and
    ``updated_ms=ts``."""
    number, source, run_id, run_link, model_id, old_description, old_tags, old_stage, created_ms, _, created_by = v
    nv = _new(VersionState, (
        number, source, run_id, run_link, model_id,
        old_description if description is None else description,
        old_tags if tags is None else tags,
        old_stage if stage is None else stage,
        created_ms, ts, created_by,
    ))
    return _model_with(m, model_ts, versions={**m.versions, number: nv})


_MODEL_FOLDS: dict[str, Callable[[ModelState, Any, Event], ModelState]] = {
    RegisteredModelRenamed.TYPE: _renamed,
    RegisteredModelDescriptionUpdated.TYPE: _description,
    RegisteredModelTagSet.TYPE: _tag_set,
    RegisteredModelTagDeleted.TYPE: _tag_deleted,
    RegisteredModelDeleted.TYPE: _deleted,
    RegisteredModelAliasSet.TYPE: _alias_set,
    RegisteredModelAliasDeleted.TYPE: _alias_deleted,
    ModelVersionCreated.TYPE: _version_created,
    ModelVersionDescriptionUpdated.TYPE: _version_description,
    ModelVersionTagSet.TYPE: _version_tag_set,
    ModelVersionTagDeleted.TYPE: _version_tag_deleted,
    ModelVersionStageTransitioned.TYPE: _stage,
    ModelVersionDeleted.TYPE: _version_deleted,
}
_NAME_TYPES = frozenset({RegisteredModelCreated.TYPE, RegisteredModelRenamed.TYPE, RegisteredModelDeleted.TYPE})
_REGISTRY_TYPES = frozenset({RegisteredModelCreated.TYPE, *_MODEL_FOLDS})
