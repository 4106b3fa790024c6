"""MLflow metric histories: ``metrics/get-history`` (paged), ``metrics/get-history-bulk`` (many runs, whole
series) and ``metrics/get-history-bulk-interval`` (many runs, downsampled in ONE query: the web UI's charts)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from ..interval_sample import sample_histories
from ..services import Services
from .convert import decode_token, encode_token, metric_json
from .errors import invalid
from .request import SEE_DOCS, missing_value, optional_int, optional_str, required_str, str_list
from .routing import mlflow_route
from .runs import run_id_of

router = APIRouter()

MAX_HISTORY_PAGE = 25_000
MAX_BULK_RUNS = 100
MAX_BULK_RESULTS = 2500


def _points(key: str, h: dict[str, list[Any]], run_id: str | None = None) -> list[dict[str, Any]]:
    out = [metric_json(key, v, t, s) for s, t, v in zip(h["steps"], h["timestamps"], h["values"])]
    if run_id is not None:
        for p in out:
            p["run_id"] = run_id
    return out


@mlflow_route(router, "/metrics/get-history", "GET")
def get_metric_history(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Every point of one metric of a run, in step order; paged with max_results / page_token. As mlflow
    server's SQL store, a run it does not know (or a metric the run lacks) has an empty history: ``{}``."""
    run_id = run_id_of(params)
    key = required_str(params, "metric_key")
    max_results = optional_int(params, "max_results")
    if max_results is not None and max_results <= 0:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results' supplied. It must be a positive "
                      "integer.")
    offset = decode_token(optional_str(params, "page_token"))
    limit = None if max_results is None else max_results + 1
    h = services.reads.metric_history(run_id, key, offset=offset, limit=limit)
    points = _points(key, h)
    out: dict[str, Any] = {"metrics": points[:max_results]} if points else {}
    if max_results is not None and len(points) > max_results:
        out["next_page_token"] = encode_token(offset + max_results)
    return out


@mlflow_route(router, "/metrics/get-history-bulk-interval", "GET")
def get_history_bulk_interval(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """One metric of up to 100 runs, optionally between start_step and end_step, each run sampled to at most
    max_results points as mlflow server 3.17.2 samples them (:mod:`query.interval_sample`)."""
    run_ids = str_list(params, "run_ids")
    if not run_ids:
        raise missing_value("run_ids")
    if len(run_ids) > MAX_BULK_RUNS:
        raise invalid(f"GetMetricHistoryBulkInterval request must specify at most {MAX_BULK_RUNS} run_ids. "
                      f"Received {len(run_ids)} run_ids.{SEE_DOCS}")
    key = required_str(params, "metric_key")
    start, end = optional_int(params, "start_step"), optional_int(params, "end_step")
    max_results = optional_int(params, "max_results", MAX_BULK_RESULTS)
    assert max_results is not None
    if not 1 <= max_results <= MAX_BULK_RESULTS:
        raise invalid(f"max_results must be between 1 and {MAX_BULK_RESULTS}.{SEE_DOCS}")
    if (start is None) != (end is None):
        raise invalid("If either start step or end step are specified, both must be specified.")
    if start is not None and end is not None and start > end:
        raise invalid(f"end_step must be greater than start_step. Found start_step={start} and end_step={end}.")
    points = bulk_interval_points(services, run_ids, key, max_results, start, end)
    return {"metrics": points} if points else {}  # MLflow's JSON leaves an empty list out


#: A series with more points in range than any request may ask for (:data:`MAX_BULK_RESULTS`) and at least
#: this many times ``max_results`` is downsampled keeping spikes (each step bucket's minimum and maximum)
#: instead of by MLflow's positions.
SPIKE_RATIO = 10


def bulk_interval_points(services: Services, run_ids: list[str], key: str, max_results: int,
                         start: int | None, end: int | None) -> list[dict[str, Any]]:
    """The points of ``get-history-bulk-interval`` (also answered by GraphQL), as mlflow server's SQL store
    answers: runs in the order asked (a run asked twice comes twice), a run without the metric or unknown
    to the server contributes nothing.

    Each run is sampled as mlflow server 3.17.2 samples it (:mod:`query.interval_sample`: first and last
    point, the rest evenly by position), except a series the read model knows to hold more than 2,500 and
    at least :data:`SPIKE_RATIO` times ``max_results`` points in the range: there a position sample would
    drop 90 % or more of the points, spikes among them, so its step range is cut into ``max_results // 2`` buckets
    and each keeps its minimum and maximum (from ``metric_rollup`` for long never-re-logged series: a chart
    of 10 runs x 1,000,000 points is ~20 ms). One ClickHouse query per kind."""
    model = services.reads.model
    long_runs = [rid for rid in dict.fromkeys(run_ids) if model is not None
                 and (n := _points_in_range(model.bounds(rid, key), start, end)) > MAX_BULK_RESULTS
                 and n >= SPIKE_RATIO * max_results]
    histories = services.reads.metric_histories(long_runs, key, max_points=max_results, start_step=start, end_step=end)
    rest = [r for r in run_ids if r not in histories]
    histories.update(sample_histories(services.store, model, rest, key, max_results, start, end))
    points: list[dict[str, Any]] = []
    for run_id in run_ids:
        if run_id in histories:
            points.extend(_points(key, histories[run_id], run_id))
    return points


def _points_in_range(bounds: tuple[int, int, int] | None, start: int | None, end: int | None) -> int:
    """Points of a series between ``start`` and ``end`` by what the read model knows ((first step, last step,
    distinct steps)); exact for the whole series and for a dense one (every step logged), else 0 (unknown:
    MLflow's rule)."""
    if bounds is None:
        return 0
    lo, hi, n = bounds
    if start is None or end is None:
        return n
    if n != hi - lo + 1:
        return 0
    return max(0, min(hi, end) - max(lo, start) + 1)


def _sortable(value: float | str) -> float:
    return value if isinstance(value, float) else float(value)


@mlflow_route(router, "/metrics/get-history-bulk", "GET")
def get_history_bulk(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Every point of one metric of up to 100 runs (at most 25,000 points in all), ordered by run id, then
    timestamp, step and value, as the stock server answers."""
    run_ids = str_list(params, "run_id")
    if not run_ids:
        raise invalid("GetMetricHistoryBulk request must specify at least one run_id.")
    if len(run_ids) > MAX_BULK_RUNS:
        raise invalid(f"GetMetricHistoryBulk request cannot specify more than {MAX_BULK_RUNS} run_ids. "
                      f"Received {len(run_ids)} run_ids.")
    key = optional_str(params, "metric_key")
    if key is None:
        raise invalid("GetMetricHistoryBulk request must specify a metric_key.")
    max_results = min(optional_int(params, "max_results", MAX_HISTORY_PAGE) or MAX_HISTORY_PAGE, MAX_HISTORY_PAGE)
    if max_results < 1:
        raise invalid(f"Invalid value {max_results} for parameter 'max_results': must be 1..{MAX_HISTORY_PAGE}")
    points: list[dict[str, Any]] = []
    for run_id in sorted(set(run_ids)):
        h = services.reads.metric_history(run_id, key, limit=max_results)
        rows = sorted(_points(key, h, run_id), key=lambda m: (m["timestamp"], m["step"], _sortable(m["value"])))
        points.extend(rows)
        if len(points) >= max_results:
            break
    return {"metrics": points[:max_results]}
