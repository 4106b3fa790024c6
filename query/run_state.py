"""A run's JSON shape, and run state as of a time: the tracking domain's fold (:func:`tracking.fold`).

The fold merges events by version exactly as the ClickHouse projections merge
their rows, so ``as_of`` reads, rebuild and live ingest share one definition
of meaning (``tests/unit/test_tracking_fold.py`` checks the fold against the
projections).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from producer.events import Event
from tracking import Run, fold

__all__ = ["fold_runs", "run_state_dict"]


def fold_runs(events: Iterable[Event]) -> dict[str, Run]:
    """Fold (non-metric) run events into runs keyed by id; runs never created are left out."""
    return {rid: r for rid, r in fold(events).runs.items() if r.exists}


def run_state_dict(run: Run, metrics: dict[str, dict[str, Any]], artifact_uri: str = "") -> dict[str, Any]:
    """The JSON shape of a run that every API returns."""
    return {
        "run_id": run.run_id,
        "experiment_id": run.experiment_id,
        "name": run.name,
        "status": run.status,
        "start_time": run.start_time,
        "end_time": run.end_time,
        "user": run.user,
        "parent_run_id": run.parent_run_id or None,
        "lifecycle_stage": run.lifecycle_stage or "active",
        "artifact_uri": artifact_uri,
        "params": dict(sorted(run.params.items())),
        "tags": dict(sorted(run.tags.items())),
        "metrics": metrics,
    }
