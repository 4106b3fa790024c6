"""Projections of MLflow-only facts that reads must filter on: run dataset inputs and logged-model metrics.

Two tables (schema migration 3, :mod:`ingest.schema`)::

    run_inputs    (run_id, dataset_name, dataset_digest, context, version)
    model_metrics (model_id, run_id, key, dataset_name, dataset_digest, step, timestamp, value)

``run_inputs`` serves the ``datasets.name`` / ``datasets.digest`` /
``datasets.context`` filters of run search (the full inputs are still folded
from the log on read). ``model_metrics`` holds points logged with a
``model_id`` (``mlflow.models.evaluate``, ``log_metric(model_id=...)``): what
a logged model's ``metrics`` show. Both are keyed by natural key, so a
redelivered event changes nothing.
"""

from __future__ import annotations

import orjson

from producer import events as ev
from producer.events import Event
from producer.ids import id_version
from producer.mlflow_events import RunInputsLogged

from .batch import Batch

__all__ = ["RUN_INPUTS", "MODEL_METRICS", "MLFLOW_TABLES", "DDL", "project_run_inputs", "project_model_metrics"]

RUN_INPUTS = "run_inputs"
MODEL_METRICS = "model_metrics"
MLFLOW_TABLES = (RUN_INPUTS, MODEL_METRICS)

DDL = [
    f"""CREATE TABLE IF NOT EXISTS {RUN_INPUTS} (
        run_id String, dataset_name String, dataset_digest String, context String, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (run_id, dataset_name, dataset_digest)""",
    f"""CREATE TABLE IF NOT EXISTS {MODEL_METRICS} (
        model_id String, run_id String, key String, dataset_name String, dataset_digest String,
        step Int64, timestamp DateTime64(3, 'UTC'), value Float64
    ) ENGINE = ReplacingMergeTree(timestamp)
    ORDER BY (model_id, key, run_id, dataset_name, dataset_digest, step)""",
]


def _context(entry: dict[str, object]) -> str:
    for tag in entry.get("tags") or []:  # type: ignore[attr-defined]
        if isinstance(tag, dict) and tag.get("key") == "mlflow.data.context":
            return str(tag.get("value") or "")
    return ""


def project_run_inputs(e: Event, b: Batch) -> None:
    body = e.body
    assert isinstance(body, RunInputsLogged)
    rows = b.table(RUN_INPUTS, "run_id", "dataset_name", "dataset_digest", "context", "version")
    v = id_version(e.id)
    for raw in body.datasets:
        entry = orjson.loads(raw)
        ds = entry.get("dataset") or {}
        rows.extend(run_id=e.entity, dataset_name=str(ds.get("name", "")), dataset_digest=str(ds.get("digest", "")),
                    context=_context(entry), version=v)


def project_model_metrics(e: Event, b: Batch) -> None:
    body = e.body
    assert isinstance(body, ev.MetricsLogged) and body.model_id
    n = len(body.keys)
    mm = b.table(MODEL_METRICS, "model_id", "run_id", "key", "dataset_name", "dataset_digest", "step", "timestamp",
                 "value").columns
    mm["model_id"].extend([body.model_id] * n)
    mm["run_id"].extend([e.entity] * n)
    mm["key"].extend(body.keys)
    mm["dataset_name"].extend([body.dataset_name] * n)
    mm["dataset_digest"].extend([body.dataset_digest] * n)
    mm["step"].extend(body.steps)
    mm["timestamp"].extend(body.timestamps_ms)
    mm["value"].extend(body.values)
