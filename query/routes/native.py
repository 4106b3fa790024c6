"""The native read API under /api/v1: experiments, runs, metric histories, health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from producer.codec import event_to_wire
from producer.errors import ContractError, NotFoundError, PermissionDeniedError
from tracking import EnsureExperiment

from ..auth.guard import grant_creator, readable_for, require
from ..commands import execute, tracking_view
from ..errors_http import parse_time_ms
from ..filters import parse_filter, parse_order_by
from ..reads import VIEW_TYPES
from ..services import Services, get_services
from .registry import actor_of

router = APIRouter(prefix="/api/v1", tags=["native"])


class NewExperiment(BaseModel):
    name: str = Field(min_length=1, max_length=500)
    artifact_location: str = ""
    tags: dict[str, str] = {}


def _view(view_type: str) -> str:
    v = view_type.upper()
    if v not in VIEW_TYPES:
        raise ContractError(f"view_type must be one of {', '.join(VIEW_TYPES)}, got {view_type!r}")
    return v


@router.get("/experiments", summary="List experiments")
def list_experiments(request: Request, view_type: str = "ACTIVE_ONLY",
                     services: Services = Depends(get_services)) -> dict[str, Any]:
    readable = readable_for(request, "experiment")
    found = services.reads.experiments(_view(view_type))
    return {"experiments": found if readable is None else
            [e for e in found if readable.contains(str(e["experiment_id"]))]}


@router.post("/experiments", summary="Create an experiment (idempotent by name)")
def create_experiment(body: NewExperiment, request: Request,
                      services: Services = Depends(get_services)) -> dict[str, Any]:
    """The experiment called ``name`` (active or deleted), created first when there is none — what
    ``producer.start_run(experiment=...)`` asks for. A name freed by a rename gets a fresh id."""
    view = tracking_view(services)
    events = execute(services, EnsureExperiment(name=body.name, artifact_location=body.artifact_location,
                                                tags=tuple(body.tags.items())), actor=actor_of(request), view=view)
    name = body.name.strip()
    found = services.reads.experiment(events[0].entity) if events else services.reads.experiment_by_name(name)
    if found is None:
        raise NotFoundError(f"experiment {name!r} vanished while it was being created")
    if events:
        grant_creator(request, "experiment", str(found["experiment_id"]))
    elif (auth_on := require(request)) is not None and not auth_on[0].may(auth_on[1], "experiment",
                                                                          str(found["experiment_id"]), "read"):
        raise PermissionDeniedError(f"Permission denied: {auth_on[1].username} may not read this experiment")
    return found


@router.get("/experiments/{experiment_id}", summary="One experiment")
def get_experiment(experiment_id: str, services: Services = Depends(get_services)) -> dict[str, Any]:
    found = services.reads.experiment(experiment_id)
    if found is None:
        raise NotFoundError(f"experiment {experiment_id} does not exist")
    return found


@router.get("/experiments/{experiment_id}/runs", summary="Search the runs of an experiment")
def search_runs(
    experiment_id: str,
    filter: str = Query("", description="MLflow grammar, e.g. metrics.loss < 0.5 and params.lr = '0.01'"),
    order_by: list[str] = Query([], description="e.g. metrics.loss ASC; repeatable"),
    view_type: str = "ACTIVE_ONLY",
    max_results: int = Query(100, ge=1, le=50_000),
    offset: int = Query(0, ge=0),
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    clauses, orders = parse_filter(filter), parse_order_by(order_by)
    ids = services.reads.search_runs([experiment_id], clauses, orders, view_type=_view(view_type),
                                     max_results=max_results + 1, offset=offset)
    more = len(ids) > max_results
    ids = ids[:max_results]
    return {"runs": services.reads.runs(ids), "next_offset": offset + max_results if more else None}


@router.get("/runs/{run_id}", summary="A run: status, times, params, tags, latest metrics (optionally as of a time)")
def get_run(run_id: str, as_of: str | None = Query(None, description="ISO 8601 time or epoch ms"),
            services: Services = Depends(get_services)) -> dict[str, Any]:
    t = parse_time_ms(as_of)
    run = services.reads.run(run_id) if t is None else services.reads.run_as_of(run_id, t)
    if run is None:
        raise NotFoundError(f"run {run_id} does not exist" + ("" if t is None else f" as of {as_of}"))
    return run


@router.get("/runs/{run_id}/history", summary="The audit trail of a run: every event but metric points, who, when, "
                                              "what (oldest first)")
def run_history(run_id: str, services: Services = Depends(get_services)) -> dict[str, Any]:
    events = services.reads.entity_events(run_id, exclude_types=("metrics_logged",))
    if not events:
        raise NotFoundError(f"run {run_id} does not exist")
    return {"run_id": run_id, "events": [
        {"id": w["id"], "type": w["type"], "ts": w["ts"], "actor": w.get("actor", ""), "body": w["body"]}
        for w in map(event_to_wire, events)]}


@router.get("/runs/{run_id}/metrics", summary="Metric keys of a run")
def metric_keys(run_id: str, services: Services = Depends(get_services)) -> dict[str, Any]:
    return {"keys": services.reads.metric_keys(run_id)}


@router.get("/runs/{run_id}/metrics/{key:path}", summary="History of one metric, optionally downsampled")
def metric_history(
    run_id: str,
    key: str,
    max_points: int | None = Query(None, ge=2, le=1_000_000, description="keep min and max per step bucket"),
    start_step: int | None = None,
    end_step: int | None = None,
    services: Services = Depends(get_services),
) -> dict[str, Any]:
    h = services.reads.metric_history(run_id, key, max_points=max_points, start_step=start_step, end_step=end_step)
    if not h["steps"] and services.reads.run(run_id) is None:
        raise NotFoundError(f"run {run_id} does not exist")
    return {"run_id": run_id, "key": key, "points": len(h["steps"]), **h}


@router.get("/dead-letters", summary="Most recent refused events with their reasons")
def dead_letters(limit: int = Query(100, ge=1, le=10_000), services: Services = Depends(get_services)) -> dict[str, Any]:
    return {"dead_letters": services.reads.dead_letters(limit)}


@router.get("/health", summary="Liveness, mode, writer counters and ingest lag")
def health(services: Services = Depends(get_services)) -> dict[str, Any]:
    st = services.writer.stats
    lag = getattr(services.log, "lag", None)
    return {
        "status": "ok",
        "mode": services.log.mode,
        "clickhouse": "chdb" if services.store.embedded else "server",
        "ingest_lag": lag() if callable(lag) else {"events": 0, "note": "embedded: writes are synchronous"},
        "writer": {"events_written": st.events_written, "points_written": st.points_written,
                   "dead_letters": st.dead_letters, "batches": st.batches},
    }


@router.post("/admin/rebuild", summary="Recompute every projection from the event log into new tables and swap them in at once")
def admin_rebuild(services: Services = Depends(get_services)) -> dict[str, Any]:
    from ingest.rebuild import rebuild

    report = rebuild(services.store)
    registry_events = services.extras["registry"].reload() if "registry" in services.extras else 0
    return {"events": report.events, "points": report.points, "seconds": round(report.seconds, 3),
            "dead_letters": report.dead_letters, "registry_events": registry_events}
