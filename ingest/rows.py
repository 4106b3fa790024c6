"""Pure projection of events into table rows (columnar), no I/O.

``project_rows(events)`` returns, per table, a dict of column name -> list of
values, ready for a columnar (Native) insert. It is the single place that says
what each event type means for the projections; live ingest and ``rebuild``
both go through it, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from producer import events as ev
from producer.codec import event_to_wire
from producer.events import Event

__all__ = ["TableRows", "Batch", "project_rows", "event_version", "EXTRA_PROJECTORS"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def event_version(event_id: str) -> int:
    """The first 64 bits of a UUIDv7 id: ms timestamp and per-process counter, monotonic per source."""
    try:
        return int(event_id[:16], 16)
    except ValueError:
        return 0


@dataclass(slots=True)
class TableRows:
    """Columnar rows for one table: ``columns[name]`` are parallel lists."""

    columns: dict[str, list[Any]]

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), ()))

    def extend(self, **values: Any) -> None:
        for name, v in values.items():
            self.columns[name].append(v)


def _table(*names: str) -> TableRows:
    return TableRows({n: [] for n in names})


@dataclass(slots=True)
class Batch:
    """Everything one group of events writes, table by table."""

    events: TableRows = field(default_factory=lambda: _table(
        "event_id", "schema_version", "type", "entity", "source_host", "source_pid",
        "source_rank", "seq", "ts", "actor", "body"))
    metric_points: TableRows = field(default_factory=lambda: _table(
        "run_id", "key", "step", "timestamp", "value", "rank"))
    run_fields: TableRows = field(default_factory=lambda: _table("run_id", "field", "value", "version"))
    run_params: TableRows = field(default_factory=lambda: _table("run_id", "key", "value", "version"))
    run_tags: TableRows = field(default_factory=lambda: _table("run_id", "key", "value", "deleted", "version"))
    experiment_fields: TableRows = field(default_factory=lambda: _table("experiment_id", "field", "value", "version"))
    experiment_tags: TableRows = field(default_factory=lambda: _table("experiment_id", "key", "value", "deleted", "version"))
    extra: dict[str, TableRows] = field(default_factory=dict)

    def tables(self) -> Iterable[tuple[str, TableRows]]:
        """Non-empty tables in insert order: the log first, then projections."""
        for name in ("events", "metric_points", "run_fields", "run_params", "run_tags",
                     "experiment_fields", "experiment_tags"):
            rows = getattr(self, name)
            if len(rows):
                yield name, rows
        for name, rows in self.extra.items():
            if len(rows):
                yield name, rows


#: Other domains (the registry) add projectors for their own event types here:
#: type name -> function(event, batch) that appends rows to ``batch.extra``.
EXTRA_PROJECTORS: dict[str, Callable[[Event, Batch], None]] = {}


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _run_fields(b: Batch, run_id: str, version: int, **fields: object) -> None:
    for name, value in fields.items():
        b.run_fields.extend(run_id=run_id, field=name, value="" if value is None else str(value), version=version)


def _exp_fields(b: Batch, exp_id: str, version: int, **fields: object) -> None:
    for name, value in fields.items():
        b.experiment_fields.extend(experiment_id=exp_id, field=name, value=str(value), version=version)


def project_rows(events: Iterable[Event], *, include_log: bool = True) -> Batch:
    """Rows for every table that these events touch. ``include_log=False`` for rebuild."""
    b = Batch()
    for e in events:
        if include_log:
            wire = event_to_wire(e)
            b.events.extend(
                event_id=e.id, schema_version=e.schema_version, type=e.type, entity=e.entity,
                source_host=e.source.host, source_pid=e.source.pid, source_rank=e.source.rank,
                seq=e.seq, ts=ms_to_dt(e.ts_ms), actor=e.actor, body=orjson.dumps(wire["body"]).decode(),
            )
        _project_one(e, b)
    return b


def _project_one(e: Event, b: Batch) -> None:
    body, v, rid = e.body, event_version(e.id), e.entity
    if isinstance(body, ev.MetricsLogged):
        n = len(body.keys)
        mp = b.metric_points.columns
        mp["run_id"].extend([rid] * n)
        mp["key"].extend(body.keys)
        mp["step"].extend(body.steps)
        mp["timestamp"].extend(body.timestamps_ms)  # ms ints; the writer converts the column at once
        mp["value"].extend(body.values)
        mp["rank"].extend([e.source.rank] * n)
    elif isinstance(body, ev.RunCreated):
        _run_fields(b, rid, v, experiment_id=body.experiment_id, name=body.name, status=body.status,
                    start_time=body.start_time_ms, user=body.user, parent_run_id=body.parent_run_id or "",
                    lifecycle="active")
        for k, val in body.tags:
            b.run_tags.extend(run_id=rid, key=k, value=val, deleted=0, version=v)
    elif isinstance(body, ev.RunStatusChanged):
        _run_fields(b, rid, v, status=body.status)
    elif isinstance(body, ev.RunEnded):
        _run_fields(b, rid, v, status=body.status, end_time=body.end_time_ms)
    elif isinstance(body, ev.RunRenamed):
        _run_fields(b, rid, v, name=body.name)
        b.run_tags.extend(run_id=rid, key="mlflow.runName", value=body.name, deleted=0, version=v)
    elif isinstance(body, ev.RunDeleted):
        _run_fields(b, rid, v, lifecycle="deleted", deleted_time=e.ts_ms)
    elif isinstance(body, ev.RunRestored):
        _run_fields(b, rid, v, lifecycle="active")
    elif isinstance(body, ev.ParamsLogged):
        for k, val in body.params:
            b.run_params.extend(run_id=rid, key=k, value=val, version=v)
    elif isinstance(body, ev.TagsSet):
        for k, val in body.tags:
            b.run_tags.extend(run_id=rid, key=k, value=val, deleted=0, version=v)
    elif isinstance(body, ev.TagsDeleted):
        for k in body.keys:
            b.run_tags.extend(run_id=rid, key=k, value="", deleted=1, version=v)
    elif isinstance(body, ev.ExperimentCreated):
        _exp_fields(b, rid, v, name=body.name, artifact_location=body.artifact_location,
                    lifecycle="active", creation_time=e.ts_ms, last_update_time=e.ts_ms)
        for k, val in body.tags:
            b.experiment_tags.extend(experiment_id=rid, key=k, value=val, deleted=0, version=v)
    elif isinstance(body, ev.ExperimentRenamed):
        _exp_fields(b, rid, v, name=body.name, last_update_time=e.ts_ms)
    elif isinstance(body, ev.ExperimentDeleted):
        _exp_fields(b, rid, v, lifecycle="deleted", last_update_time=e.ts_ms)
    elif isinstance(body, ev.ExperimentRestored):
        _exp_fields(b, rid, v, lifecycle="active", last_update_time=e.ts_ms)
    elif isinstance(body, ev.ExperimentTagSet):
        b.experiment_tags.extend(experiment_id=rid, key=body.key, value=body.value, deleted=0, version=v)
    else:
        projector = EXTRA_PROJECTORS.get(e.type)
        if projector is not None:
            projector(e, b)
