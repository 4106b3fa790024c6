"""Small in-memory MLflow reads answered before the web framework: :class:`FastReads`.

A ``runs/get`` or ``experiments/search`` answered from the read model costs ~0.1 ms in its handler; going
through Starlette's middleware stack, the router's match over a few hundred routes, FastAPI's dependency
resolution and its response class costs ~1 ms more, which is most of what a client waits on this machine.
So the endpoints registered with ``mlflow_route(..., in_memory=...)`` are looked up by (method, exact path)
in one dict and, when their ``in_memory`` predicate holds, their handler is called right here and the JSON
sent as is: the same function, the same parameters (:func:`query_params` is ``read_params``' parsing), the
same bytes as the routed answer.

Anything else takes the normal route, unchanged: auth on (every rule and audit stays where it is), a path or
method not in the table, a request the predicate refuses (a run with inputs read from ClickHouse), and any
request whose handling raises — bad parameters, an unknown run — which the routed handler then answers with
MLflow's errors (the read runs again; it has no side effect). The body read here is handed on to it.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request
from fastapi.routing import APIRoute, APIRouter

from ..auth.guard import ASGIApp, Receive, Scope, Send, auth_of
from .request import body_params
from .routing import Handler, InMemory, fast_entry

__all__ = ["FastReads", "fast_routes", "query_params"]

Route = tuple[Handler, InMemory]
_JSON_HEADERS = [(b"content-type", b"application/json")]


def fast_routes(mounted: Iterable[tuple[str, APIRouter]]) -> dict[tuple[str, str], Route]:
    """(method, path) -> (handler, predicate) for every endpoint registered with an ``in_memory``, from the
    (prefix, router) pairs as mounted."""
    table: dict[tuple[str, str], Route] = {}
    for prefix, router in mounted:
        for route in router.routes:
            if not isinstance(route, APIRoute) or "{" in route.path:
                continue
            entry = fast_entry(route.endpoint)
            if entry is not None:
                for method in route.methods or ():
                    table.setdefault((method, prefix + route.path), entry)
    return table


def query_params(query_string: bytes) -> dict[str, Any]:
    """As ``read_params`` reads ``request.query_params`` (Starlette parses with ``keep_blank_values``):
    repeated keys, and keys ending in ``[]``, become lists."""
    values: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        values.setdefault(key, []).append(value)
    return {k: v if len(v) > 1 or k.endswith("[]") else v[0] for k, v in values.items()}


class FastReads:
    """ASGI middleware; see the module docstring. ``table``: :func:`fast_routes` of the mounted routers."""

    def __init__(self, app: ASGIApp, table: dict[tuple[str, str], Route]) -> None:
        self.app = app
        self.table = table

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self.table.get((scope.get("method", ""), scope.get("path", ""))) if scope["type"] == "http" else None
        state = scope["app"].state if entry is not None and "app" in scope else None
        services = getattr(state, "services", None)
        if entry is None or services is None or auth_of(state) is not None:
            await self.app(scope, receive, send)
            return
        body = b""
        if scope["method"] != "GET":
            body = await _read_body(receive)
        fn, in_memory = entry
        try:
            params = query_params(scope.get("query_string", b""))
            if body.strip():
                params.update(body_params(body))
            payload = None
            if in_memory(services, params):
                payload = orjson.dumps(fn(services, params, Request(scope, _replay(body, receive))))
        except Exception:  # the routed handler answers it, with MLflow's error shape
            payload = None
        if payload is None:
            await self.app(scope, _replay(body, receive), send)
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [*_JSON_HEADERS, (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the already read ``body`` once, then the connection's own messages."""
    sent = False

    async def replay() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
