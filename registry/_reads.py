"""Pure reads over a :class:`RegistryState` (live or ``as_of`` some time).

Lookups of things that do not exist (or no longer exist: deleted models and
versions) raise :class:`NotFoundError`; malformed input (a bad stage, a
malformed ``models:/`` URI) raises :class:`ContractError`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from producer.errors import ContractError, NotFoundError
from producer.registry_events import STAGES

from ._state import ModelState, RegistryState, VersionState
from ._validate import canonical_stage

__all__ = [
    "ModelsUri",
    "get_model",
    "get_model_by_id",
    "list_models",
    "get_version",
    "version_in",
    "get_version_by_alias",
    "aliases_of",
    "latest_versions",
    "parse_models_uri",
    "resolve_uri",
]


def get_model(state: RegistryState, name: str) -> ModelState:
    """The live model currently called ``name``."""
    model_id = state.names.get(name)
    if model_id is None:
        raise NotFoundError(f"Registered Model with name={name} not found")
    return state.models[model_id]


def get_model_by_id(state: RegistryState, model_id: str) -> ModelState:
    """The model with this stable id, deleted or not (check ``.deleted``)."""
    model = state.models.get(model_id)
    if model is None:
        raise NotFoundError(f"no registered model has id {model_id!r}")
    return model


def list_models(state: RegistryState) -> list[ModelState]:
    """Every live model, ordered by name."""
    return [state.models[state.names[n]] for n in sorted(state.names)]


def version_in(model: ModelState, version: int) -> VersionState:
    """A live version of ``model``; a deleted or never-created number raises NotFoundError."""
    v = model.versions.get(version)
    if v is None:
        raise NotFoundError(f"Model Version (name={model.name}, version={version}) not found")
    return v


def get_version(state: RegistryState, name: str, version: int) -> VersionState:
    """A live version; a deleted or never-created number raises NotFoundError."""
    return version_in(get_model(state, name), version)


def get_version_by_alias(state: RegistryState, name: str, alias: str) -> VersionState:
    model = get_model(state, name)
    number = model.aliases.get(alias)
    if number is None:
        raise NotFoundError(f"registered model {name!r} has no alias {alias!r}")
    return model.versions[number]


def aliases_of(model: ModelState, version: int) -> list[str]:
    """The aliases pointing at ``version``, sorted."""
    return sorted(a for a, v in model.aliases.items() if v == version)


def latest_versions(model: ModelState, stages: Iterable[str] | None = None) -> dict[str, VersionState]:
    """Highest live version in each stage, as MLflow's ``get_latest_versions``.

    ``stages`` (any case) limits the stages looked at; None or empty means all
    four. Stages without a version are absent from the result, which is in
    MLflow's stage order.
    """
    wanted = [canonical_stage(s) for s in stages] if stages else list(STAGES)
    best: dict[str, VersionState] = {}
    for v in model.versions.values():
        seen = best.get(v.stage)
        if seen is None or v.version > seen.version:
            best[v.stage] = v
    return {s: best[s] for s in STAGES if s in best and s in wanted}


class ModelsUri(NamedTuple):
    """A parsed ``models:/`` URI: ``name`` plus at most one of the other three.

    All three None means ``models:/name/latest`` (the highest live version).
    """

    name: str
    version: int | None = None
    stage: str | None = None
    """Canonical stage name."""
    alias: str | None = None


_URI_FORMS = "models:/<name>/<version>, models:/<name>/<stage>, models:/<name>/latest or models:/<name>@<alias>"


def parse_models_uri(uri: str) -> ModelsUri:
    """Parse the four registry forms of MLflow's ``models:/`` URIs (not logged-model ids)."""
    if not isinstance(uri, str) or not uri.startswith("models:/") or uri.startswith("models://"):
        raise ContractError(f"not a models:/ URI: {uri!r} (expected {_URI_FORMS})")
    parts = uri[len("models:/"):].split("/")
    if len(parts) == 2 and parts[0].strip() and parts[1].strip():
        name, suffix = parts
        if suffix.isdigit():
            return ModelsUri(name, version=int(suffix))
        if suffix.lower() == "latest":
            return ModelsUri(name)
        return ModelsUri(name, stage=canonical_stage(suffix))
    if len(parts) == 1 and "@" in parts[0]:
        name, _, alias = parts[0].rpartition("@")
        if name.strip() and alias.strip():
            return ModelsUri(name, alias=alias)
    raise ContractError(f"malformed models:/ URI {uri!r} (expected {_URI_FORMS})")


def resolve_uri(state: RegistryState, uri: str) -> VersionState:
    """The live version a ``models:/`` URI points at in this state."""
    ref = parse_models_uri(uri)
    model = get_model(state, ref.name)
    if ref.version is not None:
        return version_in(model, ref.version)
    if ref.alias is not None:
        return get_version_by_alias(state, ref.name, ref.alias)
    if ref.stage is not None:
        found = latest_versions(model, [ref.stage]).get(ref.stage)
        if found is None:
            raise NotFoundError(f"registered model {ref.name!r} has no version in stage {ref.stage!r}")
        return found
    if not model.versions:
        raise NotFoundError(f"registered model {ref.name!r} has no versions")
    return model.versions[max(model.versions)]
