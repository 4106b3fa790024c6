"""Which events of a ``POST /api/v1/ingest`` batch the caller may append (the gateway's part of the rules).

* Auth events never enter through the gateway, auth on or off (users and grants change only through the
  auth API, so nobody can plant an admin before auth is turned on).
* With auth on: tracking events need EDIT on their experiment (a run's experiment comes from its
  ``run_created`` in the same batch, else from the store), deleting or restoring a run or an experiment
  MANAGE; ``experiment_created`` needs a login only (the creator is granted MANAGE); registry and
  logged-model events go through their own APIs (admins may still send them raw). The envelope's
  ``actor`` becomes the authenticated user.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from auth import Action, Principal
from producer import events as ev
from producer.auth_events import AUTH_EVENT_TYPES
from producer.events import Event
from producer.mlflow_events import RunInputsLogged, RunOutputsLogged

from .service import AuthService

__all__ = ["screen", "AUTH_REFUSAL"]

AUTH_REFUSAL = "auth events are written by the auth API only (/api/2.0/mlflow/users/..., /api/v1/auth/...)"

_RUN_DELETES = (ev.RunDeleted.TYPE, ev.RunRestored.TYPE)
_EXPERIMENT_DELETES = (ev.ExperimentDeleted.TYPE, ev.ExperimentRestored.TYPE)
_RUN_TYPES = frozenset({ev.RunCreated.TYPE, ev.RunStatusChanged.TYPE, ev.RunEnded.TYPE, ev.RunRenamed.TYPE,
                        ev.RunDeleted.TYPE, ev.RunRestored.TYPE, ev.ParamsLogged.TYPE, ev.TagsSet.TYPE,
                        ev.TagsDeleted.TYPE, ev.MetricsLogged.TYPE, RunInputsLogged.TYPE, RunOutputsLogged.TYPE})
_EXPERIMENT_TYPES = frozenset({ev.ExperimentRenamed.TYPE, ev.ExperimentDeleted.TYPE, ev.ExperimentRestored.TYPE,
                               ev.ExperimentTagSet.TYPE, ev.ExperimentTagDeleted.TYPE})


def screen(events: Sequence[Event], service: AuthService | None,
           principal: Principal | None) -> tuple[list[Event], list[tuple[int, str]]]:
    """(events to append — actor set to the caller when auth is on, [(index in ``events``, reason)] refused)."""
    accepted: list[Event] = []
    refused: list[tuple[int, str]] = []
    created_in_batch = {e.entity: e.body.experiment_id for e in events if isinstance(e.body, ev.RunCreated)}
    for i, e in enumerate(events):
        if e.type in AUTH_EVENT_TYPES:
            refused.append((i, AUTH_REFUSAL))
            continue
        if service is None or principal is None:
            accepted.append(e)
            continue
        reason = _denied(e, service, principal, created_in_batch)
        if reason:
            refused.append((i, reason))
        else:
            accepted.append(replace(e, actor=principal.username))
    return accepted, refused


def _denied(e: Event, service: AuthService, principal: Principal, created_in_batch: dict[str, str]) -> str:
    if principal.is_admin or e.type == ev.ExperimentCreated.TYPE:
        return ""
    action: Action = "update"
    if e.type in _RUN_TYPES:
        if e.type in _RUN_DELETES:
            action = "delete"
        experiment = created_in_batch.get(e.entity) or service.experiment_of_run(e.entity)
        if experiment is None:
            return f"permission denied: run {e.entity} is unknown (send its run_created first)"
    elif e.type in _EXPERIMENT_TYPES:
        action = "delete" if e.type in _EXPERIMENT_DELETES else "update"
        experiment = e.entity
    else:
        return f"permission denied: {e.type} events go through their own API (or an admin)"
    if service.may(principal, "experiment", experiment, action):
        return ""
    return f"permission denied: {principal.username} may not {action} experiment {experiment}"
