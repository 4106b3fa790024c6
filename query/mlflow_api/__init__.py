"""MLflow's REST API served from runledger's event pipeline.

Every write becomes events through ``Services.append``; every read comes from
the ClickHouse projections. Each area module (experiments, runs, registry,
logged models, artifacts, …) owns an ``APIRouter`` with MLflow's relative
paths (``/experiments/create``) and appends it to :data:`ROUTERS`
(``/mlflow-artifacts`` routes to :data:`ARTIFACT_ROUTERS`). :func:`mount`
serves each under every prefix the stock client and UI use:
``/api/2.0/mlflow``, ``/api/3.0/mlflow`` and their ``/ajax-api`` aliases.

Errors under these prefixes are answered in MLflow's shape (``errors.py``):
runledger errors mapped to MLflow codes, unknown routes and methods as
``ENDPOINT_NOT_FOUND``, malformed bodies as ``INVALID_PARAMETER_VALUE``.
"""

from __future__ import annotations

import importlib
import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import MlflowError

__all__ = ["ROUTERS", "ARTIFACT_ROUTERS", "TOP_ROUTERS", "AREAS", "PREFIXES", "ARTIFACT_PREFIXES", "mount", "is_mlflow_path",
           "error_response"]

log = logging.getLogger(__name__)

#: Routers of MLflow's tracking/registry API, relative to :data:`PREFIXES`.
ROUTERS: list[APIRouter] = []
#: Routers of the ``mlflow-artifacts`` proxy, relative to :data:`ARTIFACT_PREFIXES`.
ARTIFACT_ROUTERS: list[APIRouter] = []
#: Routers served as they are (``/health``, ``/api/3.0/mlflow/server-info``).
TOP_ROUTERS: list[APIRouter] = []
#: Area modules imported by :func:`mount`; each appends its router on import. Add yours with a one-line edit.
AREAS: list[str] = [f"{__name__}.{m}" for m in (
    "server", "experiments", "runs", "metrics", "artifacts", "logged_models", "registry", "model_versions")]

PREFIXES = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow")
ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
_ALL_PREFIXES = tuple(p + "/" for p in PREFIXES + ARTIFACT_PREFIXES)


def is_mlflow_path(path: str) -> bool:
    return path.startswith(_ALL_PREFIXES)


def error_response(err: MlflowError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


def mount(app: FastAPI) -> None:
    """Include every MLflow router under every prefix (only the first in OpenAPI) and MLflow's error shape."""
    for area in AREAS:
        importlib.import_module(area)
    for router in TOP_ROUTERS:
        app.include_router(router, tags=["mlflow"])
    for routers, prefixes in ((ROUTERS, PREFIXES), (ARTIFACT_ROUTERS, ARTIFACT_PREFIXES)):
        for router in routers:
            for i, prefix in enumerate(prefixes):
                app.include_router(router, prefix=prefix, include_in_schema=i == 0, tags=["mlflow"])

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if not is_mlflow_path(request.url.path):
            return await http_exception_handler(request, exc)
        if exc.status_code in (404, 405):
            return error_response(MlflowError(
                "ENDPOINT_NOT_FOUND", f"{request.method} {request.url.path} is not an endpoint runledger serves",
                status=404))
        return error_response(MlflowError("BAD_REQUEST", str(exc.detail), status=exc.status_code))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        if not is_mlflow_path(request.url.path):
            return await request_validation_exception_handler(request, exc)
        return error_response(MlflowError("INVALID_PARAMETER_VALUE", _describe(exc)))


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{where or 'body'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
