"""The audit trail: who changed what on a model, when, and what it was before.

A model's trail is every event of its stable id, so it runs unbroken across
renames: asking by the old name or the new one gives the same trail. Each
entry's before/after values are read from the same fold as live state
(the model just before and just after the event), never re-derived from
bodies, so they agree with what ``as_of`` shows at those instants.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

from producer.errors import NotFoundError
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

from ._fold import apply
from ._state import EMPTY, ModelState

__all__ = ["Change", "AuditEntry", "history", "model_history", "model_id_for_name"]


class Change(NamedTuple):
    """One field's value just before and just after an event (None: absent)."""

    field: str
    """``name``, ``description``, ``deleted``, ``stage``, ``source``, ``run_id``, ``run_link``,
    ``model_id``, ``tag.<key>`` or ``alias.<alias>`` (whose value is a version number)."""
    before: object
    after: object


class AuditEntry(NamedTuple):
    """One event of a model's trail."""

    event_id: str
    ts_ms: int
    """When (the event's timestamp, ms since the epoch)."""
    actor: str
    """Who ("" when the command carried no actor)."""
    type: str
    """The event type, e.g. ``model_version_stage_transitioned``."""
    model_id: str
    model_name: str
    """The model's name when the event was recorded (the new name is in the ``name`` change of a rename)."""
    version: int | None
    """The version the event is about (for alias events, the version the alias points at);
    None for model-level events."""
    changes: tuple[Change, ...]

    @property
    def summary(self) -> str:
        """``"stage: 'Staging' -> 'Production'"``, changes joined by ``"; "``."""
        return "; ".join(f"{c.field}: {c.before!r} -> {c.after!r}" for c in self.changes)


def model_id_for_name(events: Iterable[Event], name: str) -> str:
    """The model most recently called ``name`` (by creation or rename; by ``ts_ms``, then event id),
    whether it is still called so, was renamed away, or was deleted."""
    latest: tuple[int, str, str] | None = None
    for e in events:
        b = e.body
        if (type(b) is RegisteredModelCreated and b.name == name) or (
            type(b) is RegisteredModelRenamed and b.new_name == name
        ):
            claim = (e.ts_ms, e.id, e.entity)
            if latest is None or claim > latest:
                latest = claim
    if latest is None:
        raise NotFoundError(f"no registered model was ever called {name!r}")
    return latest[2]


def history(events: Iterable[Event], name: str, version: int | None = None) -> list[AuditEntry]:
    """The trail of the model most recently called ``name`` (see :func:`model_id_for_name`),
    or of one of its versions; in log order."""
    log = events if isinstance(events, Sequence) else list(events)
    return model_history(log, model_id_for_name(log, name), version)


def model_history(events: Iterable[Event], model_id: str, version: int | None = None) -> list[AuditEntry]:
    """The trail of the model with this stable id (of one version if ``version`` is given)."""
    entries: list[AuditEntry] = []
    state = EMPTY
    for e in events:
        if e.entity != model_id:
            continue
        before = state.models.get(model_id)
        state = apply(state, e)
        probes = _PROBES.get(e.type)
        if probes is None:
            continue
        b = e.body
        if version is not None and version not in (getattr(b, "version", None), getattr(b, "previous_version", None)):
            continue
        after = state.models.get(model_id)
        changes = tuple(Change(f, get(before), get(after)) for f, get in probes(b))
        name = before.name if before is not None else getattr(b, "name", "")
        entries.append(AuditEntry(e.id, e.ts_ms, e.actor, e.type, model_id, name, getattr(b, "version", None), changes))
    return entries


# ------------------------------------------------- what each event type changes

Getter = Callable[[ModelState | None], object]
Probe = tuple[str, Getter]


def _model_field(attr: str) -> Getter:
    return lambda m: None if m is None else getattr(m, attr)


def _model_tag(key: str) -> Getter:
    return lambda m: None if m is None else m.tags.get(key)


def _alias(alias: str) -> Getter:
    return lambda m: None if m is None else m.aliases.get(alias)


def _version_field(number: int, attr: str) -> Getter:
    def get(m: ModelState | None) -> object:
        v = None if m is None else m.versions.get(number)
        return None if v is None else getattr(v, attr)

    return get


def _version_tag(number: int, key: str) -> Getter:
    def get(m: ModelState | None) -> object:
        v = None if m is None else m.versions.get(number)
        return None if v is None else v.tags.get(key)

    return get


def _version_gone(number: int) -> Getter:
    return lambda m: m is None or number not in m.versions


def _created(b: RegisteredModelCreated) -> list[Probe]:
    probes = [("name", _model_field("name"))]
    if b.description:
        probes.append(("description", _model_field("description")))
    return probes + [(f"tag.{k}", _model_tag(k)) for k, _ in b.tags]


def _version_created(b: ModelVersionCreated) -> list[Probe]:
    n = b.version
    probes = [("source", _version_field(n, "source")), ("run_id", _version_field(n, "run_id"))]
    probes += [(f, _version_field(n, f)) for f in ("run_link", "description", "model_id") if getattr(b, f)]
    return probes + [(f"tag.{k}", _version_tag(n, k)) for k, _ in b.tags]


_PROBES: dict[str, Callable[[object], list[Probe]]] = {
    RegisteredModelCreated.TYPE: _created,  # type: ignore[dict-item]
    RegisteredModelRenamed.TYPE: lambda b: [("name", _model_field("name"))],
    RegisteredModelDescriptionUpdated.TYPE: lambda b: [("description", _model_field("description"))],
    RegisteredModelTagSet.TYPE: lambda b: [(f"tag.{b.key}", _model_tag(b.key))],  # type: ignore[attr-defined]
    RegisteredModelTagDeleted.TYPE: lambda b: [(f"tag.{b.key}", _model_tag(b.key))],  # type: ignore[attr-defined]
    RegisteredModelDeleted.TYPE: lambda b: [("deleted", _model_field("deleted"))],
    RegisteredModelAliasSet.TYPE: lambda b: [(f"alias.{b.alias}", _alias(b.alias))],  # type: ignore[attr-defined]
    RegisteredModelAliasDeleted.TYPE: lambda b: [(f"alias.{b.alias}", _alias(b.alias))],  # type: ignore[attr-defined]
    ModelVersionCreated.TYPE: _version_created,  # type: ignore[dict-item]
    ModelVersionDescriptionUpdated.TYPE: lambda b: [
        ("description", _version_field(b.version, "description"))],  # type: ignore[attr-defined]
    ModelVersionTagSet.TYPE: lambda b: [
        (f"tag.{b.key}", _version_tag(b.version, b.key))],  # type: ignore[attr-defined]
    ModelVersionTagDeleted.TYPE: lambda b: [
        (f"tag.{b.key}", _version_tag(b.version, b.key))],  # type: ignore[attr-defined]
    ModelVersionStageTransitioned.TYPE: lambda b: [
        ("stage", _version_field(b.version, "stage"))],  # type: ignore[attr-defined]
    ModelVersionDeleted.TYPE: lambda b: [("deleted", _version_gone(b.version))],  # type: ignore[attr-defined]
}
