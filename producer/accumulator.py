"""The producer's bounded buffer: columnar metric points per run, plus control events.

Separate from any I/O (as aiokafka's MessageAccumulator is from its Sender):
``add_points`` is the training step's hot path — a lock and four list
``extend``s — and ``drain`` is called by the sender thread to cut batches.

Back-pressure: when ``max_buffered_points`` are waiting, ``add_points`` either
blocks until the sender makes room (``on_full="block"``, the default, raising
:class:`BufferFullError` after ``block_timeout_s``) or drops the new points and
counts them (``on_full="drop"``, never silent: ``dropped_points`` and a warning).
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from .errors import BufferFullError
from .events import Body, Event, MetricsLogged, Source

__all__ = ["Accumulator", "OnFull"]

OnFull = Literal["block", "drop"]


@dataclass(slots=True)
class _RunPoints:
    keys: list[str] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    ts: list[int] = field(default_factory=list)
    values: list[float] = field(default_factory=list)


class Accumulator:
    def __init__(self, *, source: Source, new_id: Callable[[], str], clock_ms: Callable[[], int],
                 max_buffered_points: int = 1_000_000, max_batch_points: int = 10_000,
                 on_full: OnFull = "block", block_timeout_s: float = 60.0) -> None:
        if on_full not in ("block", "drop"):
            raise ValueError(f"on_full must be 'block' or 'drop', got {on_full!r}")
        self.source = source
        self._new_id = new_id
        self._clock_ms = clock_ms
        self.max_buffered_points = max_buffered_points
        self.max_batch_points = max_batch_points
        self.on_full = on_full
        self.block_timeout_s = block_timeout_s
        self.lock = threading.Lock()
        self.ready = threading.Condition(self.lock)
        """Notified when a batch is ready (enough points, or a control event)."""
        self.room = threading.Condition(self.lock)
        """Notified when drain made room."""
        self._runs: dict[str, _RunPoints] = {}
        self._control: list[Event] = []
        self._seq = 0
        self.buffered_points = 0
        self.dropped_points = 0

    # ------------------------------------------------------------- hot path

    def add_points(self, run_id: str, keys: list[str], steps: list[int], ts: list[int], values: list[float]) -> None:
        n = len(keys)
        with self.lock:
            if self.buffered_points + n > self.max_buffered_points and not self._wait_for_room(n):
                return
            buf = self._runs.get(run_id)
            if buf is None:
                buf = self._runs[run_id] = _RunPoints()
            buf.keys.extend(keys)
            buf.steps.extend(steps)
            buf.ts.extend(ts)
            buf.values.extend(values)
            self.buffered_points += n
            if self.buffered_points >= self.max_batch_points:
                self.ready.notify()

    def _wait_for_room(self, n: int) -> bool:
        """Called with the lock held. True when there is room; False when the points are dropped."""
        if self.on_full == "drop":
            self.dropped_points += n
            warnings.warn(f"runledger producer buffer full: dropped {n} points "
                          f"({self.dropped_points} so far)", RuntimeWarning, stacklevel=4)
            return False
        deadline = time.monotonic() + self.block_timeout_s
        self.ready.notify()
        while self.buffered_points + n > self.max_buffered_points:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BufferFullError(f"producer buffer stayed full ({self.buffered_points} points) "
                                      f"for {self.block_timeout_s} s; is the sender stuck?")
            self.room.wait(remaining)
        return True

    # ---------------------------------------------------------- control path

    def add_event(self, entity: str, body: Body, *, ts_ms: int | None = None) -> Event:
        """Queue a control event (run created, params, tags, status ...) in order."""
        with self.lock:
            e = self._make(entity, body, ts_ms)
            self._control.append(e)
            self.ready.notify()
            return e

    def _make(self, entity: str, body: Body, ts_ms: int | None) -> Event:
        self._seq += 1
        return Event(id=self._new_id(), type=body.TYPE, entity=entity,
                     ts_ms=self._clock_ms() if ts_ms is None else ts_ms, body=body,
                     source=self.source, seq=self._seq)

    # ------------------------------------------------------------ sender side

    def pending(self) -> bool:
        return bool(self._control) or self.buffered_points > 0

    def drain(self, max_events: int | None = None) -> list[Event]:
        """Everything buffered, as events: control events first, then metric batches of at most max_batch_points."""
        with self.lock:
            control, self._control = self._control, []
            runs, self._runs = self._runs, {}
            self.buffered_points = 0
            out = list(control)
            for run_id, buf in runs.items():
                for lo in range(0, len(buf.keys), self.max_batch_points):
                    hi = lo + self.max_batch_points
                    body = MetricsLogged(keys=tuple(buf.keys[lo:hi]), steps=tuple(buf.steps[lo:hi]),
                                         timestamps_ms=tuple(buf.ts[lo:hi]), values=tuple(buf.values[lo:hi]))
                    out.append(self._make(run_id, body, None))
            self.room.notify_all()
            return out
