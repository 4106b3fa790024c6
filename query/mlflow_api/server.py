"""``GET /health``, ``server-info`` and the probes of features runledger does not have, answered as the stock
server answers when they are off or empty: the AI assistant (no providers configured), the deployments
gateway proxy (no gateway: no endpoints) and trace metrics
(no traces are stored here, so every count is 0)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from ..services import Services
from .errors import invalid
from .request import optional_int, required_str, str_list
from .routing import mlflow_route

router = APIRouter()
#: Routes under the MLflow prefixes (``/ajax-api/3.0/mlflow/...``).
api_router = APIRouter()


@router.get("/health", summary="MLflow's liveness probe")
def health() -> PlainTextResponse:
    return PlainTextResponse("OK")


@router.get("/api/3.0/mlflow/server-info", summary="MLflow server capabilities")
@router.get("/ajax-api/3.0/mlflow/server-info", include_in_schema=False)
@router.get("/api/2.0/mlflow/server-info", include_in_schema=False)
def server_info() -> JSONResponse:
    return JSONResponse({
        "store_type": None, "workspaces_enabled": False, "trace_archival_enabled": False,
        "multipart_uploads_enabled": False, "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False, "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    })


@mlflow_route(api_router, "/assistant/config", "GET")
def assistant_config(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The AI assistant's settings: none configured (the stock server's answer before any setup)."""
    return {"providers": {}, "projects": {}, "remote_access_allowed": False}


@mlflow_route(api_router, "/assistant/providers", "GET")
def assistant_providers(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The AI assistant's providers: none is available on runledger."""
    return {"providers": [], "gateway_vendor_options": {}}


@mlflow_route(api_router, "/traces/metrics", "POST")
def trace_metrics(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Aggregates over an experiment's traces. runledger stores no traces: a plain count is 0 (one data point,
    as the stock server answers for an experiment without traces), anything grouped or bucketed is empty."""
    if not str_list(params, "experiment_ids"):
        raise invalid("Missing value for required parameter 'experiment_ids'.")
    name = required_str(params, "metric_name")
    aggregations = params.get("aggregations") or []
    if not isinstance(aggregations, list) or not all(isinstance(a, dict) for a in aggregations):
        raise invalid("Invalid value for parameter 'aggregations': expected a list of objects")
    if optional_int(params, "time_interval_seconds") or params.get("dimensions"):
        return {}
    counts = {"COUNT": 0.0} if any(a.get("aggregation_type") == "COUNT" for a in aggregations) else {}
    return {"data_points": [{"metric_name": name, "values": counts}]} if counts else {}


@mlflow_route(api_router, "/gateway-proxy", "GET", "POST")
def gateway_proxy(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The deployments gateway proxy: no gateway is configured, so it is an empty one (the stock server's
    answer without ``MLFLOW_DEPLOYMENTS_TARGET``)."""
    return {"endpoints": []}
