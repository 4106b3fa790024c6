"""Lookups and appends every MLflow area shares: existing experiments and runs, appending with MLflow errors."""

from __future__ import annotations

from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from producer.events import Body, Event

from ..commands import append_checked
from ..filters import Clause
from ..services import Services
from .errors import invalid, not_found

__all__ = ["clause_holds", "experiment_or_404", "run_or_404", "active_run", "append_or_raise",
           "append_one"]


def experiment_or_404(services: Services, experiment_id: str) -> dict[str, Any]:
    """The experiment, or RESOURCE_DOES_NOT_EXIST; an id that is not a decimal number (every id here is, as
    in MLflow) is INVALID_PARAMETER_VALUE in MLflow's words."""
    if not experiment_id.isdecimal():
        raise invalid(f"Invalid experiment ID '{experiment_id}'. Experiment ID must be a valid integer.")
    found = services.reads.experiment(experiment_id)
    if found is None:
        raise not_found(f"No Experiment with id={experiment_id} exists")
    return found


def run_or_404(services: Services, run_id: str) -> dict[str, Any]:
    found = services.reads.run(run_id, counts=False)  # MLflow shows no counts: no ClickHouse query
    if found is None:
        raise not_found(f"Run '{run_id}' not found")
    return found


def active_run(services: Services, run_id: str) -> dict[str, Any]:
    """The run, which must exist and not be deleted (MLflow refuses writes to deleted runs)."""
    run = run_or_404(services, run_id)
    if run["lifecycle_stage"] != "active":
        raise invalid(f"The run {run_id} must be in the 'active' state. Current state is {run['lifecycle_stage']}.")
    return run


def append_or_raise(services: Services, events: Sequence[Event]) -> None:
    """Append; a refused event (immutable param, taken name, ...) becomes MLflow's error with the reason."""
    append_checked(services, events)


def append_one(services: Services, entity: str, body: Body, actor: str = "") -> Event:
    event = services.event(entity, body, actor=actor)
    append_or_raise(services, [event])
    return event


def clause_holds(value: Any, c: Clause) -> bool:
    """Whether ``value`` (None = absent) satisfies one filter clause; for searches done in Python
    (experiments, logged models: small sets) with the same grammar the run search runs in SQL."""
    if c.op == "IS NULL":
        return value is None
    if c.op == "IS NOT NULL":
        return value is not None
    if value is None:
        return False
    if c.op in ("IN", "NOT IN"):
        assert isinstance(c.value, tuple)
        return (str(value) in c.value) == (c.op == "IN")
    if c.op in ("LIKE", "ILIKE", "NOT LIKE", "NOT ILIKE"):
        pattern = str(c.value).replace("[", "[[]").replace("*", "[*]").replace("?", "[?]")
        pattern = pattern.replace("%", "*").replace("_", "?")
        text = str(value)
        if "ILIKE" in c.op:
            pattern, text = pattern.lower(), text.lower()
        return fnmatchcase(text, pattern) != c.op.startswith("NOT")
    target: Any = c.value
    if isinstance(target, float):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return False
    else:
        value = str(value)
    return bool({"=": value == target, "!=": value != target, "<": value < target, "<=": value <= target,
                 ">": value > target, ">=": value >= target}[c.op])
