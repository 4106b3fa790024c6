"""Reads of MLflow-only facts folded from the event log: run inputs/outputs, logged models.

These events are few (a handful per run or model) and have no projection
table; one query over ``events`` (ordered by entity, event id) fetches them
for a page of runs or models.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ingest.sink import Store
from producer.mlflow_events import MLFLOW_EVENT_TYPES

__all__ = ["LogReads"]

_RUN_TYPES = ["run_inputs_logged", "run_outputs_logged"]
_MODEL_TYPES = [t for t in MLFLOW_EVENT_TYPES if t.startswith("logged_model_")]


class LogReads:
    def __init__(self, store: Store) -> None:
        self.store = store

    def _bodies(self, entities: Sequence[str], types: Sequence[str],
                experiment_ids: Sequence[str] | None = None) -> list[tuple[str, str, int, dict[str, Any]]]:
        where = "type IN {t:Array(String)}"
        p: dict[str, Any] = {"t": list(types)}
        if entities:
            where += " AND entity IN {e:Array(String)}"
            p["e"] = list(entities)
        rows = self.store.query_rows(
            f"SELECT entity, type, toUnixTimestamp64Milli(ts), body FROM events FINAL WHERE {where} "
            "ORDER BY entity, event_id", p)
        return [(r[0], r[1], int(r[2]), orjson.loads(r[3])) for r in rows]

    def run_io(self, run_ids: Sequence[str]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        """run id -> (inputs, outputs) in MLflow's shape; dataset inputs deduplicated by (name, digest, context)."""
        out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        if not run_ids:
            return out
        for run_id, typ, _, body in self._bodies(run_ids, _RUN_TYPES):
            inputs, outputs = out.setdefault(run_id, ({"dataset_inputs": [], "model_inputs": []},
                                                      {"model_outputs": []}))
            if typ == "run_inputs_logged":
                seen = {_dataset_key(d) for d in inputs["dataset_inputs"]}
                for d in body.get("datasets", []):
                    if _dataset_key(d) not in seen:
                        inputs["dataset_inputs"].append(d)
                        seen.add(_dataset_key(d))
                inputs["model_inputs"].extend(m for m in body.get("models", []) if m not in inputs["model_inputs"])
            else:
                outputs["model_outputs"].extend(m for m in body.get("models", [])
                                                if m not in outputs["model_outputs"])
        return out

    def logged_models(self, model_ids: Sequence[str] = ()) -> dict[str, dict[str, Any]]:
        """model id -> folded logged model (deleted ones included, flagged); every model when no ids are given."""
        models: dict[str, dict[str, Any]] = {}
        for mid, typ, ts, body in self._bodies(model_ids, _MODEL_TYPES):
            if typ == "logged_model_created":
                models[mid] = {"model_id": mid, "experiment_id": body["experiment_id"], "name": body["name"],
                               "artifact_location": body["artifact_location"],
                               "source_run_id": body.get("source_run_id", ""),
                               "model_type": body.get("model_type", ""), "params": dict(body.get("params", {})),
                               "tags": dict(body.get("tags", {})), "status": "LOGGED_MODEL_PENDING",
                               "creation_timestamp_ms": ts, "last_updated_timestamp_ms": ts, "deleted": False}
                continue
            m = models.get(mid)
            if m is None:
                continue
            m["last_updated_timestamp_ms"] = ts
            if typ == "logged_model_finalized":
                m["status"] = body["status"]
            elif typ == "logged_model_tags_set":
                m["tags"].update(body.get("tags", {}))
            elif typ == "logged_model_tag_deleted":
                m["tags"].pop(body.get("key"), None)
            elif typ == "logged_model_params_logged":
                m["params"].update(body.get("params", {}))
            elif typ == "logged_model_deleted":
                m["deleted"] = True
        return models


def _dataset_key(d: dict[str, Any]) -> tuple[str, str, str]:
    ds = d.get("dataset", {})
    context = next((t.get("value", "") for t in d.get("tags", []) if t.get("key") == "mlflow.data.context"), "")
    return ds.get("name", ""), ds.get("digest", ""), context
