"""A run's state as a pure fold of its events — the same rules ClickHouse merges by.

``fold_runs(events)`` pushes the events through :func:`ingest.rows.project_rows`
(the projection live ingest uses) and merges the rows as the tables'
ReplacingMergeTree engines do: per (run, field) the highest ``version`` wins;
params keep one value; a tag's newest row wins and a deleted tag disappears.
So ``as_of`` reads, rebuild and live ingest share one definition of meaning.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ingest.rows import project_rows
from producer.events import Event

__all__ = ["RunState", "fold_runs", "run_state_dict"]


@dataclass(slots=True)
class RunState:
    run_id: str
    fields: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


def fold_runs(events: Iterable[Event]) -> dict[str, RunState]:
    """Fold (non-metric) run events into run states keyed by run id."""
    batch = project_rows((e for e in events if e.type != "metrics_logged"), include_log=False)
    fields: dict[tuple[str, str], tuple[int, str]] = {}
    c = batch.run_fields.columns
    for run_id, name, value, version in zip(c["run_id"], c["field"], c["value"], c["version"]):
        cur = fields.get((run_id, name))
        if cur is None or version >= cur[0]:
            fields[(run_id, name)] = (version, value)
    tags: dict[tuple[str, str], tuple[int, str, int]] = {}
    c = batch.run_tags.columns
    for run_id, key, value, deleted, version in zip(c["run_id"], c["key"], c["value"], c["deleted"], c["version"]):
        seen = tags.get((run_id, key))
        if seen is None or version >= seen[0]:
            tags[(run_id, key)] = (version, value, deleted)
    out: dict[str, RunState] = {}

    def state(rid: str) -> RunState:
        return out.setdefault(rid, RunState(rid))

    for (rid, name), (_, value) in fields.items():
        state(rid).fields[name] = value
    c = batch.run_params.columns
    for rid, key, value in zip(c["run_id"], c["key"], c["value"]):
        state(rid).params.setdefault(key, value)
    for (rid, key), (_, value, deleted) in tags.items():
        if not deleted:
            state(rid).tags[key] = value
    return {rid: s for rid, s in out.items() if s.fields.get("experiment_id")}


def _int_or_none(v: str | None) -> int | None:
    return int(v) if v else None


def run_state_dict(s: RunState, metrics: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The JSON shape of a run that every API returns."""
    f = s.fields
    return {
        "run_id": s.run_id,
        "experiment_id": f.get("experiment_id", ""),
        "name": f.get("name", ""),
        "status": f.get("status", ""),
        "start_time": _int_or_none(f.get("start_time")),
        "end_time": _int_or_none(f.get("end_time")),
        "user": f.get("user", ""),
        "parent_run_id": f.get("parent_run_id") or None,
        "lifecycle_stage": f.get("lifecycle") or "active",
        "artifact_uri": f.get("artifact_uri", ""),
        "params": dict(sorted(s.params.items())),
        "tags": dict(sorted(s.tags.items())),
        "metrics": metrics,
    }
