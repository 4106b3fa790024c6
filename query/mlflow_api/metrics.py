"""MLflow metric histories: ``metrics/get-history`` (paged) and ``metrics/get-history-bulk-interval``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..services import Services
from .common import run_or_404
from .convert import decode_token, encode_token, metric_json
from .errors import invalid
from .request import optional_int, optional_str, required_str, str_list
from .routing import mlflow_route
from .runs import run_id_of

router = APIRouter()

MAX_HISTORY_PAGE = 25_000
MAX_BULK_RUNS = 100
MAX_BULK_RESULTS = 2500
DEFAULT_BULK_RESULTS = 320


def _points(key: str, h: dict[str, list[Any]], run_id: str | None = None) -> list[dict[str, Any]]:
    out = [metric_json(key, v, t, s) for s, t, v in zip(h["steps"], h["timestamps"], h["values"])]
    if run_id is not None:
        for p in out:
            p["run_id"] = run_id
    return out


@mlflow_route(router, "/metrics/get-history", "GET")
def get_metric_history(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Every point of one metric of a run, in step order; paged with max_results / page_token."""
    run_id = run_id_of(params)
    key = required_str(params, "metric_key")
    max_results = optional_int(params, "max_results")
    if max_results is not None and not 1 <= max_results <= MAX_HISTORY_PAGE:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results': must be 1..{MAX_HISTORY_PAGE}")
    offset = decode_token(optional_str(params, "page_token"))
    run_or_404(services, run_id)
    limit = None if max_results is None else max_results + 1
    h = services.reads.metric_history(run_id, key, offset=offset, limit=limit)
    points = _points(key, h)
    out: dict[str, Any] = {"metrics": points[:max_results] if max_results is not None else points}
    if max_results is not None and len(points) > max_results:
        out["next_page_token"] = encode_token(offset + max_results)
    return out


@mlflow_route(router, "/metrics/get-history-bulk-interval", "GET")
def get_history_bulk_interval(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """One metric of up to 100 runs between start_step and end_step, downsampled to max_results points per run
    (each bucket keeps its minimum and maximum, so spikes stay visible)."""
    run_ids = str_list(params, "run_ids")
    if not run_ids:
        raise invalid("Missing value for required parameter 'run_ids'.")
    if len(run_ids) > MAX_BULK_RUNS:
        raise invalid(f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} run_ids. "
                      f"Received {len(run_ids)} run_ids.")
    key = required_str(params, "metric_key")
    start, end = optional_int(params, "start_step"), optional_int(params, "end_step")
    if (start is None) != (end is None):
        raise invalid("If either start step or end step are specified, both must be specified.")
    if start is not None and end is not None and start > end:
        raise invalid("end_step must be greater than start_step.")
    max_results = optional_int(params, "max_results", DEFAULT_BULK_RESULTS)
    assert max_results is not None
    if not 1 <= max_results <= MAX_BULK_RESULTS:
        raise invalid(f"max_results must be between 1 and {MAX_BULK_RESULTS}")
    points: list[dict[str, Any]] = []
    for run_id in sorted(set(run_ids)):
        run_or_404(services, run_id)
        h = services.reads.metric_history(run_id, key, max_points=max_results, start_step=start, end_step=end)
        points.extend(_points(key, h, run_id))
    return {"metrics": points}
