"""Authentication and permissions: the domain, as plain functions over plain data. No I/O.

* :mod:`auth._state` — :class:`AuthState` (users, API tokens, grants) and the
  fold of auth events (:mod:`producer.auth_events`): ``fold(events)``;
  ``as_of`` = fold of the events up to a time.
* :mod:`auth._decide` — commands: validate against the state, return event
  bodies (``create_user``, ``set_experiment_permission`` ...).
* :mod:`auth._access` — MLflow's permission model (``READ``, ``EDIT``,
  ``MANAGE``, ``NO_PERMISSIONS``, a default permission, admins) and the
  decision ``may(state, principal, kind, resource_id, action, default)``;
  ``readable_filter`` for row filtering.
* :mod:`auth._credentials` — ``Authorization`` header parsing, API tokens.
* :mod:`auth._throttle` — failed-login backoff per user and per address.
* :mod:`auth._passwords` — argon2id hashing (argon2-cffi, imported on use).

The server's side (the middleware, the rule of every route, the REST API)
is in :mod:`query.auth`.
"""

from ._access import (
    EDIT,
    MANAGE,
    NO_PERMISSIONS,
    PERMISSIONS,
    READ,
    Action,
    Permission,
    Principal,
    ReadableSet,
    ResourceKind,
    effective_permission,
    may,
    permission_named,
    readable_filter,
)
from ._credentials import (
    TOKEN_PREFIX,
    BasicCredentials,
    BearerCredentials,
    cache_key,
    looks_like_token,
    new_token,
    parse_authorization,
    token_sha256,
)
from ._decide import (
    MIN_PASSWORD_LEN,
    check_password,
    check_username,
    create_token,
    create_user,
    delete_experiment_permission,
    delete_model_permission,
    delete_user,
    move_model_grants,
    revoke_token,
    set_experiment_permission,
    set_model_permission,
    update_admin,
    update_password,
)
from ._passwords import hash_password, verify_password
from ._state import EMPTY, AuthState, Token, User, apply, fold
from ._throttle import LoginThrottle

__all__ = [
    "AuthState", "User", "Token", "EMPTY", "apply", "fold",
    "Permission", "PERMISSIONS", "READ", "EDIT", "MANAGE", "NO_PERMISSIONS", "Action", "ResourceKind",
    "Principal", "ReadableSet", "effective_permission", "may", "permission_named", "readable_filter",
    "BasicCredentials", "BearerCredentials", "parse_authorization", "TOKEN_PREFIX", "new_token", "token_sha256",
    "cache_key", "looks_like_token",
    "MIN_PASSWORD_LEN", "check_username", "check_password", "create_user", "update_password", "update_admin",
    "delete_user", "set_experiment_permission", "delete_experiment_permission", "set_model_permission",
    "delete_model_permission", "move_model_grants", "create_token", "revoke_token",
    "hash_password", "verify_password",
    "LoginThrottle",
]
