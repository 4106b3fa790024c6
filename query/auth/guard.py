"""Enforcement: :class:`AuthMiddleware` authenticates every request (API, web pages, static files alike);
:func:`authorize` (a dependency of every route) applies the route's rule from :mod:`query.auth.rules`.

* No or bad credentials: **401** with ``WWW-Authenticate: Basic realm="runledger"`` (a browser shows
  its login box), in MLflow's error shape under MLflow's prefixes. Only ``public`` routes answer
  without credentials.
* A known user without the permission: **403**, ``{"error_code": "PERMISSION_DENIED", ...}`` under
  MLflow's prefixes, ``{"error": {"code": "PERMISSION_DENIED", ...}}`` elsewhere.
* Failed logins are slowed per user and per client address (:class:`auth.LoginThrottle`): the answer
  waits with ``asyncio.sleep``, so the event loop keeps serving everyone else; argon2 runs in a worker
  thread for the same reason.

The principal is kept in the ASGI scope (``scope["runledger.principal"]``); :func:`principal_of` reads it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from fastapi import Request
from fastapi.concurrency import run_in_threadpool

import auth
import registry as reg
from auth import BasicCredentials, Principal
from producer.errors import ContractError, PermissionDeniedError, UnauthenticatedError

from .rules import Rule, rule_for
from .service import AuthService

__all__ = ["AuthMiddleware", "authorize", "principal_of", "PRINCIPAL_KEY", "CHALLENGE", "auth_of", "grant_creator",
           "move_model_grants",
           "readable_for", "require"]

PRINCIPAL_KEY = "runledger.principal"
CHALLENGE = 'Basic realm="runledger", charset="UTF-8"'
_PUBLIC_PATHS = frozenset({"/health", "/api/v1/health"})

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def auth_of(app_state: Any) -> AuthService | None:
    """The running auth service when auth is on, else None."""
    services = getattr(app_state, "services", None)
    service = services.extras.get("auth") if services is not None else None
    return service if isinstance(service, AuthService) and service.enabled else None


class AuthMiddleware:
    """Authenticate every HTTP request when auth is on (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        service = auth_of(scope["app"].state)
        if service is None or scope["path"] in _PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        try:
            scope[PRINCIPAL_KEY] = await _authenticate(service, scope)
        except UnauthenticatedError as exc:
            await _unauthorized(scope, send, str(exc))
            return
        await self.app(scope, receive, send)


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return ""


async def _authenticate(service: AuthService, scope: Scope) -> Principal:
    if service.services.log.mode != "embedded":
        await run_in_threadpool(service.maybe_refresh)
    creds = auth.parse_authorization(_header(scope, b"authorization"))
    if creds is None:
        raise UnauthenticatedError("authentication required: HTTP Basic (username and password or API token) "
                                   "or Bearer (API token)")
    client = scope.get("client")
    keys = [f"ip:{client[0] if client else '-'}"]
    if isinstance(creds, BasicCredentials):
        keys.append(f"user:{creds.username}")
    try:
        principal = service.cached(creds)
        if principal is not None:
            return principal
        assert isinstance(creds, BasicCredentials)
        delay = service.throttle.delay_s(keys, time.monotonic())
        if delay:
            await asyncio.sleep(delay)
        async with service.verify_slots:
            principal = await run_in_threadpool(service.verify, creds)
    except UnauthenticatedError:
        service.throttle.failed(keys, time.monotonic())
        raise
    service.throttle.succeeded(keys[1:])
    return principal


async def _unauthorized(scope: Scope, send: Send, message: str) -> None:
    from ..mlflow_api import is_mlflow_path

    body: dict[str, Any]
    if is_mlflow_path(scope["path"]):
        body = {"error_code": "UNAUTHENTICATED", "message": message}
    else:
        body = {"error": {"code": "UNAUTHENTICATED", "message": message}}
    raw = orjson.dumps(body)
    await send({"type": "http.response.start", "status": 401, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
        (b"www-authenticate", CHALLENGE.encode())]})
    await send({"type": "http.response.body", "body": raw})


def principal_of(request: Request) -> Principal | None:
    """The authenticated caller (None when auth is off)."""
    found = request.scope.get(PRINCIPAL_KEY)
    return found if isinstance(found, Principal) else None


def require(request: Request) -> tuple[AuthService, Principal] | None:
    """(service, principal) when auth is on, else None."""
    service = auth_of(request.app.state)
    principal = principal_of(request)
    if service is None or principal is None:
        return None
    return service, principal


def readable_for(request: Request, kind: auth.ResourceKind) -> auth.ReadableSet | None:
    """What the caller may read of ``kind`` (None: everything — auth off or an admin)."""
    found = require(request)
    if found is None or found[1].is_admin:
        return None
    return found[0].readable(found[1], kind)


async def authorize(request: Request) -> None:
    """Dependency of every route: apply the route's rule (nothing when auth is off)."""
    found = require(request)
    if found is None:
        return
    service, principal = found
    route = request.scope.get("route")
    path = getattr(route, "path", "")
    rule = rule_for(path, request.method)
    if rule is None:
        raise PermissionDeniedError(f"no access rule is declared for {request.method} {path}; refused")
    if rule.need in ("public", "user"):
        return
    if principal.is_admin:
        return
    if rule.need == "admin":
        raise PermissionDeniedError(f"{request.method} {request.url.path} is for admins only")
    values = await _values(request, rule)
    allowed = await run_in_threadpool(_allowed, service, principal, rule, values)
    if not allowed:
        raise PermissionDeniedError(f"Permission denied: {principal.username} may not {rule.action} this "
                                    f"{'registered model' if rule.need in _MODEL_NEEDS else 'experiment'}")


_MODEL_NEEDS = frozenset({"registered_model", "model_uri", "resource"})


def check_as_route(request: Request, path: str, method: str, params: dict[str, Any]) -> None:
    """Apply the rule of the route ``(path, method)`` to ``params`` (sync, for a worker thread): what
    ``/graphql`` does before each root field runs the REST handler of that route, so GraphQL cannot reach
    what REST refuses."""
    found = require(request)
    if found is None:
        return
    service, principal = found
    rule = rule_for(path, method)
    if rule is None:
        raise PermissionDeniedError(f"no access rule is declared for {method} {path}; refused")
    if rule.need in ("public", "user") or principal.is_admin:
        return
    if rule.need == "admin" or not _allowed(service, principal, rule, params):
        raise PermissionDeniedError(f"Permission denied: {principal.username} may not {rule.action} this "
                                    f"{'registered model' if rule.need in _MODEL_NEEDS else 'experiment'}")


async def _values(request: Request, rule: Rule) -> dict[str, Any]:
    """The request's parameters as MLflow reads them (query string, then the JSON body) and path parameters."""
    out: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        out[key] = values if len(values) > 1 or key.endswith("[]") else values[0]
    if request.method in ("POST", "PATCH", "PUT", "DELETE") and not rule.source.startswith("path:") \
            and rule.need != "artifact":
        raw = await request.body()
        if raw.strip():
            try:
                body = orjson.loads(raw)
            except orjson.JSONDecodeError:
                body = None
            if isinstance(body, dict):
                out.update(body)
    for key, value in request.path_params.items():
        out[f"path:{key}"] = value
    return out


def _first(values: dict[str, Any], source: str) -> Any:
    value = values.get(source)
    if value is None and source == "run_id":
        value = values.get("run_uuid")
    return value


def _list(values: dict[str, Any], source: str) -> list[str]:
    value = values.get(source, values.get(source + "[]"))
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(v) for v in items]


def _allowed(service: AuthService, principal: Principal, rule: Rule, values: dict[str, Any]) -> bool:
    """Whether the rule lets ``principal`` through; a resource that does not exist passes (the route answers
    its own 404). Runs in a worker thread: finding a run's experiment may read ClickHouse."""
    need, action = rule.need, rule.action
    value = _first(values, rule.source)
    if need == "self_or_admin":
        return bool(value == principal.username)
    if need == "experiment":
        return not isinstance(value, str) or service.may(principal, "experiment", value, action)
    if need == "experiments":
        return all(service.may(principal, "experiment", e, action) for e in _list(values, rule.source))
    if need == "experiment_name":
        found = service.services.reads.experiment_by_name(value) if isinstance(value, str) else None
        return found is None or service.may(principal, "experiment", str(found["experiment_id"]), action)
    if need == "run":
        experiment = service.experiment_of_run(value) if isinstance(value, str) else None
        return experiment is None or service.may(principal, "experiment", experiment, action)
    if need == "runs":
        experiments = {service.experiment_of_run(r) for r in _list(values, rule.source)}
        return all(e is None or service.may(principal, "experiment", e, action) for e in experiments)
    if need == "logged_model":
        from ..mlflow_api.log_reads import LogReads

        model = LogReads(service.services.store).logged_models([str(value)]).get(str(value))
        return model is None or service.may(principal, "experiment", str(model["experiment_id"]), action)
    if need == "artifact":
        first = str(value or "").strip("/").split("/", 1)[0]
        return bool(first) and service.may(principal, "experiment", first, action)
    if need == "registered_model":
        return not isinstance(value, str) or service.may(principal, "registered_model", value, action)
    if need == "model_uri":
        try:
            name = reg.parse_models_uri(str(value)).name
        except ContractError:
            return True
        return service.may(principal, "registered_model", name, action)
    if need == "resource":
        kind, rid = values.get("resource_type"), values.get("resource_id")
        if kind not in ("experiment", "registered_model") or not isinstance(rid, str):
            return True  # the route refuses the request itself
        return service.may(principal, "experiment" if kind == "experiment" else "registered_model", rid, action)
    return False


def move_model_grants(request: Request, old_name: str, new_name: str) -> None:
    """A renamed registered model keeps its grants under its new name (auth on or off: grants are data)."""
    from ..routes.registry import actor_of

    service = getattr(getattr(request.app.state, "services", None), "extras", {}).get("auth")
    if isinstance(service, AuthService) and old_name != new_name:
        service.execute(lambda s: auth.move_model_grants(s, old_name, new_name), actor_of(request))


def grant_creator(request: Request, kind: auth.ResourceKind, resource_id: str) -> None:
    """As MLflow: whoever creates an experiment or a registered model gets MANAGE on it (auth on only)."""
    found = require(request)
    if found is None:
        return
    service, principal = found
    grants = service.state().experiment_permissions if kind == "experiment" else service.state().model_permissions
    if (resource_id, principal.username) in grants or principal.username not in service.state().users:
        return
    if kind == "experiment":
        service.execute(lambda s: auth.set_experiment_permission(s, resource_id, principal.username, "MANAGE",
                                                                 create=True), principal.username)
    else:
        service.execute(lambda s: auth.set_model_permission(s, resource_id, principal.username, "MANAGE",
                                                            create=True), principal.username)
