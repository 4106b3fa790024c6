"""runledger's read shapes -> MLflow's JSON entities (Experiment, Run, Metric, ...). Pure functions.

Artifact locations under the server's own artifact root are shown as
``mlflow-artifacts:/...`` so the stock client uploads and downloads through
the server's proxy (it cannot reach the server's folder or bucket itself).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from math import isfinite
from typing import Any

from .errors import invalid
from .routing import wire_float

__all__ = ["kv", "experiment_json", "run_info_json", "run_json", "io_json", "metric_json", "proxied_location", "tags_of",
           "encode_token", "decode_token"]

ARTIFACTS_SCHEME = "mlflow-artifacts:"


def kv(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": k, "value": v} for k, v in mapping.items()]


def proxied_location(location: str, artifact_root: str) -> str:
    """``<artifact_root>/12`` -> ``mlflow-artifacts:/12``; anything else (s3://, a user's path) unchanged."""
    root = artifact_root.rstrip("/")
    if location == root:
        return ARTIFACTS_SCHEME + "/"
    if location.startswith(root + "/"):
        return f"{ARTIFACTS_SCHEME}/{location[len(root) + 1:]}"
    return location


def experiment_json(e: Mapping[str, Any], artifact_root: str) -> dict[str, Any]:
    return {
        "experiment_id": e["experiment_id"], "name": e["name"],
        "artifact_location": proxied_location(e["artifact_location"], artifact_root),
        "lifecycle_stage": e["lifecycle_stage"], "creation_time": e["creation_time"],
        "last_update_time": e["last_update_time"], "tags": kv(e.get("tags", {})),
    }


def metric_json(key: str, value: float, timestamp_ms: int, step: int) -> dict[str, Any]:
    return {"key": key, "value": wire_float(float(value)), "timestamp": int(timestamp_ms), "step": int(step)}


def run_info_json(run: Mapping[str, Any], experiment_location: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run["run_id"], "run_uuid": run["run_id"], "run_name": run["name"],
        "experiment_id": run["experiment_id"], "user_id": run["user"], "status": run["status"],
        "start_time": run["start_time"], "artifact_uri": f"{experiment_location.rstrip('/')}/{run['run_id']}/artifacts",
        "lifecycle_stage": run["lifecycle_stage"],
    }
    if run.get("end_time") is not None:
        info["end_time"] = run["end_time"]
    return info


def run_json(run: Mapping[str, Any], experiment_location: str, inputs: Mapping[str, Any] | None = None,
             outputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    # inline (not metric_json): a search page can hold 100 runs x hundreds of metrics
    metrics = [{"key": k, "value": v if isfinite(v := float(m["value"])) else wire_float(v),
                "timestamp": int(m["timestamp"]), "step": int(m["step"])} for k, m in run["metrics"].items()]
    return {
        "info": run_info_json(run, experiment_location),
        "data": {"metrics": metrics, "params": kv(run["params"]), "tags": kv(run["tags"])},
        **io_json(inputs, outputs),
    }


def io_json(inputs: Mapping[str, Any] | None = None, outputs: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A run's ``inputs`` and ``outputs`` members (empty lists when it logged none)."""
    return {"inputs": dict(inputs or {"dataset_inputs": [], "model_inputs": []}),
            "outputs": dict(outputs or {"model_outputs": []})}


def encode_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode()


def decode_token(token: str | None) -> int:
    """A page token this server issued -> the offset it stands for; 0 for none."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token.encode() + b"=" * (-len(token) % 4)).decode()
        kind, _, raw = text.partition(":")
        offset = int(raw)
    except (ValueError, UnicodeDecodeError):
        raise invalid(f"Invalid page token {token!r}") from None
    if kind != "o" or offset < 0:
        raise invalid(f"Invalid page token {token!r}")
    return offset


def tags_of(items: Iterable[Any] | None, what: str) -> dict[str, str]:
    """MLflow's ``[{"key": k, "value": v}, ...]`` -> dict, validated."""
    out: dict[str, str] = {}
    if items is not None and not isinstance(items, list):
        raise invalid(f"Invalid {what}s: expected a list of {{key, value}} objects, got {type(items).__name__}")
    for item in items or []:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str) or not item["key"]:
            raise invalid(f"Invalid {what}: each entry needs a non-empty string 'key', got {item!r}")
        value = item.get("value", "")
        if not isinstance(value, str):
            value = str(value)
        out[item["key"]] = value
    return out
