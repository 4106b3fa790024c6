"""The background thread that turns the buffer into delivered batches.

Loop: wait until a batch is ready (``max_batch_points``), ``linger_ms`` passed,
or someone asked to flush; drain; send with retries and exponential backoff
for up to ``retry_window_s``; if the backend is still unreachable, write the
batch to the spill folder and move on (so the training loop never stalls on a
dead server); every ``spill_retry_s`` try to resend the spill, oldest first.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence

from .accumulator import Accumulator
from .errors import ContractError, TransientError
from .events import Event
from .spill import Spill
from .transport import Refusal, Transport

__all__ = ["Sender"]

log = logging.getLogger("runledger.producer")


class Sender:
    def __init__(self, acc: Accumulator, transport: Transport, spill: Spill, *, linger_ms: float = 200.0,
                 retry_window_s: float = 10.0, spill_retry_s: float = 1.0, max_backoff_s: float = 2.0) -> None:
        self.acc = acc
        self.transport = transport
        self.spill = spill
        self.linger_s = linger_ms / 1000
        self.retry_window_s = retry_window_s
        self.spill_retry_s = spill_retry_s
        self.max_backoff_s = max_backoff_s
        self.refusals: list[Refusal] = []
        """Events the backend refused (param conflicts, malformed). Inspect after ``flush``."""
        self.delivered_events = 0
        self.spilled_batches = 0
        self._down = False  # circuit open: the backend failed; spill without waiting
        self._flush_requested = 0
        self._flushed = 0
        self._busy = False
        self._closing = False
        self._done = threading.Condition(acc.lock)
        self.spill.reclaim_stale()
        self._next_spill_try = 0.0
        self._thread = threading.Thread(target=self._loop, name="runledger-sender", daemon=True)
        self._thread.start()

    # ---------------------------------------------------------------- public

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Deliver everything buffered before this call, and the spill; True once all reached the backend.

        While the backend is down, keeps retrying the spill every ``spill_retry_s``
        until ``timeout_s`` (None = forever); returns False if time ran out.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self.acc.lock:
            self._flush_requested += 1
            ticket = self._flush_requested
            self.acc.ready.notify()
            while True:
                passed = self._flushed >= ticket and not self._busy
                if passed and not self.spill.pending():
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                wait = 0.5 if remaining is None else min(remaining, 0.5)
                if passed:  # only the spill is left: ask for another resend pass after a pause
                    self._done.wait(min(wait, self.spill_retry_s))
                    self._flush_requested += 1
                    ticket = self._flush_requested
                    self.acc.ready.notify()
                else:
                    self._done.wait(wait)

    def close(self, timeout_s: float = 30.0) -> bool:
        """Flush, stop the thread; whatever could not be delivered stays in the spill folder."""
        ok = self.flush(timeout_s)
        with self.acc.lock:
            self._closing = True
            self.acc.ready.notify()
        self._thread.join(timeout_s)
        leftover = self.acc.drain()
        if leftover:
            self.spill.write(leftover)
            ok = False
        self.transport.close()
        if not ok:
            log.warning("runledger: %d batch(es) could not be delivered; they wait in %s and are resent "
                        "by the next producer that uses this spill folder", self.spill.count(), self.spill.folder)
        return ok

    # ----------------------------------------------------------------- loop

    def _loop(self) -> None:
        acc = self.acc
        while True:
            with acc.lock:
                deadline = time.monotonic() + self.linger_s
                while not self._closing:
                    if acc.buffered_points >= acc.max_batch_points or self._flush_requested > self._flushed:
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    acc.ready.wait(remaining)
                if self._closing:
                    return
                ticket = self._flush_requested
                self._busy = True
            try:
                events = acc.drain()
                if events:
                    self._deliver(events)
                self._resend_spill(force=ticket > self._flushed)
            except Exception:
                log.exception("runledger sender: unexpected error")
            finally:
                with acc.lock:
                    self._busy = False
                    self._flushed = max(self._flushed, ticket)
                    self._done.notify_all()

    def _deliver(self, events: Sequence[Event]) -> None:
        if self._down:
            self._to_spill(events)
            return
        backoff = 0.05
        deadline = time.monotonic() + self.retry_window_s
        while True:
            try:
                self._record(self.transport.send(events), len(events))
                return
            except ContractError as exc:
                log.error("runledger: the backend refused a batch of %d events: %s", len(events), exc)
                self.refusals.extend(Refusal(e.id, str(exc)) for e in events)
                return
            except TransientError as exc:
                if time.monotonic() + backoff > deadline or self._closing:
                    log.warning("runledger: backend unreachable (%s); spilling to %s", exc, self.spill.folder)
                    self._down = True
                    self._to_spill(events)
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)

    def _to_spill(self, events: Sequence[Event]) -> None:
        self.spill.write(events)
        self.spilled_batches += 1

    def _record(self, refusals: list[Refusal], n: int) -> None:
        self.delivered_events += n - len(refusals)
        for r in refusals:
            log.error("runledger: event %s refused: %s", r.event_id, r.reason)
        self.refusals.extend(refusals)

    def _resend_spill(self, *, force: bool) -> None:
        now = time.monotonic()
        if not force and now < self._next_spill_try:
            return
        if not self.spill.pending():
            self._down = False
            return
        for claimed, events in self.spill.claim():
            try:
                self._record(self.transport.send(events), len(events))
            except TransientError:
                self.spill.release(claimed)
                self._down = True
                self._next_spill_try = time.monotonic() + self.spill_retry_s
                return
            except ContractError as exc:
                log.error("runledger: spilled batch %s refused: %s", claimed.name, exc)
            self.spill.done(claimed)
        self._down = False
