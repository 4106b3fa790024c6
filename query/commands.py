"""Executing tracking commands on the server: ``decide`` against a view of the state, mint, validate, append.

The one path every door takes (MLflow API, native API, the producer's
``POST /api/v1/experiments``)::

    events = execute(services, RenameExperiment(experiment_id="7", new_name="b"), actor=actor)

``decide`` raises the domain's errors (mapped to MLflow's codes by
:mod:`query.mlflow_api.errors`, to HTTP by :mod:`query.errors_http`); an
event the log writer refuses after all (a concurrent writer took the name,
logged the param first) is raised as the error of its kind.
"""

from __future__ import annotations

from collections.abc import Sequence

from producer.errors import AlreadyExistsError, ConflictError, InvalidStateError, ParamConflictError
from producer.events import Event
from tracking import Command, TrackingView, decide

from .read_model import ModelView
from .services import Services
from .tracking_view import ClickHouseTrackingView

__all__ = ["execute", "append_checked", "tracking_view"]


def tracking_view(services: Services) -> TrackingView:
    """The state ``decide`` reads: the in-memory read model in embedded mode (every acknowledged write is in
    it), else the projections (one small query per lookup)."""
    model = services.reads.model
    return ModelView(model) if model is not None else ClickHouseTrackingView(services.store)


def execute(services: Services, command: Command, *, actor: str = "", view: TrackingView | None = None) -> list[Event]:
    """Decide ``command``, append the events it causes (all or none), return them (``[]``: nothing to record)."""
    changes = decide(view or tracking_view(services), command, now_ms=services.clock_ms(),
                     artifact_root=services.settings.experiments_root)
    events = [services.event(ch.entity, ch.body, actor=actor) for ch in changes]
    if events:
        append_checked(services, events)
    return events


def append_checked(services: Services, events: Sequence[Event]) -> None:
    """Append; an event the writer refused raises the error of its kind with the writer's reason."""
    result = services.append(list(events))
    if not result.rejected:
        return
    refused = result.rejected[0]
    kind = getattr(refused, "kind", "")
    if kind == "name":
        raise AlreadyExistsError(refused.reason)
    if kind == "param":
        raise ParamConflictError(refused.reason)
    if kind == "sequence":
        raise InvalidStateError(refused.reason)
    raise ConflictError(refused.reason)
