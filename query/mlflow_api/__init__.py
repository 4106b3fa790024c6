"""MLflow's REST API served from runledger's event pipeline.

Every write becomes events through ``Services.append``; every read comes from
the ClickHouse projections. Each area module (experiments, runs, registry,
logged models, artifacts, …) owns an ``APIRouter`` with MLflow's relative
paths (``/experiments/create``), listed explicitly in :func:`routers`
(``/mlflow-artifacts`` routes apart; the web UI and ``/graphql`` at the top level). :func:`mount` serves each under every
prefix the stock client and UI use:
``/api/2.0/mlflow``, ``/api/3.0/mlflow`` and their ``/ajax-api`` aliases.

Errors under these prefixes are answered in MLflow's shape (``errors.py``):
runledger errors mapped to MLflow codes, unknown routes and methods as
``ENDPOINT_NOT_FOUND``, malformed bodies as ``INVALID_PARAMETER_VALUE``.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import MlflowError

__all__ = ["routers", "PREFIXES", "ARTIFACT_PREFIXES", "mount", "is_mlflow_path", "error_response"]

log = logging.getLogger(__name__)


def routers() -> tuple[list[APIRouter], list[APIRouter], list[APIRouter]]:
    """(top-level routers, routers under :data:`PREFIXES`, routers under :data:`ARTIFACT_PREFIXES`).

    Imported here, not at module import, so that importing one area (in a test, say) pulls in no others.
    Add an area with a one-line edit.
    """
    from . import (
        artifacts,
        experiments,
        graphql_api,
        logged_models,
        metrics,
        model_versions,
        promptlab,
        registry,
        run_artifacts,
        runs,
        server,
        users,
        web_ui,
    )

    api = [experiments.router, runs.router, metrics.router, logged_models.router, registry.router,
           model_versions.router, run_artifacts.router, users.router, server.api_router]
    return ([server.router, promptlab.router, web_ui.router, graphql_api.router, run_artifacts.top_router], api,
            [artifacts.router])

PREFIXES = ("/api/2.0/mlflow", "/api/3.0/mlflow", "/ajax-api/2.0/mlflow", "/ajax-api/3.0/mlflow")
ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
_ALL_PREFIXES = tuple(p + "/" for p in PREFIXES + ARTIFACT_PREFIXES)
#: MLflow endpoints outside the prefixes (the web UI's), answered in MLflow's error shape too.
TOP_LEVEL_PATHS = frozenset({"/graphql", "/get-artifact", "/model-versions/get-artifact"})


def is_mlflow_path(path: str) -> bool:
    return path.startswith(_ALL_PREFIXES) or path in TOP_LEVEL_PATHS


def error_response(err: MlflowError) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status)


def mount(app: FastAPI) -> list[tuple[str, APIRouter]]:
    """Include every MLflow router under every prefix (only the first in OpenAPI) and MLflow's error shape.
    Returns the (prefix, router) pairs mounted."""
    top, api, artifact = routers()
    mounted = [("", router) for router in top]
    for group, prefixes in ((api, PREFIXES), (artifact, ARTIFACT_PREFIXES)):
        mounted += [(prefix, router) for router in group for prefix in prefixes]
    for prefix, router in mounted:
        app.include_router(router, prefix=prefix, include_in_schema=prefix in ("", PREFIXES[0], ARTIFACT_PREFIXES[0]),
                           tags=["mlflow"])

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

    return mounted


def _describe(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()) if x != "body")
        parts.append(f"{where or 'body'}: {e.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"
