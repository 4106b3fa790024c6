"""``RegistryService``: commands in, events and state out, over an event log (plain code, small ports).

The service keeps the whole :class:`~registry.RegistryState` in memory,
folded at start-up (:meth:`RegistryService.reload`) with :func:`registry.replay`
from the log, and serves::

    service.execute(CreateVersion(name="iris", source="s3://m/7"), actor="ana")  # -> [Event, ...]
    service.state()                       # the whole registry now
    service.state(as_of_ms=t)             # ... or as it was at t (folded from the log)
    service.model("iris", as_of_ms=t)     # one model (ModelState), now or then
    service.resolve("models:/iris@champion")
    service.history("iris", version=3)    # the audit trail (AuditEntry, before -> after)

It imports no engine: the ports are an :class:`Appender` (the server's
``EventLog``), an :class:`EventReader` over the stored log (ClickHouse in
``query.registry_log``), a clock and an id factory.

**How writes are serialised** (docs/REGISTRY.md has the long form).

Every registry event's envelope ``seq`` is its position in its model's
stream: the n-th event of a model has ``seq = n``. ``execute`` holds one
lock for the whole service (registry write volume is tiny), then
*decide -> append -> fold*:

* **Embedded mode** (one process): the lock alone serialises commands, so
  ``decide`` always sees the latest state; the writer's position check
  (:mod:`ingest.registry_sequence`) passes.
* **Distributed mode** (several API processes, Kafka): each process has its
  own lock and its own copy of the state, so two processes can decide
  against the same state. The ingest writer is the arbiter: it consumes each
  partition serially, one model's events share a partition (key = model id),
  and it accepts an event only at the next position of its model. The loser
  of a race sees its events in ``WriteResult.rejected``; the service then
  re-reads the models that changed from the log and decides again (at most
  ``max_attempts`` times, with short jittered sleeps: a process that keeps
  winning drains its own queue of commands first, so a loser may need as many
  attempts as the other processes have queued commands), so a caller gets
  either success or the real domain error (e.g. "already exists").
  Before deciding and before every current-state read, a distributed service
  catches up with the log (models whose event count grew).
* **Creating one name twice at once** collides too: a new model's id is not
  random but ``sha256(f"{name}#{k}")[:32]`` for the first ``k`` no model in
  the log has, so both processes write position 1 of the same model id and
  one is refused. (A rename racing a create of the same new name touches two
  different models and is not arbitrated; see docs/REGISTRY.md.)

A model's event ids strictly increase along its stream (an id not above the
model's last one is bumped past it) and its timestamps never go back (the
clock is clamped to the model's last change), so "later event wins" in the
ClickHouse projections, ``ORDER BY event_id`` and ``as_of`` agree with the
stream order even when API hosts' clocks disagree.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Protocol

from producer.errors import ConflictError, NotFoundError
from producer.events import Event, Source
from producer.ids import IdFactory, new_id

from . import _commands as c
from ._decide import decide
from ._fold import project, replay
from ._history import AuditEntry, history
from ._reads import get_model, parse_models_uri, resolve_uri
from ._state import EMPTY, ModelState, RegistryState, VersionState

__all__ = ["RegistryService", "Appender", "AppendResult", "Refused", "EventReader", "model_id_for_name",
           "id_after"]


class Refused(Protocol):
    """One refused event of an append (``ingest.writer.DeadLetter`` fits)."""

    @property
    def event_id(self) -> str: ...
    @property
    def reason(self) -> str: ...


class AppendResult(Protocol):
    @property
    def rejected(self) -> Sequence[Refused]: ...


class Appender(Protocol):
    """Where events go: the server's ``EventLog``. Returns once they are durable and readable (or refused)."""

    def append(self, events: Sequence[Event]) -> AppendResult: ...


class EventReader(Protocol):
    """The registry's events as stored in the log. Per model, in stream order (= event-id order)."""

    def events(self, models: Sequence[str] | None = None, *, until_ms: int | None = None) -> Iterable[Event]:
        """Registry events of ``models`` (all when None) with ``ts_ms <= until_ms`` (all when None),
        grouped by model, each model's in order. May be lazy."""

    def events_after(self, model_id: str, position: int) -> list[Event]:
        """The events of one model after its first ``position`` ones, in order."""

    def heads(self) -> dict[str, int]:
        """Model id -> how many registry events of that model the log holds."""

    def claimants(self, name: str, *, until_ms: int | None = None) -> list[str]:
        """Ids of every model that was ever called ``name`` (created or renamed so), up to ``until_ms``."""


class _Head:
    """What the service knows of one model's stream: how many events, and the last event's id."""

    __slots__ = ("events", "last_id")

    def __init__(self, events: int, last_id: str) -> None:
        self.events = events
        self.last_id = last_id


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def model_id_for_name(name: str, k: int) -> str:
    """The id of the ``k``-th model (0-based) ever created under ``name``: 32 hex chars of sha256."""
    return hashlib.sha256(f"{name}#{k}".encode()).hexdigest()[:32]


def id_after(previous: str) -> str:
    """A UUIDv7 (32 hex) strictly above ``previous`` in its first 64 bits: same ms, next counter
    (or the next ms when the 12-bit counter is exhausted)."""
    ms, counter = int(previous[:12], 16), int(previous[13:16], 16) + 1
    if counter > 0xFFF:
        ms, counter = ms + 1, 0
    rand = int.from_bytes(os.urandom(8), "big") & 0x3FFFFFFFFFFFFFFF
    return f"{(ms << 80) | (0x7 << 76) | (counter << 64) | (0b10 << 62) | rand:032x}"


class RegistryService:
    """The registry's command and read side; thread-safe. See the module docstring.

    ``distributed``: other processes append to the same log (Kafka mode), so
    catch up with the log before deciding and before current-state reads.
    Nothing is read until the first call (or :meth:`reload`).
    """

    def __init__(self, log: Appender, reader: EventReader, *, clock_ms: Callable[[], int] = _wall_ms,
                 new_id: IdFactory = new_id, source: Source | None = None, distributed: bool = False,
                 max_attempts: int = 200, backoff_s: float = 0.005, sleep: Callable[[float], None] = time.sleep,
                 jitter: Callable[[], float] = random.random, reload_above_models: int = 100) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        self._log = log
        self._reader = reader
        self._clock_ms = clock_ms
        self._new_id = new_id
        self._source = source or Source()
        self.distributed = distributed
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._sleep = sleep
        self._jitter = jitter
        self._reload_above_models = reload_above_models
        self._lock = threading.RLock()
        self._state = EMPTY
        self._heads: dict[str, _Head] = {}
        self._stale = True  # True until loaded, and after an append whose outcome is unknown

    # ------------------------------------------------------------------ writes

    def execute(self, command: c.Command, actor: str) -> list[Event]:
        """Validate ``command`` against the current state, append its events, fold them; returns them.

        Raises the domain errors of :func:`registry.decide` (``NotFoundError``,
        ``ConflictError``, ``ContractError``), ``ConflictError`` if the log
        kept refusing the events for ``max_attempts`` tries, and whatever the
        append raised (e.g. ``TransientError``; the service then re-reads the
        log before its next command). An empty list: valid, nothing to record.
        """
        with self._lock:
            self._catch_up(force=self.distributed)
            reason = ""
            for attempt in range(1, self._max_attempts + 1):
                events = self._decide(command, actor)
                if not events:
                    return []
                try:
                    result = self._log.append(events)
                except BaseException:
                    self._stale = True
                    raise
                ids = {e.id for e in events}
                refused = [r for r in result.rejected if r.event_id in ids]
                if not refused:
                    self._fold(events)
                    return events
                reason = refused[0].reason
                self._catch_up(force=True)  # whatever won the race is in the log now
                if attempt < self._max_attempts:
                    self._sleep(self._backoff_s * min(attempt, 10) * (0.5 + self._jitter()))
            raise ConflictError(f"{type(command).__name__} on registered model {command.name!r}: the log refused "
                                f"it {self._max_attempts} times, last because {reason}")

    def _decide(self, command: c.Command, actor: str) -> list[Event]:
        state = self._state
        target = state.names.get(command.name)
        now_ms = self._clock_ms()
        head = _Head(0, "")
        if target is not None:
            now_ms = max(now_ms, state.models[target].updated_ms)
            head = self._heads.get(target, head)
        events = decide(state, command, now_ms, actor, self._ids_after(head.last_id),
                        model_id_for=self._new_model_id)
        if not events:
            return events
        position = self._heads.get(events[0].entity, _Head(0, "")).events
        return [replace(e, seq=position + i, source=self._source) for i, e in enumerate(events, 1)]

    def _ids_after(self, last_id: str) -> IdFactory:
        previous = [last_id]

        def next_id() -> str:
            nid = self._new_id()
            if nid[:16] <= previous[0][:16]:
                nid = id_after(previous[0])
            previous[0] = nid
            return nid

        return next_id

    def _new_model_id(self, name: str) -> str:
        k = 0
        while (mid := model_id_for_name(name, k)) in self._state.models or mid in self._heads:
            k += 1
        return mid

    # ------------------------------------------------------------------- reads

    def state(self, as_of_ms: int | None = None) -> RegistryState:
        """The whole registry: now (in memory) or as it was at ``as_of_ms`` (folded from the log)."""
        if as_of_ms is not None:
            return replay(self._reader.events(until_ms=as_of_ms))
        if not (self.distributed or self._stale):
            return self._state  # an immutable value; this process is the only writer
        with self._lock:
            self._catch_up(force=self.distributed)
            return self._state

    def model(self, name: str, as_of_ms: int | None = None) -> ModelState:
        """The live model called ``name``, now or at ``as_of_ms``; NotFoundError otherwise.

        With ``as_of_ms``, ``name`` is first the name the model had then; failing that, the *current*
        name of a model, resolved to its stable id and read as that model was then (under whatever
        name it had): ``GET /models/prod-model?as_of=T`` works after a rename.
        """
        try:
            return get_model(self._scope(name, as_of_ms), name)
        except NotFoundError:
            if as_of_ms is None:
                raise
            current = self.state().names.get(name)
            if current is None:
                raise
            then = project(self._reader.events([current], until_ms=as_of_ms)).models.get(current)
            if then is None or then.deleted:
                raise
            return then

    def resolve(self, uri: str, as_of_ms: int | None = None) -> VersionState:
        """The version a ``models:/`` URI points at (all four forms), now or at ``as_of_ms``."""
        return resolve_uri(self._scope(parse_models_uri(uri).name, as_of_ms), uri)

    def history(self, name: str, version: int | None = None, as_of_ms: int | None = None) -> list[AuditEntry]:
        """The audit trail of the model most recently called ``name`` (or of one of its versions),
        read from the log; only events up to ``as_of_ms`` when given."""
        models = self._reader.claimants(name, until_ms=as_of_ms)
        if not models:
            raise NotFoundError(f"no registered model was ever called {name!r}" + _when(as_of_ms))
        return history(list(self._reader.events(models, until_ms=as_of_ms)), name, version)

    def _scope(self, name: str, as_of_ms: int | None) -> RegistryState:
        """A state that holds ``name``'s model: the live one, or the fold of every model ever called so."""
        if as_of_ms is None:
            return self.state()
        models = self._reader.claimants(name, until_ms=as_of_ms)
        return project(self._reader.events(models, until_ms=as_of_ms)) if models else EMPTY

    # --------------------------------------------------------------- the fold

    def reload(self) -> int:
        """Fold the whole log again (start-up, after ``rebuild``). Returns how many events it folded."""
        with self._lock:
            heads: dict[str, _Head] = {}
            self._state = replay(_counted(self._reader.events(), heads))
            self._heads = heads
            self._stale = False
            return sum(h.events for h in heads.values())

    def _fold(self, events: Sequence[Event]) -> None:
        self._state = project(events, self._state)
        for e in events:
            head = self._heads.get(e.entity)
            self._heads[e.entity] = _Head(1 if head is None else head.events + 1, e.id)

    def _catch_up(self, *, force: bool) -> None:
        """Fold what the log holds beyond memory: everything when stale, else the models that grew."""
        if self._stale:
            self.reload()
            return
        if not force:
            return
        grown = [m for m, n in self._reader.heads().items() if n > self._position(m)]
        if len(grown) > self._reload_above_models:
            self.reload()
            return
        for model_id in grown:
            self._fold(self._reader.events_after(model_id, self._position(model_id)))

    def _position(self, model_id: str) -> int:
        head = self._heads.get(model_id)
        return 0 if head is None else head.events


def _counted(events: Iterable[Event], heads: dict[str, _Head]) -> Iterator[Event]:
    for e in events:
        head = heads.get(e.entity)
        if head is None:
            heads[e.entity] = _Head(1, e.id)
        else:
            head.events += 1
            head.last_id = e.id
        yield e


def _when(as_of_ms: int | None) -> str:
    return "" if as_of_ms is None else f" as of {as_of_ms} ms"
