"""``AuthService``: the auth state of a running server — folded from the log, changed by commands, and
the credential checks with their caches.

* **State**: :func:`auth.fold` of the auth events in the log (``events``
  table, ``ORDER BY event_id``), at start-up; each command appends its events
  and folds them in. ``state_as_of(t)`` folds the events up to ``t``. In
  Kafka mode (several API processes) a process re-reads the log's auth
  events when their count changed, at most every ``refresh_s``.
* **Authentication**: Basic (username + password, or + an API token as the
  password) and Bearer (an API token). argon2 verification is slow on
  purpose (~50 ms), so a success is cached, keyed by a keyed BLAKE2b of
  (username, password), and valid while the user's password hash is the
  one that was verified — a password change or a delete voids it at once.
  Tokens are looked up by their SHA-256 in the state (a dict). A cache hit
  costs a hash and two dict lookups (microseconds).
* **Bootstrap**: with auth on and no user in the log, the admin comes from
  ``Settings.admin_username`` / ``admin_password`` (RUNLEDGER_ADMIN_USERNAME /
  RUNLEDGER_ADMIN_PASSWORD); with no password set the server refuses to start
  (there is no default password).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import auth
from auth import AuthState, BasicCredentials, BearerCredentials, Permission, Principal, ReadableSet, ResourceKind
from ingest.eventlog import EVENT_COLUMNS, row_to_event
from producer.auth_events import AUTH_ENTITY, AUTH_EVENT_TYPES
from producer.errors import ConflictError, ContractError, RunledgerError, UnauthenticatedError
from producer.events import Body, Event

if TYPE_CHECKING:
    from ..services import Services

__all__ = ["AuthService", "auth_service", "EXTRA_KEY", "BOOTSTRAP_ACTOR"]

log = logging.getLogger("runledger.auth")

EXTRA_KEY = "auth"
BOOTSTRAP_ACTOR = "runledger-bootstrap"
_TYPES_SQL = ", ".join(f"'{t}'" for t in sorted(AUTH_EVENT_TYPES))
_VERIFIED_MAX = 10_000
_RUN_EXPERIMENTS_MAX = 100_000


class AuthService:
    """See the module docstring."""

    def __init__(self, services: Services, *, enabled: bool, default_permission: Permission,
                 refresh_s: float = 1.0) -> None:
        self.services = services
        self.enabled = enabled
        self.default_permission = default_permission
        self.refresh_s = refresh_s
        self.throttle = auth.LoginThrottle()
        self.verify_slots = asyncio.Semaphore(max(1, (os.cpu_count() or 2) // 2))
        """At most this many argon2 checks at once (each takes ~64 MiB and a core for a while): a flood of
        wrong passwords waits its turn instead of taking every core and the memory."""
        self._state = auth.EMPTY
        self._lock = threading.Lock()
        self._verified: OrderedDict[bytes, str] = OrderedDict()
        self._readable: dict[tuple[int, str, str], ReadableSet] = {}
        self._run_experiments: OrderedDict[str, str] = OrderedDict()
        self._last_refresh = time.monotonic()
        self._distributed = services.log.mode != "embedded"

    # ------------------------------------------------------------------ state

    def state(self) -> AuthState:
        return self._state

    def events(self, until_ms: int | None = None) -> Iterator[Event]:
        where = f"type IN ({_TYPES_SQL}) AND entity = {{e:String}}"
        params: dict[str, Any] = {"e": AUTH_ENTITY}
        if until_ms is not None:
            where += " AND ts <= fromUnixTimestamp64Milli({t:Int64}, 'UTC')"
            params["t"] = until_ms
        for row in self.services.store.query_rows(
                f"SELECT {EVENT_COLUMNS} FROM events FINAL WHERE {where} ORDER BY event_id", params):
            yield row_to_event(row)

    def reload(self) -> int:
        state = auth.fold(self.events())
        with self._lock:
            self._state = state
            self._readable.clear()
        return state.events

    def state_as_of(self, as_of_ms: int | None) -> AuthState:
        """The state now (None), or as it was at ``as_of_ms`` (folded from the log)."""
        return self._state if as_of_ms is None else auth.fold(self.events(as_of_ms))

    def maybe_refresh(self) -> None:
        """Distributed mode: catch up with auth events other API processes wrote (at most every refresh_s)."""
        if not self._distributed or time.monotonic() - self._last_refresh < self.refresh_s:
            return
        self._last_refresh = time.monotonic()
        rows = self.services.store.query_rows(
            f"SELECT uniqExact(event_id) FROM events WHERE type IN ({_TYPES_SQL}) AND entity = {{e:String}}",
            {"e": AUTH_ENTITY})
        if rows and int(rows[0][0]) != self._state.events:
            self.reload()

    def execute(self, decide: Callable[[AuthState], list[Body]], actor: str) -> list[Event]:
        """Decide against the current state, append the events, fold them in (one command at a time)."""
        with self._lock:
            bodies = decide(self._state)
            if not bodies:
                return []
            events = [self.services.event(AUTH_ENTITY, b, actor=actor) for b in bodies]
            result = self.services.append(events)
            if result.rejected:
                raise ConflictError(result.rejected[0].reason)
            self._state = auth.fold(events, self._state)
            self._readable.clear()
            return events

    def bootstrap(self, username: str, password: str) -> None:
        """With no user in the log: create the first admin, or refuse to start without a password."""
        if self._state.users:
            return
        if not password:
            raise RunledgerError(
                "auth is on and there is no user yet: set RUNLEDGER_ADMIN_PASSWORD (and optionally "
                "RUNLEDGER_ADMIN_USERNAME, default 'admin') for the first start, or run "
                "`runledger auth create-user NAME --admin` before serving")
        auth.check_password(password)
        digest = auth.hash_password(password)
        self.execute(lambda s: auth.create_user(s, username, digest, is_admin=True), BOOTSTRAP_ACTOR)
        log.warning("auth: created the first admin user %r (from RUNLEDGER_ADMIN_PASSWORD)", username)

    # ------------------------------------------------------------ credentials

    def cached(self, creds: BasicCredentials | BearerCredentials) -> Principal | None:
        """The principal if these credentials verify without argon2 (a token, or a cached password); else None
        (call :meth:`verify` off the event loop). Raises UnauthenticatedError for a token that is not valid."""
        state = self._state
        if isinstance(creds, BearerCredentials):
            return self._token(state, creds.token, None)
        if auth.looks_like_token(creds.password):
            return self._token(state, creds.password, creds.username)
        user = state.users.get(creds.username)
        if user is None:
            return None
        if self._verified.get(auth.cache_key(creds.username, creds.password)) == user.password_hash:
            return Principal(user.username, user.is_admin, "basic")
        return None

    def _token(self, state: AuthState, token: str, username: str | None) -> Principal:
        token_id = state.token_ids_by_sha256.get(auth.token_sha256(token))
        found = state.tokens.get(token_id) if token_id else None
        user = state.users.get(found.username) if found else None
        if user is None or (username is not None and username != user.username):
            raise UnauthenticatedError("invalid or revoked API token")
        return Principal(user.username, user.is_admin, "token")

    def verify(self, creds: BasicCredentials) -> Principal:
        """Check a password with argon2 (slow: run in a worker thread); cache a success."""
        user = self._state.users.get(creds.username)
        if user is None:
            # Spend the same time as a real check, so response times do not tell which users exist.
            auth.verify_password(_DUMMY_HASH(), creds.password)
            raise UnauthenticatedError("invalid username or password")
        if not auth.verify_password(user.password_hash, creds.password):
            raise UnauthenticatedError("invalid username or password")
        key = auth.cache_key(creds.username, creds.password)
        with self._lock:
            self._verified[key] = user.password_hash
            self._verified.move_to_end(key)
            while len(self._verified) > _VERIFIED_MAX:
                self._verified.popitem(last=False)
        return Principal(user.username, user.is_admin, "basic")

    # ------------------------------------------------------------- decisions

    def may(self, principal: Principal, kind: ResourceKind, resource_id: str, action: auth.Action) -> bool:
        return auth.may(self._state, principal, kind, resource_id, action, self.default_permission)

    def readable(self, principal: Principal, kind: ResourceKind) -> ReadableSet:
        state = self._state
        key = (state.events, principal.username, kind)
        found = self._readable.get(key)
        if found is None:
            found = auth.readable_filter(state, principal, kind, self.default_permission)
            if len(self._readable) > 10_000:
                self._readable.clear()
            self._readable[key] = found
        return found

    def experiment_of_run(self, run_id: str) -> str | None:
        """The experiment a run belongs to (None if unknown); cached — a run never changes experiment."""
        found = self._run_experiments.get(run_id)
        if found is not None:
            return found
        rows = self.services.store.query_rows(
            "SELECT value FROM run_fields FINAL WHERE run_id = {r:String} AND field = 'experiment_id' LIMIT 1",
            {"r": run_id})
        if not rows or not rows[0][0]:
            return None
        experiment_id = str(rows[0][0])
        with self._lock:
            self._run_experiments[run_id] = experiment_id
            while len(self._run_experiments) > _RUN_EXPERIMENTS_MAX:
                self._run_experiments.popitem(last=False)
        return experiment_id


_dummy: list[str] = []


def _DUMMY_HASH() -> str:
    if not _dummy:
        _dummy.append(auth.hash_password("runledger-no-such-user"))
    return _dummy[0]


def auth_service(services: Services) -> AuthService:
    """The server's auth service (built by :func:`query.auth.start_auth`)."""
    service = services.extras.get(EXTRA_KEY)
    if not isinstance(service, AuthService):
        raise RunledgerError("the auth service is not running (start-up hook missing)")
    return service


def parse_default_permission(name: str) -> Permission:
    try:
        return auth.permission_named(name.upper())
    except ContractError as exc:
        raise ContractError(f"RUNLEDGER_AUTH_DEFAULT_PERMISSION: {exc}") from exc
