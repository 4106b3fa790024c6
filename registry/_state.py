"""Registry state: plain immutable values that :func:`registry.apply` folds events into.

They are ``NamedTuple``s rather than frozen dataclasses because the fold
builds one or two per event and a tuple is several times cheaper to make
(``benchmarks/registry_fold.py``); compare them only with their own kind.

Every mapping in here is a plain ``dict`` that is **never mutated** once it
is inside a state value: ``apply`` builds new dicts (sharing the unchanged
values), so any state a caller holds stays valid forever — that is what
makes ``as_of`` and step-by-step history cheap and safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

__all__ = ["VersionState", "ModelState", "RegistryState", "EMPTY"]


class VersionState(NamedTuple):
    """One live model version. Deleted versions are not kept (see ``ModelState.last_version``)."""

    version: int
    source: str
    run_id: str | None
    run_link: str
    model_id: str | None
    """The MLflow-3 logged model this version registers, if any."""
    description: str
    tags: Mapping[str, str]
    stage: str
    """Canonical stage: ``None``, ``Staging``, ``Production`` or ``Archived``."""
    created_ms: int
    updated_ms: int
    """MLflow's ``last_updated_timestamp``: ``ts_ms`` of the version's creation, last stage change or
    description (tags and aliases do not count, as in MLflow)."""
    created_by: str
    """The actor of the ``model_version_created`` event ("" if unknown)."""


class ModelState(NamedTuple):
    """One registered model, by its stable id. A deleted model stays as a tombstone."""

    id: str
    """Stable id minted at creation; the ``entity`` of all its events. Survives renames."""
    name: str
    """Current name (the last name, for a tombstone)."""
    description: str
    tags: Mapping[str, str]
    versions: Mapping[int, VersionState]
    """Live versions by number, in creation order."""
    aliases: Mapping[str, int]
    """Alias -> version number; every target is a live version."""
    last_version: int
    """Highest version number ever created (deleted ones included); the next is ``last_version + 1``."""
    created_ms: int
    updated_ms: int
    """MLflow's ``last_updated_timestamp``: ``ts_ms`` of the model's creation, rename, description or
    delete, or of a version created, staged or deleted (tags, aliases and version descriptions do not
    count, as in MLflow). The audit trail (:func:`history`) keeps every event's time."""
    created_by: str
    named_ms: int
    """When the model took its current name (creation or last rename). Should two live
    models claim one name in a log replayed out of global order, the later claim holds it."""
    deleted_ms: int | None = None
    """When the model was deleted; None while it is live."""

    @property
    def deleted(self) -> bool:
        return self.deleted_ms is not None


class RegistryState(NamedTuple):
    """Many models (the whole registry) or just one (what the service loads under a model's lock).

    ``models`` is keyed by stable id and includes tombstones of deleted models;
    ``names`` maps each *live* model's current name to its id. The fold needs
    each model's events in order, but not a global order across models. Both ways of
    using it run through the same ``decide`` and ``apply``: a one-model state
    is simply the fold of that model's events.
    """

    models: Mapping[str, ModelState]
    names: Mapping[str, str]


EMPTY = RegistryState(models={}, names={})
"""The registry before any event."""
