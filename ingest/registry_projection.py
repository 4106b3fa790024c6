"""The registry's ClickHouse projections: per-field rows of models and versions, fed per event.

Two tables, in the shape of ``run_fields`` (one row per field, the newest
event wins through ``ReplacingMergeTree(version)``; read them with
``FINAL``)::

    registry_model_fields   (model_id, field, value, deleted, version)
    registry_version_fields (model_id, version_number, field, value, deleted, version)

Model fields: ``name``, ``description``, ``created_ms``, ``created_by``,
``updated_ms``, ``last_version``, ``deleted_ms`` (set once the model is
deleted), ``tag.<key>`` and ``alias.<alias>`` (value: the version number;
``deleted = 1`` once the tag or alias is removed). Version fields:
``source``, ``run_id``, ``run_link``, ``logged_model_id``, ``description``,
``stage``, ``created_ms``, ``created_by``, ``updated_ms``, ``deleted_ms``,
``tag.<key>``. Numbers and times (ms since the epoch) are decimal strings;
an absent run id is ``""``.

``version`` is the first 64 bits of the event id (:func:`producer.ids.id_version`).
The registry service keeps one model's event ids strictly increasing even
across API processes with skewed clocks, so "newest event wins" follows
the model's own order.

:data:`ingest.rows.PROJECTORS` routes every registry event type to
:func:`project_registry_event`; :mod:`ingest.schema` lists the tables (so
``rebuild`` recomputes them) and their DDL (schema migration 2).
"""

from __future__ import annotations

from producer import registry_events as rev
from producer.events import Event
from producer.ids import id_version

from .batch import Batch

__all__ = ["MODEL_FIELDS", "VERSION_FIELDS", "REGISTRY_TABLES", "DDL", "project_registry_event"]

MODEL_FIELDS = "registry_model_fields"
VERSION_FIELDS = "registry_version_fields"
REGISTRY_TABLES = (MODEL_FIELDS, VERSION_FIELDS)

DDL = [
    f"""CREATE TABLE IF NOT EXISTS {MODEL_FIELDS} (
        model_id String, field String, value String, deleted UInt8, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (model_id, field)""",
    f"""CREATE TABLE IF NOT EXISTS {VERSION_FIELDS} (
        model_id String, version_number UInt32, field String, value String, deleted UInt8, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (model_id, version_number, field)""",
]


class _Rows:
    """Appends one event's rows to the batch's two registry tables."""

    __slots__ = ("model_id", "models", "v", "versions")

    def __init__(self, batch: Batch, event: Event) -> None:
        self.models = batch.table(MODEL_FIELDS, "model_id", "field", "value", "deleted", "version")
        self.versions = batch.table(VERSION_FIELDS, "model_id", "version_number", "field", "value", "deleted",
                                    "version")
        self.model_id = event.entity
        self.v = id_version(event.id)

    def model(self, **fields: object) -> None:
        for name, value in fields.items():
            self.model_key(name, value)

    def model_key(self, field: str, value: object, *, deleted: int = 0) -> None:
        self.models.extend(model_id=self.model_id, field=field, value=_str(value), deleted=deleted, version=self.v)

    def version(self, number: int, **fields: object) -> None:
        for name, value in fields.items():
            self.version_key(number, name, value)

    def version_key(self, number: int, field: str, value: object, *, deleted: int = 0) -> None:
        self.versions.extend(model_id=self.model_id, version_number=number, field=field, value=_str(value),
                             deleted=deleted, version=self.v)


def _str(value: object) -> str:
    return "" if value is None else str(value)


def project_registry_event(e: Event, batch: Batch) -> None:
    """Append the rows ``e`` writes to the registry tables of ``batch``."""
    b, ts, rows = e.body, e.ts_ms, _Rows(batch, e)
    if isinstance(b, rev.RegisteredModelCreated):
        rows.model(name=b.name, description=b.description, created_ms=ts, created_by=e.actor, updated_ms=ts,
                   last_version=0)
        for key, value in b.tags:
            rows.model_key(f"tag.{key}", value)
    elif isinstance(b, rev.RegisteredModelRenamed):
        rows.model(name=b.new_name, updated_ms=ts)
    elif isinstance(b, rev.RegisteredModelDescriptionUpdated):
        rows.model(description=b.description, updated_ms=ts)
    elif isinstance(b, rev.RegisteredModelTagSet):  # tags and aliases leave updated_ms, as in MLflow
        rows.model_key(f"tag.{b.key}", b.value)
    elif isinstance(b, rev.RegisteredModelTagDeleted):
        rows.model_key(f"tag.{b.key}", "", deleted=1)
    elif isinstance(b, rev.RegisteredModelDeleted):
        rows.model(deleted_ms=ts, updated_ms=ts)
    elif isinstance(b, rev.RegisteredModelAliasSet):
        rows.model_key(f"alias.{b.alias}", b.version)
    elif isinstance(b, rev.RegisteredModelAliasDeleted):
        rows.model_key(f"alias.{b.alias}", "", deleted=1)
    elif isinstance(b, rev.ModelVersionCreated):
        rows.version(b.version, source=b.source, run_id=b.run_id, run_link=b.run_link, logged_model_id=b.model_id,
                     description=b.description, stage="None", created_ms=ts, created_by=e.actor, updated_ms=ts)
        for key, value in b.tags:
            rows.version_key(b.version, f"tag.{key}", value)
        rows.model(last_version=b.version, updated_ms=ts)
    else:
        _project_version_change(e, rows)


def _project_version_change(e: Event, rows: _Rows) -> None:
    """Version changes; ``updated_ms`` as MLflow keeps it: a description bumps the version only, a tag
    neither the version nor the model, a stage change or a delete both."""
    b, ts = e.body, e.ts_ms
    if isinstance(b, rev.ModelVersionDescriptionUpdated):
        rows.version(b.version, description=b.description, updated_ms=ts)
        return
    if isinstance(b, rev.ModelVersionTagSet):
        rows.version_key(b.version, f"tag.{b.key}", b.value)
        return
    if isinstance(b, rev.ModelVersionTagDeleted):
        rows.version_key(b.version, f"tag.{b.key}", "", deleted=1)
        return
    if isinstance(b, rev.ModelVersionStageTransitioned):
        rows.version(b.version, stage=b.to_stage, updated_ms=ts)
    elif isinstance(b, rev.ModelVersionDeleted):
        rows.version(b.version, deleted_ms=ts, updated_ms=ts)
    else:
        return
    rows.model(updated_ms=ts)

