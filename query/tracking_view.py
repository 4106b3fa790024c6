"""The tracking state as ClickHouse's projections hold it: a :class:`tracking.TrackingView` over the tables.

What ``decide`` reads when the server does not hold the state in memory
(distributed mode, where other processes write). One round trip per lookup:
a run's attributes, params and tags come back in one ``UNION ALL``.
"""

from __future__ import annotations

from typing import Any

from ingest.sink import Store
from tracking import Experiment, Run

__all__ = ["ClickHouseTrackingView", "run_from_rows", "experiment_from_rows"]

_RUN_SQL = (
    "SELECT 'f', field, value, 0 FROM run_fields FINAL WHERE run_id = {id:String} "
    "UNION ALL SELECT 'p', key, value, 0 FROM run_params FINAL WHERE run_id = {id:String} "
    "UNION ALL SELECT 't', key, value, deleted FROM run_tags FINAL WHERE run_id = {id:String}"
)
_EXPERIMENT_SQL = (
    "SELECT 'f', field, value, 0 FROM experiment_fields FINAL WHERE experiment_id = {id:String} "
    "UNION ALL SELECT 't', key, value, deleted FROM experiment_tags FINAL WHERE experiment_id = {id:String}"
)


def _int(v: str) -> int | None:
    return int(v) if v else None


def run_from_rows(run_id: str, rows: list[tuple[Any, ...]]) -> Run | None:
    """A run from ``(kind, key, value, deleted)`` rows of its fields ('f'), params ('p') and tags ('t')."""
    run = Run(run_id)
    for kind, key, value, deleted in rows:
        if kind == "p":
            run.params[key] = value
        elif kind == "t":
            if not deleted:
                run.tags[key] = value
        elif key == "experiment_id":
            run.experiment_id = value
        elif key == "name":
            run.name = value
        elif key == "status":
            run.status = value
        elif key == "start_time":
            run.start_time = _int(value)
        elif key == "end_time":
            run.end_time = _int(value)
        elif key == "user":
            run.user = value
        elif key == "parent_run_id":
            run.parent_run_id = value or None
        elif key == "lifecycle":
            run.lifecycle_stage = value or "active"
        elif key == "deleted_time":
            run.deleted_time = _int(value)
    return run if run.exists else None


def experiment_from_rows(experiment_id: str, rows: list[tuple[Any, ...]]) -> Experiment | None:
    exp = Experiment(experiment_id)
    for kind, key, value, deleted in rows:
        if kind == "t":
            if not deleted:
                exp.tags[key] = value
        elif key == "name":
            exp.name = value
        elif key == "artifact_location":
            exp.artifact_location = value
        elif key == "lifecycle":
            exp.lifecycle_stage = value or "active"
        elif key == "creation_time":
            exp.creation_time = int(value or 0)
        elif key == "last_update_time":
            exp.last_update_time = int(value or 0)
    return exp if exp.name else None


class ClickHouseTrackingView:
    """:class:`tracking.TrackingView` over the projections (each call reads ClickHouse)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def experiment(self, experiment_id: str) -> Experiment | None:
        return experiment_from_rows(experiment_id, self.store.query_rows(_EXPERIMENT_SQL, {"id": experiment_id}))

    def experiment_by_name(self, name: str) -> Experiment | None:
        rows = self.store.query_rows(
            "SELECT experiment_id FROM experiment_fields FINAL WHERE field = 'name' AND value = {n:String}",
            {"n": name})
        return self.experiment(str(rows[0][0])) if rows else None

    def run(self, run_id: str) -> Run | None:
        return run_from_rows(run_id, self.store.query_rows(_RUN_SQL, {"id": run_id}))

    def run_ids(self, experiment_id: str) -> list[str]:
        return [str(r[0]) for r in self.store.query_rows(
            "SELECT run_id FROM run_fields FINAL WHERE field = 'experiment_id' AND value = {e:String}",
            {"e": experiment_id})]
