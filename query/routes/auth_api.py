"""runledger's own auth API under /api/v1/auth: who am I, API tokens, and the audited history.

* ``GET /api/v1/auth/me`` — the caller and their grants;
* ``POST /api/v1/auth/tokens`` ``{"name": "ci", "username": "..."}`` — a new API token, shown **once**
  (only its SHA-256 is kept); ``username`` other than oneself needs an admin;
* ``GET /api/v1/auth/tokens`` — one's tokens (an admin: everyone's), never their values;
* ``DELETE /api/v1/auth/tokens/{token_id}`` — revoke (one's own, or any as an admin);
* ``GET /api/v1/auth/users?as_of=``, ``GET /api/v1/auth/permissions?as_of=`` — users and grants now or as
  they were at a time (admins);
* ``GET /api/v1/auth/events?as_of=`` — the audit trail: every user, token and permission change, who and
  when (hashes left out).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, StrictStr

import auth
from auth import AuthState
from producer.errors import NotFoundError, PermissionDeniedError
from producer.ids import new_id

from ..auth.guard import principal_of
from ..auth.service import AuthService, auth_service
from ..errors_http import parse_time_ms
from ..registry_json import iso
from ..services import Services, get_services
from .registry import actor_of

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

AS_OF = Query(None, description="as it was then: ISO 8601 (2026-11-20T10:00:00Z) or epoch ms")
_SECRET_FIELDS = frozenset({"password_hash", "token_sha256"})


def _service(services: Services = Depends(get_services)) -> AuthService:
    return auth_service(services)


def _caller(request: Request) -> auth.Principal:
    principal = principal_of(request)
    return principal if principal is not None else auth.Principal(actor_of(request), True, "none")


class NewToken(BaseModel):
    name: StrictStr = ""
    username: StrictStr | None = None


def _token_json(t: auth.Token) -> dict[str, Any]:
    return {"token_id": t.token_id, "username": t.username, "name": t.name, "created_ms": t.created_ms,
            "created": iso(t.created_ms), "created_by": t.created_by}


def _users_json(state: AuthState) -> list[dict[str, Any]]:
    return [{"id": u.user_id, "username": u.username, "is_admin": u.is_admin, "created_ms": u.created_ms}
            for u in sorted(state.users.values(), key=lambda u: u.user_id)]


@router.get("/me", summary="The caller: username, admin or not, grants")
def me(request: Request, service: AuthService = Depends(_service)) -> dict[str, Any]:
    caller = _caller(request)
    state = service.state()
    return {"username": caller.username, "is_admin": caller.is_admin, "via": caller.via, "auth": service.enabled,
            "default_permission": service.default_permission.name,
            "experiment_permissions": {e: p for (e, u), p in state.experiment_permissions.items()
                                       if u == caller.username},
            "registered_model_permissions": {n: p for (n, u), p in state.model_permissions.items()
                                             if u == caller.username}}


@router.post("/tokens", summary="Create an API token (its value is shown once)")
def create_token(body: NewToken, request: Request, service: AuthService = Depends(_service)) -> dict[str, Any]:
    caller = _caller(request)
    username = body.username or caller.username
    if username != caller.username and not caller.is_admin:
        raise PermissionDeniedError("only an admin may create a token for another user")
    token, token_id = auth.new_token(), new_id()
    digest = auth.token_sha256(token)
    service.execute(lambda s: auth.create_token(s, username, token_id, body.name, digest), actor_of(request))
    return {"token": token, **_token_json(service.state().tokens[token_id])}


@router.get("/tokens", summary="API tokens (one's own; every token for an admin); never their values")
def list_tokens(request: Request, service: AuthService = Depends(_service)) -> dict[str, Any]:
    caller = _caller(request)
    tokens = [t for t in service.state().tokens.values() if caller.is_admin or t.username == caller.username]
    return {"tokens": [_token_json(t) for t in sorted(tokens, key=lambda t: t.created_ms)]}


@router.delete("/tokens/{token_id}", summary="Revoke an API token")
def revoke_token(token_id: str, request: Request, service: AuthService = Depends(_service)) -> dict[str, Any]:
    caller = _caller(request)
    found = service.state().tokens.get(token_id)
    if found is None or (found.username != caller.username and not caller.is_admin):
        raise NotFoundError(f"API token {token_id!r} not found (or already revoked)")
    service.execute(lambda s: auth.revoke_token(s, token_id), actor_of(request))
    return {"revoked": token_id}


@router.get("/users", summary="Users now, or as they were at a time (admins)")
async def users(as_of: str | None = AS_OF, service: AuthService = Depends(_service)) -> dict[str, Any]:
    t = parse_time_ms(as_of)
    state = await run_in_threadpool(service.state_as_of, t)
    return {"as_of_ms": t, "users": _users_json(state)}


@router.get("/permissions", summary="Every explicit grant now, or as it was at a time (admins)")
async def permissions(as_of: str | None = AS_OF, service: AuthService = Depends(_service)) -> dict[str, Any]:
    t = parse_time_ms(as_of)
    state = await run_in_threadpool(service.state_as_of, t)
    return {"as_of_ms": t, "default_permission": service.default_permission.name,
            "experiments": [{"experiment_id": e, "username": u, "permission": p}
                            for (e, u), p in sorted(state.experiment_permissions.items())],
            "registered_models": [{"name": n, "username": u, "permission": p}
                                  for (n, u), p in sorted(state.model_permissions.items())]}


@router.get("/events", summary="The audit trail of users, tokens and permissions (admins; no hashes)")
async def events(as_of: str | None = AS_OF, service: AuthService = Depends(_service)) -> dict[str, Any]:
    t = parse_time_ms(as_of)
    found = await run_in_threadpool(lambda: list(service.events(t)))
    return {"as_of_ms": t, "events": [
        {"event_id": e.id, "ts_ms": e.ts_ms, "time": iso(e.ts_ms), "actor": e.actor, "type": e.type,
         "body": {k: v for k, v in e.body.to_wire().items() if k not in _SECRET_FIELDS}} for e in found]}
