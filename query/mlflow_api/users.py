"""MLflow's basic-auth REST API (``mlflow.server.get_app_client("basic-auth", ...)``): users, experiment and
registered-model permissions, and MLflow 3's per-user grant / revoke / get. Every change is an auth event
(:mod:`producer.auth_events`) with the caller as actor. Who may call each route: query/auth/rules.py."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

import auth
from auth import AuthState
from producer.errors import ContractError, NotFoundError, UnauthenticatedError

from ..auth.guard import principal_of
from ..auth.service import AuthService, auth_service
from ..routes.registry import actor_of
from ..services import Services
from .errors import MlflowError, invalid
from .request import required_str
from .routing import mlflow_route

router = APIRouter()


def _svc(services: Services) -> AuthService:
    return auth_service(services)


def user_json(state: AuthState, user: auth.User) -> dict[str, Any]:
    return {
        "id": user.user_id, "username": user.username, "is_admin": user.is_admin,
        "experiment_permissions": [{"experiment_id": e, "user_id": user.user_id, "permission": p}
                                   for (e, u), p in sorted(state.experiment_permissions.items()) if u == user.username],
        "registered_model_permissions": [{"name": n, "user_id": user.user_id, "permission": p}
                                         for (n, u), p in sorted(state.model_permissions.items())
                                         if u == user.username],
    }


def _user(state: AuthState, username: str) -> auth.User:
    user = state.users.get(username)
    if user is None:
        raise NotFoundError(f"User with username={username} not found")
    return user


def _bool(params: dict[str, Any], name: str) -> bool:
    value = params.get(name)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise invalid(f"Missing or invalid value for required parameter '{name}': expected a boolean")


@mlflow_route(router, "/users/create", "POST")
def create_user(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Create a user (admins only)."""
    username = auth.check_username(required_str(params, "username"))
    digest = auth.hash_password(auth.check_password(required_str(params, "password")))
    svc = _svc(services)
    svc.execute(lambda s: auth.create_user(s, username, digest), actor_of(request))
    state = svc.state()
    return {"user": user_json(state, _user(state, username))}


@mlflow_route(router, "/users/get", "GET")
def get_user(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """A user with their permissions (oneself, or anyone for an admin)."""
    state = _svc(services).state()
    return {"user": user_json(state, _user(state, required_str(params, "username")))}


@mlflow_route(router, "/users/current", "GET")
def current_user(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The caller. With authentication off there is no such endpoint, as on the stock server (which registers
    the users routes only with its basic-auth app): 404, which the web UI reads as "no logins"."""
    principal = principal_of(request)
    if principal is None:
        raise MlflowError("ENDPOINT_NOT_FOUND", "authentication is off: there is no current user", status=404)
    state = _svc(services).state()
    return {"user": user_json(state, _user(state, principal.username))}


@mlflow_route(router, "/users/list", "GET")
def list_users(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Every user (admins only)."""
    state = _svc(services).state()
    return {"users": [user_json(state, u) for u in sorted(state.users.values(), key=lambda u: u.user_id)]}


@mlflow_route(router, "/users/update-password", "PATCH")
def update_password(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Change a password; changing one's own needs ``current_password`` (as MLflow)."""
    username = required_str(params, "username")
    svc = _svc(services)
    principal = principal_of(request)
    if principal is not None and principal.username == username:
        current = params.get("current_password")
        if not isinstance(current, str) or not auth.verify_password(_user(svc.state(), username).password_hash,
                                                                    current):
            raise UnauthenticatedError("current_password is missing or wrong: it is required to change "
                                       "your own password")
    digest = auth.hash_password(auth.check_password(required_str(params, "password")))
    svc.execute(lambda s: auth.update_password(s, username, digest), actor_of(request))
    return {}


@mlflow_route(router, "/users/update-admin", "PATCH")
def update_admin(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Make a user an admin, or not (admins only)."""
    username, is_admin = required_str(params, "username"), _bool(params, "is_admin")
    _svc(services).execute(lambda s: auth.update_admin(s, username, is_admin), actor_of(request))
    return {}


@mlflow_route(router, "/users/delete", "DELETE")
def delete_user(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Delete a user with their grants and tokens (admins only; never oneself)."""
    username, actor = required_str(params, "username"), actor_of(request)
    _svc(services).execute(lambda s: auth.delete_user(s, username, actor=actor), actor)
    return {}


# ---------------------------------------------------------------- experiments


def _experiment_permission(services: Services, experiment_id: str, username: str) -> dict[str, Any]:
    state = _svc(services).state()
    user = _user(state, username)
    permission = state.experiment_permissions.get((experiment_id, username))
    if permission is None:
        raise NotFoundError(f"Experiment permission with experiment_id={experiment_id} and username={username} "
                            "not found")
    return {"experiment_permission": {"experiment_id": experiment_id, "user_id": user.user_id,
                                      "permission": permission}}


def _set_experiment(services: Services, params: dict[str, Any], request: Request, create: bool) -> dict[str, Any]:
    experiment_id, username = required_str(params, "experiment_id"), required_str(params, "username")
    permission = required_str(params, "permission")
    _svc(services).execute(lambda s: auth.set_experiment_permission(s, experiment_id, username, permission,
                                                                    create=create), actor_of(request))
    return _experiment_permission(services, experiment_id, username)


@mlflow_route(router, "/experiments/permissions/create", "POST")
def create_experiment_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Grant a user a permission on an experiment (MANAGE on it, or admin)."""
    return _set_experiment(services, params, request, True)


@mlflow_route(router, "/experiments/permissions/get", "GET")
def get_experiment_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """A user's explicit permission on an experiment."""
    return _experiment_permission(services, required_str(params, "experiment_id"), required_str(params, "username"))


@mlflow_route(router, "/experiments/permissions/update", "PATCH")
def update_experiment_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Change a user's permission on an experiment."""
    return _set_experiment(services, params, request, False)


@mlflow_route(router, "/experiments/permissions/delete", "DELETE")
def delete_experiment_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Remove a user's permission on an experiment (the default permission applies again)."""
    experiment_id, username = required_str(params, "experiment_id"), required_str(params, "username")
    _svc(services).execute(lambda s: auth.delete_experiment_permission(s, experiment_id, username), actor_of(request))
    return {}


# ---------------------------------------------------------- registered models


def _model_permission(services: Services, name: str, username: str) -> dict[str, Any]:
    state = _svc(services).state()
    user = _user(state, username)
    permission = state.model_permissions.get((name, username))
    if permission is None:
        raise NotFoundError(f"Registered model permission with name={name} and username={username} not found")
    return {"registered_model_permission": {"name": name, "user_id": user.user_id, "permission": permission}}


def _set_model(services: Services, params: dict[str, Any], request: Request, create: bool) -> dict[str, Any]:
    name, username = required_str(params, "name"), required_str(params, "username")
    permission = required_str(params, "permission")
    _svc(services).execute(lambda s: auth.set_model_permission(s, name, username, permission, create=create),
                           actor_of(request))
    return _model_permission(services, name, username)


@mlflow_route(router, "/registered-models/permissions/create", "POST")
def create_model_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Grant a user a permission on a registered model."""
    return _set_model(services, params, request, True)


@mlflow_route(router, "/registered-models/permissions/get", "GET")
def get_model_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """A user's explicit permission on a registered model."""
    return _model_permission(services, required_str(params, "name"), required_str(params, "username"))


@mlflow_route(router, "/registered-models/permissions/update", "PATCH")
def update_model_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Change a user's permission on a registered model."""
    return _set_model(services, params, request, False)


@mlflow_route(router, "/registered-models/permissions/delete", "DELETE")
def delete_model_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Remove a user's permission on a registered model."""
    name, username = required_str(params, "name"), required_str(params, "username")
    _svc(services).execute(lambda s: auth.delete_model_permission(s, name, username), actor_of(request))
    return {}


# ------------------------------------------------- MLflow 3: per-user grants


def _resource(params: dict[str, Any]) -> tuple[str, str]:
    kind = required_str(params, "resource_type")
    if kind not in ("experiment", "registered_model"):
        raise ContractError(f"Invalid resource type '{kind}'. runledger grants on: ('experiment', 'registered_model')")
    return kind, required_str(params, "resource_id")


@mlflow_route(router, "/users/permissions/grant", "POST")
def grant_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Set a user's permission on an experiment or a registered model (created or replaced)."""
    kind, rid = _resource(params)
    username, permission = required_str(params, "username"), required_str(params, "permission")

    def decide(s: AuthState) -> list[Any]:
        grants = s.experiment_permissions if kind == "experiment" else s.model_permissions
        create = (rid, username) not in grants
        if kind == "experiment":
            return auth.set_experiment_permission(s, rid, username, permission, create=create)
        return auth.set_model_permission(s, rid, username, permission, create=create)

    _svc(services).execute(decide, actor_of(request))
    return {}


@mlflow_route(router, "/users/permissions/revoke", "POST")
def revoke_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """Remove a user's permission on an experiment or a registered model."""
    kind, rid = _resource(params)
    username = required_str(params, "username")
    if kind == "experiment":
        _svc(services).execute(lambda s: auth.delete_experiment_permission(s, rid, username), actor_of(request))
    else:
        _svc(services).execute(lambda s: auth.delete_model_permission(s, rid, username), actor_of(request))
    return {}


@mlflow_route(router, "/users/permissions/get", "GET")
def get_permission(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """A user's effective permission on a resource (their grant, else the default; admins MANAGE)."""
    kind, rid = _resource(params)
    svc = _svc(services)
    state = svc.state()
    user = _user(state, required_str(params, "username"))
    permission = auth.MANAGE if user.is_admin else auth.effective_permission(
        state, user.username, "experiment" if kind == "experiment" else "registered_model", rid,
        svc.default_permission)
    return {"allowed": permission.can_read, "permission": permission.name}
