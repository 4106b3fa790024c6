"""``create_app(settings)``: the FastAPI application, thin on purpose.

Routers per area; state built once in the lifespan and injected with Depends;
runledger errors mapped to HTTP in one handler per API style.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse

from producer.errors import RunledgerError

from . import mlflow_api
from .artifact_roots import with_resolved_roots
from .auth import start_auth
from .auth.guard import ASGIApp, AuthMiddleware, Receive, Scope, Send, authorize
from .errors_http import http_status
from .mlflow_api.errors import mlflow_error_for
from .mlflow_api.fast_path import FastReads, fast_routes
from .mlflow_api.graphql_api import build_schema
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
    settings = with_resolved_roots(settings or Settings.from_env())  # a bad root: refused before serving

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.services = build_services(settings, STARTUP_HOOKS)
        # MLflow's GraphQL schema takes seconds to build (importing mlflow and graphene): built before serving,
        # so a first /graphql (the web UI's runs page) does not pay it. Not beside serving: a request that
        # imports part of mlflow while the build imports the rest can meet a half-initialised module.
        await asyncio.to_thread(build_schema)
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
    mounted = mlflow_api.mount(app)
    app.add_middleware(AuthMiddleware)  # authenticates every request, routes or not (pages, static files)
    app.add_middleware(FastReads, table=fast_routes(mounted))  # in-memory MLflow reads past the framework (auth off)
    if settings.access_log:
        app.add_middleware(AccessLog)
    app.add_middleware(MergeSlashes)

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


_SLASHES = re.compile(r"/{2,}")
_RAW_SLASHES = re.compile(rb"/{2,}")


class MergeSlashes:
    """A path with repeated slashes is the path with one (``//model-versions/get-artifact``), as MLflow's
    Flask server matches it (werkzeug's ``merge_slashes``): clients that join a tracking URI ending in
    ``/`` with ``/path`` send such paths."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and "//" in scope["path"]:
            scope = dict(scope, path=_SLASHES.sub("/", scope["path"]))
            if isinstance(scope.get("raw_path"), bytes):
                scope["raw_path"] = _RAW_SLASHES.sub(b"/", scope["raw_path"])
        await self.app(scope, receive, send)


class AccessLog:
    """One line per request: ``<client> "<METHOD> <path>" <status> <ms> ms``, the time until the last
    byte of the answer was handed to the server (query strings left out: they may carry filters users
    consider private, and they make lines long). Plain ASGI: no per-request task or body stream, unlike
    ``@app.middleware("http")``, which cost ~1 ms a request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0, status, logged = time.perf_counter(), 500, False

        def line() -> None:
            client = scope.get("client")
            access_log.info('%s "%s %s" %d %.1f ms', client[0] if client else "-", scope["method"], scope["path"],
                            status, (time.perf_counter() - t0) * 1000)

        async def sending(message: MutableMapping[str, Any]) -> None:
            nonlocal status, logged
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False) and not logged:
                logged = True
                line()

        try:
            await self.app(scope, receive, sending)
        finally:
            if not logged:
                line()
