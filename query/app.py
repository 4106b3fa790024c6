"""``create_app(settings)``: the FastAPI application, thin on purpose.

Routers per area; state built once in the lifespan and injected with Depends;
runledger errors mapped to HTTP in one handler per API style.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from producer.errors import RunledgerError

from . import mlflow_api
from .errors_http import http_status
from .mlflow_api.errors import mlflow_error_for
from .routes import ingest, metrics, native, registry, sql
from .services import build_services
from .settings import Settings

__all__ = ["create_app", "ROUTERS"]

log = logging.getLogger(__name__)

#: Areas add their routers here (module import order = registration order).
ROUTERS = [ingest.router, native.router, metrics.router, sql.router, registry.router]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = build_services(settings)
        try:
            yield
        finally:
            app.state.services.close()

    app = FastAPI(title="runledger", version="0.1.0", lifespan=lifespan,
                  description="Event-sourced experiment tracking and model registry on ClickHouse.")
    app.state.settings = settings
    for router in ROUTERS:
        app.include_router(router)
    mlflow_api.mount(app)

    @app.exception_handler(RunledgerError)
    async def _runledger_error(request: Request, exc: RunledgerError) -> JSONResponse:
        if mlflow_api.is_mlflow_path(request.url.path):
            return mlflow_api.error_response(mlflow_error_for(exc))
        status, code = http_status(exc)
        return JSONResponse({"error": {"code": code, "message": str(exc)}}, status_code=status)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        if mlflow_api.is_mlflow_path(request.url.path):
            return mlflow_api.error_response(mlflow_error_for(exc))
        return JSONResponse({"error": {"code": "INTERNAL", "message": f"internal error: {type(exc).__name__}"}},
                            status_code=500)

    return app
