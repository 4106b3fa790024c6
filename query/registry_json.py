"""JSON shapes of the native registry API (models, versions, events, audit entries). Times are ms since the epoch."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import registry as reg
from producer.events import Event

__all__ = ["model_json", "version_json", "event_json", "entry_json", "iso"]


def iso(ms: int) -> str:
    """``2026-11-20T10:00:00.000Z``"""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def version_json(model: reg.ModelState, v: reg.VersionState) -> dict[str, Any]:
    return {
        "name": model.name, "version": v.version, "stage": v.stage, "source": v.source, "run_id": v.run_id,
        "run_link": v.run_link, "model_id": v.model_id, "description": v.description, "tags": dict(v.tags),
        "aliases": reg.aliases_of(model, v.version), "created_ms": v.created_ms, "updated_ms": v.updated_ms,
        "created_by": v.created_by,
    }


def model_json(model: reg.ModelState, *, versions: bool = True) -> dict[str, Any]:
    """A model; ``latest_versions`` maps each stage to its highest live version number."""
    out: dict[str, Any] = {
        "id": model.id, "name": model.name, "description": model.description, "tags": dict(model.tags),
        "aliases": dict(sorted(model.aliases.items())),
        "latest_versions": {stage: v.version for stage, v in reg.latest_versions(model).items()},
        "last_version": model.last_version, "created_ms": model.created_ms, "updated_ms": model.updated_ms,
        "created_by": model.created_by,
    }
    if versions:
        out["versions"] = [version_json(model, v) for v in model.versions.values()]
    return out


def event_json(e: Event) -> dict[str, Any]:
    """A recorded event: ``seq`` is its position in its model's stream."""
    return {"id": e.id, "type": e.type, "model_id": e.entity, "seq": e.seq, "ts_ms": e.ts_ms, "time": iso(e.ts_ms),
            "actor": e.actor, "body": e.body.to_wire()}


def entry_json(a: reg.AuditEntry) -> dict[str, Any]:
    return {
        "event_id": a.event_id, "ts_ms": a.ts_ms, "time": iso(a.ts_ms), "actor": a.actor, "type": a.type,
        "model_id": a.model_id, "model_name": a.model_name, "version": a.version,
        "changes": [{"field": ch.field, "before": ch.before, "after": ch.after} for ch in a.changes],
        "summary": a.summary,
    }
