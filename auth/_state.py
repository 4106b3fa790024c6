"""The auth state and its fold: users, API tokens, per-experiment and per-model permissions.

``fold(events)`` builds an :class:`AuthState` from auth events in log order;
``apply(state, event)`` is one step of it. ``apply`` returns a **new** state
and never changes the one it is given (the server swaps the new one in after
a write, while requests keep reading the old one), so ``fold(events[:k])`` is
the state as of the k-th event — which is how ``as_of`` reads work.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from producer import auth_events as ae
from producer.events import Event

__all__ = ["User", "Token", "AuthState", "EMPTY", "apply", "fold"]


@dataclass(frozen=True, slots=True)
class User:
    username: str
    password_hash: str
    """argon2 hash (PHC string) of the password; never the password."""
    is_admin: bool
    user_id: int
    """1, 2, 3 ... in creation order (MLflow's users have integer ids); never reused."""
    created_ms: int


@dataclass(frozen=True, slots=True)
class Token:
    token_id: str
    username: str
    name: str
    token_sha256: str
    """SHA-256 (hex) of the token's value; the value itself is shown once, at creation."""
    created_ms: int
    created_by: str


@dataclass(frozen=True, slots=True)
class AuthState:
    users: dict[str, User] = field(default_factory=dict)
    experiment_permissions: dict[tuple[str, str], str] = field(default_factory=dict)
    """(experiment id, username) -> permission name."""
    model_permissions: dict[tuple[str, str], str] = field(default_factory=dict)
    """(registered model name, username) -> permission name."""
    tokens: dict[str, Token] = field(default_factory=dict)
    """token id -> live (not revoked) token."""
    token_ids_by_sha256: dict[str, str] = field(default_factory=dict)
    next_user_id: int = 1
    events: int = 0
    """How many auth events were folded (a version number of this state)."""
    last_ts_ms: int = 0


EMPTY = AuthState()


def apply(state: AuthState, event: Event) -> AuthState:
    """``state`` after ``event`` (a new object; ``state`` is untouched). Non-auth events change nothing."""
    b = event.body
    s = replace(state, events=state.events + 1, last_ts_ms=max(state.last_ts_ms, event.ts_ms))
    if isinstance(b, ae.UserCreated):
        if b.username in s.users:
            return s
        users = {**s.users, b.username: User(b.username, b.password_hash, b.is_admin, s.next_user_id, event.ts_ms)}
        return replace(s, users=users, next_user_id=s.next_user_id + 1)
    if isinstance(b, ae.UserPasswordUpdated | ae.UserAdminUpdated):
        user = s.users.get(b.username)
        if user is None:
            return s
        if isinstance(b, ae.UserPasswordUpdated):
            user = replace(user, password_hash=b.password_hash)
        else:
            user = replace(user, is_admin=b.is_admin)
        return replace(s, users={**s.users, b.username: user})
    if isinstance(b, ae.UserDeleted):
        if b.username not in s.users:
            return s
        users = {k: v for k, v in s.users.items() if k != b.username}
        tokens = {k: t for k, t in s.tokens.items() if t.username != b.username}
        return replace(
            s, users=users, tokens=tokens,
            token_ids_by_sha256={t.token_sha256: t.token_id for t in tokens.values()},
            experiment_permissions={k: p for k, p in s.experiment_permissions.items() if k[1] != b.username},
            model_permissions={k: p for k, p in s.model_permissions.items() if k[1] != b.username})
    if isinstance(b, ae.ExperimentPermissionSet):
        return replace(s, experiment_permissions={**s.experiment_permissions,
                                                  (b.experiment_id, b.username): b.permission})
    if isinstance(b, ae.ExperimentPermissionDeleted):
        perms = dict(s.experiment_permissions)
        perms.pop((b.experiment_id, b.username), None)
        return replace(s, experiment_permissions=perms)
    if isinstance(b, ae.RegisteredModelPermissionSet):
        return replace(s, model_permissions={**s.model_permissions, (b.name, b.username): b.permission})
    if isinstance(b, ae.RegisteredModelPermissionDeleted):
        perms = dict(s.model_permissions)
        perms.pop((b.name, b.username), None)
        return replace(s, model_permissions=perms)
    if isinstance(b, ae.ApiTokenCreated):
        if b.username not in s.users or b.token_id in s.tokens:
            return s
        token = Token(b.token_id, b.username, b.name, b.token_sha256, event.ts_ms, event.actor)
        return replace(s, tokens={**s.tokens, b.token_id: token},
                       token_ids_by_sha256={**s.token_ids_by_sha256, b.token_sha256: b.token_id})
    if isinstance(b, ae.ApiTokenRevoked):
        if b.token_id not in s.tokens:
            return s
        return replace(s, tokens={k: t for k, t in s.tokens.items() if k != b.token_id},
                       token_ids_by_sha256={k: v for k, v in s.token_ids_by_sha256.items() if v != b.token_id})
    return state


def fold(events: Iterable[Event], initial: AuthState = EMPTY) -> AuthState:
    """The state after ``events`` (in log order), starting from ``initial``; one new object, built in bulk."""
    users = dict(initial.users)
    exp = dict(initial.experiment_permissions)
    models = dict(initial.model_permissions)
    tokens = dict(initial.tokens)
    next_id, n, last = initial.next_user_id, initial.events, initial.last_ts_ms
    # Bulk fold with the same rules as ``apply`` (``tests/unit/test_auth.py`` checks they agree).
    for event in events:
        b = event.body
        n += 1
        last = max(last, event.ts_ms)
        if isinstance(b, ae.UserCreated):
            if b.username not in users:
                users[b.username] = User(b.username, b.password_hash, b.is_admin, next_id, event.ts_ms)
                next_id += 1
        elif isinstance(b, ae.UserPasswordUpdated):
            if b.username in users:
                users[b.username] = replace(users[b.username], password_hash=b.password_hash)
        elif isinstance(b, ae.UserAdminUpdated):
            if b.username in users:
                users[b.username] = replace(users[b.username], is_admin=b.is_admin)
        elif isinstance(b, ae.UserDeleted):
            if users.pop(b.username, None) is not None:
                tokens = {k: t for k, t in tokens.items() if t.username != b.username}
                exp = {k: p for k, p in exp.items() if k[1] != b.username}
                models = {k: p for k, p in models.items() if k[1] != b.username}
        elif isinstance(b, ae.ExperimentPermissionSet):
            exp[(b.experiment_id, b.username)] = b.permission
        elif isinstance(b, ae.ExperimentPermissionDeleted):
            exp.pop((b.experiment_id, b.username), None)
        elif isinstance(b, ae.RegisteredModelPermissionSet):
            models[(b.name, b.username)] = b.permission
        elif isinstance(b, ae.RegisteredModelPermissionDeleted):
            models.pop((b.name, b.username), None)
        elif isinstance(b, ae.ApiTokenCreated):
            if b.username in users and b.token_id not in tokens:
                tokens[b.token_id] = Token(b.token_id, b.username, b.name, b.token_sha256, event.ts_ms, event.actor)
        elif isinstance(b, ae.ApiTokenRevoked):
            tokens.pop(b.token_id, None)
        else:
            n -= 1
    return AuthState(users=users, experiment_permissions=exp, model_permissions=models, tokens=tokens,
                     token_ids_by_sha256={t.token_sha256: t.token_id for t in tokens.values()},
                     next_user_id=next_id, events=n, last_ts_ms=last)
