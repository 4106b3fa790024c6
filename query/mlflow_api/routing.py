"""``@mlflow_route(router, "/runs/log-batch", "POST")``: an MLflow endpoint as a plain sync handler.

The handler gets ``(services, params, request)`` — ``params`` being the
query parameters merged with the JSON body — runs in the thread pool (reads
and appends are blocking ClickHouse calls) and returns a dict, answered as
JSON (metric values go through :func:`wire_float`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool

from ..services import Services
from .request import read_params

__all__ = ["mlflow_route", "json_response", "wire_float", "Handler", "InMemory", "fast_entry"]

Handler = Callable[[Services, dict[str, Any], Request], dict[str, Any]]


def wire_float(v: float) -> float | str:
    """A double as protobuf's JSON mapping writes it: non-finite values as ``"NaN"``/``"Infinity"``
    (orjson would write ``null``, which the client cannot read as a metric value)."""
    if math.isfinite(v):
        return v
    return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


#: Whether a request can be answered from memory alone: ``(services, params) -> bool``.
InMemory = Callable[[Services, dict[str, Any]], bool]


#: Attribute of a routed endpoint registered with an ``in_memory`` predicate: ``(handler, in_memory)``.
_IN_MEMORY = "runledger_in_memory"


def fast_entry(endpoint: Callable[..., Any]) -> tuple[Handler, InMemory] | None:
    """``(handler, in_memory)`` when ``endpoint`` was registered by :func:`mlflow_route` with ``in_memory``
    (read by :mod:`.fast_path`)."""
    entry: tuple[Handler, InMemory] | None = getattr(endpoint, _IN_MEMORY, None)
    return entry


def with_model(services: Services, params: dict[str, Any]) -> bool:
    """The read model is on (embedded mode): experiments, runs and the registry are in memory."""
    return services.reads.model is not None


def mlflow_route(router: APIRouter, path: str, *methods: str, summary: str = "",
                 in_memory: InMemory | None = None) -> Callable[[Handler], Handler]:
    """Register ``fn(services, params, request) -> dict`` as an MLflow endpoint (JSON in, JSON out).

    ``in_memory(services, params)`` true: this request only reads memory (no ClickHouse, no file), so the
    handler runs on the event loop itself: no hop to a worker thread and back (~0.5 ms of a ~2 ms small
    read). Otherwise, and for every other handler, it runs in the thread pool. (``services`` is taken from
    the app state directly: a FastAPI dependency per request costs more than the read.)"""
    def deco(fn: Handler) -> Handler:
        async def endpoint(request: Request) -> Response:
            services: Services = request.app.state.services
            params = await read_params(request)
            if in_memory is not None and in_memory(services, params):
                return json_response(fn(services, params, request))
            return json_response(await run_in_threadpool(fn, services, params, request))

        endpoint.__name__ = fn.__name__
        if in_memory is not None:
            setattr(endpoint, _IN_MEMORY, (fn, in_memory))
        router.add_api_route(path, endpoint, methods=list(methods), summary=summary or (fn.__doc__ or "").split("\n")[0],
                             response_class=Response)
        return fn

    return deco
