"""The append-time check: events that would contradict recorded state (pure).

``decide`` checks a command against the state a server *read*; events from
producers (which decide nothing) and commands racing each other reach the
log's single writer, which runs this check against the state it *holds* just
before appending — the serialisation point for the two rules below.

Params are immutable per run: a second, *different* value for a (run, key) is
a conflict; the same value again is a harmless re-delivery. An experiment name
belongs to one experiment id. The check is a pure function over the batch and
a snapshot of recorded state, so it is tested without an engine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

from producer import events as ev
from producer.events import Event

from ._decide import param_conflicts

__all__ = ["Conflict", "check_conflicts", "param_runs", "experiment_names", "experiment_ids"]


class Conflict(NamedTuple):
    event: Event
    reason: str
    kind: str = ""
    """Which rule refused it: ``param`` (a param re-logged with another value), ``name`` (an experiment name
    or id taken), ``sequence`` (a registry event out of order)."""


def param_runs(events: Iterable[Event]) -> set[str]:
    """Run ids whose recorded params the check needs."""
    return {e.entity for e in events if isinstance(e.body, ev.ParamsLogged)}


def experiment_names(events: Iterable[Event]) -> set[str]:
    """Experiment names whose recorded owner the check needs."""
    return {e.body.name for e in events if isinstance(e.body, (ev.ExperimentCreated, ev.ExperimentRenamed))}


def experiment_ids(events: Iterable[Event]) -> set[str]:
    """Experiment ids that ``experiment_created`` events would create."""
    return {e.entity for e in events if isinstance(e.body, ev.ExperimentCreated)}


def check_conflicts(
    events: list[Event],
    params: Mapping[tuple[str, str], str],
    experiment_ids_by_name: Mapping[str, str],
    existing_experiments: Mapping[str, str] | None = None,
) -> tuple[list[Event], list[Conflict]]:
    """Split ``events`` into accepted and conflicting, in order; earlier events win.

    ``existing_experiments`` maps id -> current name. ``experiment_created`` is an
    idempotent "ensure": for an id that already exists under the same name it is
    dropped (neither accepted nor refused), so re-creating never resets the
    experiment; under another name it is a conflict.
    """
    seen_params = dict(params)
    names = dict(experiment_ids_by_name)
    existing = dict(existing_experiments or {})
    ok: list[Event] = []
    bad: list[Conflict] = []
    for e in events:
        body = e.body
        if isinstance(body, ev.ParamsLogged):
            recorded = {k: seen_params[(e.entity, k)] for k, _ in body.params if (e.entity, k) in seen_params}
            clash = param_conflicts(e.entity, recorded, body.params)
            if clash:
                bad.append(Conflict(e, clash, "param"))
                continue
            for k, v in body.params:
                seen_params[(e.entity, k)] = v
        elif isinstance(body, ev.ExperimentCreated) and e.entity in existing:
            if existing[e.entity] != body.name:
                bad.append(Conflict(e, f"experiment id {e.entity} already exists with name {existing[e.entity]!r}",
                                    "name"))
            continue
        elif isinstance(body, (ev.ExperimentCreated, ev.ExperimentRenamed)):
            owner = names.get(body.name)
            if owner is not None and owner != e.entity:
                bad.append(Conflict(e, f"experiment name {body.name!r} is already used by experiment {owner}", "name"))
                continue
            names[body.name] = e.entity
            if isinstance(body, ev.ExperimentCreated):
                existing[e.entity] = body.name
        ok.append(e)
    return ok, bad
