"""Pure projection of events into table rows (columnar), no I/O.

``project_rows(events)`` returns a :class:`Batch`: per table, column name ->
list of values, ready for a columnar (Native) insert. It is the single place
that says what each event type means for the projections; live ingest and
``rebuild`` both go through it, so they cannot disagree.

:data:`PROJECTORS` lists, explicitly, the projector of every event type that
has tables: the tracking types here, the registry's
(:mod:`ingest.registry_projection`) and MLflow's run inputs and model metrics
(:mod:`ingest.mlflow_projection`). Types without a projector (logged models)
live in the log only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import orjson

from producer import events as ev
from producer.codec import event_to_wire
from producer.events import Event
from producer.ids import id_version
from producer.mlflow_events import RunInputsLogged
from producer.registry_events import REGISTRY_EVENT_TYPES

from . import mlflow_projection, registry_projection
from .batch import Batch, TableRows

__all__ = ["project_rows", "ms_to_dt", "PROJECTORS", "EVENT_COLUMNS_OUT", "Projector"]

Projector = Callable[[Event, Batch], None]

#: Columns of the ``events`` table that ``project_rows`` fills (``ingested_at`` is the server's default).
EVENT_COLUMNS_OUT = ("event_id", "schema_version", "type", "entity", "source_host", "source_pid", "source_rank",
                     "seq", "ts", "actor", "body")


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def _run_fields(b: Batch) -> TableRows:
    return b.table("run_fields", "run_id", "field", "value", "version")


def _run_tags(b: Batch) -> TableRows:
    return b.table("run_tags", "run_id", "key", "value", "deleted", "version")


def _exp_tags(b: Batch) -> TableRows:
    return b.table("experiment_tags", "experiment_id", "key", "value", "deleted", "version")


def _set_run_fields(b: Batch, run_id: str, version: int, **fields: object) -> None:
    rows = _run_fields(b)
    for name, value in fields.items():
        rows.extend(run_id=run_id, field=name, value="" if value is None else str(value), version=version)


def _set_exp_fields(b: Batch, exp_id: str, version: int, **fields: object) -> None:
    rows = b.table("experiment_fields", "experiment_id", "field", "value", "version")
    for name, value in fields.items():
        rows.extend(experiment_id=exp_id, field=name, value=str(value), version=version)


def _metrics(e: Event, b: Batch) -> None:
    body = e.body
    assert isinstance(body, ev.MetricsLogged)
    n = len(body.keys)
    mp = b.table("metric_points", "run_id", "key", "step", "timestamp", "value", "rank").columns
    mp["run_id"].extend([e.entity] * n)
    mp["key"].extend(body.keys)
    mp["step"].extend(body.steps)
    mp["timestamp"].extend(body.timestamps_ms)  # ms ints: DateTime64(3) ticks
    mp["value"].extend(body.values)
    mp["rank"].extend([e.source.rank] * n)
    if body.model_id:
        mlflow_projection.project_model_metrics(e, b)


def _run(e: Event, b: Batch) -> None:
    body, v, rid = e.body, id_version(e.id), e.entity
    if isinstance(body, ev.RunCreated):
        _set_run_fields(b, rid, v, experiment_id=body.experiment_id, name=body.name, status=body.status,
                        start_time=body.start_time_ms, user=body.user, parent_run_id=body.parent_run_id or "",
                        lifecycle="active")
        for k, val in body.tags:
            _run_tags(b).extend(run_id=rid, key=k, value=val, deleted=0, version=v)
    elif isinstance(body, ev.RunStatusChanged):
        _set_run_fields(b, rid, v, status=body.status)
    elif isinstance(body, ev.RunEnded):
        _set_run_fields(b, rid, v, status=body.status, end_time=body.end_time_ms)
    elif isinstance(body, ev.RunRenamed):
        _set_run_fields(b, rid, v, name=body.name)
        _run_tags(b).extend(run_id=rid, key="mlflow.runName", value=body.name, deleted=0, version=v)
    elif isinstance(body, ev.RunDeleted):
        _set_run_fields(b, rid, v, lifecycle="deleted", deleted_time=e.ts_ms)
    elif isinstance(body, ev.RunRestored):
        _set_run_fields(b, rid, v, lifecycle="active")
    elif isinstance(body, ev.ParamsLogged):
        params = b.table("run_params", "run_id", "key", "value", "version")
        for k, val in body.params:
            params.extend(run_id=rid, key=k, value=val, version=v)
    elif isinstance(body, ev.TagsSet):
        for k, val in body.tags:
            _run_tags(b).extend(run_id=rid, key=k, value=val, deleted=0, version=v)
    elif isinstance(body, ev.TagsDeleted):
        for k in body.keys:
            _run_tags(b).extend(run_id=rid, key=k, value="", deleted=1, version=v)


def _experiment(e: Event, b: Batch) -> None:
    body, v, eid = e.body, id_version(e.id), e.entity
    if isinstance(body, ev.ExperimentCreated):
        _set_exp_fields(b, eid, v, name=body.name, artifact_location=body.artifact_location,
                        lifecycle="active", creation_time=e.ts_ms, last_update_time=e.ts_ms)
        for k, val in body.tags:
            _exp_tags(b).extend(experiment_id=eid, key=k, value=val, deleted=0, version=v)
    elif isinstance(body, ev.ExperimentRenamed):
        _set_exp_fields(b, eid, v, name=body.name, last_update_time=e.ts_ms)
    elif isinstance(body, ev.ExperimentDeleted):
        _set_exp_fields(b, eid, v, lifecycle="deleted", last_update_time=e.ts_ms)
    elif isinstance(body, ev.ExperimentRestored):
        _set_exp_fields(b, eid, v, lifecycle="active", last_update_time=e.ts_ms)
    elif isinstance(body, ev.ExperimentTagSet):
        _exp_tags(b).extend(experiment_id=eid, key=body.key, value=body.value, deleted=0, version=v)
    elif isinstance(body, ev.ExperimentTagDeleted):
        _exp_tags(b).extend(experiment_id=eid, key=body.key, value="", deleted=1, version=v)


#: Event type -> the function that appends its projection rows. Types not listed have no tables.
PROJECTORS: dict[str, Projector] = {
    ev.MetricsLogged.TYPE: _metrics,
    **{cls.TYPE: _run for cls in (ev.RunCreated, ev.RunStatusChanged, ev.RunEnded, ev.RunRenamed, ev.RunDeleted,
                                  ev.RunRestored, ev.ParamsLogged, ev.TagsSet, ev.TagsDeleted)},
    **{cls.TYPE: _experiment for cls in (ev.ExperimentCreated, ev.ExperimentRenamed, ev.ExperimentDeleted,
                                         ev.ExperimentRestored, ev.ExperimentTagSet, ev.ExperimentTagDeleted)},
    **dict.fromkeys(REGISTRY_EVENT_TYPES, registry_projection.project_registry_event),
    RunInputsLogged.TYPE: mlflow_projection.project_run_inputs,
}


def project_rows(events: Iterable[Event], *, include_log: bool = True) -> Batch:
    """Rows for every table that these events touch. ``include_log=False`` for rebuild."""
    b = Batch()
    log = b.table("events", *EVENT_COLUMNS_OUT) if include_log else None
    for e in events:
        if log is not None:
            wire = event_to_wire(e)
            log.extend(
                event_id=e.id, schema_version=e.schema_version, type=e.type, entity=e.entity,
                source_host=e.source.host, source_pid=e.source.pid, source_rank=e.source.rank,
                seq=e.seq, ts=ms_to_dt(e.ts_ms), actor=e.actor, body=orjson.dumps(wire["body"]).decode(),
            )
        projector = PROJECTORS.get(e.type)
        if projector is not None:
            projector(e, b)
    return b
