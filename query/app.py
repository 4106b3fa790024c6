"""``create_app(settings)``: the FastAPI application, thin on purpose.

Routers per area; state built once in the lifespan and injected with Depends;
runledger errors mapped to HTTP in one handler per API style.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from producer.errors import RunledgerError

from . import mlflow_api
from .auth import start_auth
from .auth.guard import AuthMiddleware, authorize
from .errors_http import http_status
from .mlflow_api.errors import mlflow_error_for
from .registry_startup import start_registry
from .routes import auth_api, ingest, metrics, native, registry, sql
from .services import StartupHook, build_services
from .settings import Settings

__all__ = ["create_app", "ROUTERS", "STARTUP_HOOKS"]

log = logging.getLogger(__name__)
access_log = logging.getLogger("runledger.access")

#: Native routers, in registration order (MLflow's are listed in :func:`query.mlflow_api.routers`).
ROUTERS = [ingest.router, native.router, metrics.router, sql.router, registry.router, auth_api.router]
#: What each area starts once the core services exist, in order.
STARTUP_HOOKS: tuple[StartupHook, ...] = (start_auth, start_registry, sql.start_sql)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = build_services(settings, STARTUP_HOOKS)
        try:
            yield
        finally:
            app.state.services.close()

    # Every route depends on ``authorize`` (its rule in query/auth/rules.py; nothing when auth is off).
    app = FastAPI(title="runledger", version="0.1.0", lifespan=lifespan, dependencies=[Depends(authorize)],
                  description="Event-sourced experiment tracking and model registry on ClickHouse.")
    app.state.settings = settings
    for router in ROUTERS:
        app.include_router(router)
    mlflow_api.mount(app)
    app.add_middleware(AuthMiddleware)  # authenticates every request, routes or not (pages, static files)
    if settings.access_log:
        app.middleware("http")(_log_access)

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


async def _log_access(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
    """One line per request: ``<client> "<METHOD> <path>" <status> <ms> ms`` (query strings left out:
    they may carry filters users consider private, and they make lines long)."""
    t0 = time.perf_counter()
    status = 500
    try:
        response = await call_next(request)
        status = response.status_code
        return response
    finally:
        client = request.client.host if request.client else "-"
        access_log.info('%s "%s %s" %d %.1f ms', client, request.method, request.url.path, status,
                        (time.perf_counter() - t0) * 1000)
