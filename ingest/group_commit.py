"""Group commit: many concurrent requests, one ClickHouse write.

HTTP handlers ``submit`` their decoded events and wait on the returned future;
one thread takes everything queued so far (up to ``max_batch_events``), writes
it with a single :meth:`Writer.write`, and resolves each request's future with
its own share of the result. While a write is in flight, new requests queue up
and ride the next one — so throughput grows with load instead of one insert
per request.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from producer.events import Event

from .writer import WriteResult

__all__ = ["GroupCommitter"]

_STOP = object()


class GroupCommitter:
    def __init__(self, write: Callable[[Sequence[Event]], WriteResult], *,
                 max_batch_events: int = 5000, max_queued_requests: int = 10_000) -> None:
        self._write = write
        self._max = max_batch_events
        self._q: queue.Queue[object] = queue.Queue(max_queued_requests)
        self._thread = threading.Thread(target=self._run, name="runledger-group-commit", daemon=True)
        self._thread.start()

    def submit(self, events: Sequence[Event]) -> Future[WriteResult]:
        """Queue ``events`` for the next group write. Blocks if too many requests wait (back-pressure)."""
        fut: Future[WriteResult] = Future()
        self._q.put((list(events), fut))
        return fut

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, then stop the thread."""
        self._q.put(_STOP)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _STOP:
                return
            group = [item]
            n = len(item[0])  # type: ignore[index]
            stop = False
            while n < self._max:
                try:
                    nxt = self._q.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                group.append(nxt)
                n += len(nxt[0])  # type: ignore[index]
            self._commit(group)  # type: ignore[arg-type]
            if stop:
                return

    def _commit(self, group: list[tuple[list[Event], Future[WriteResult]]]) -> None:
        everything = [e for events, _ in group for e in events]
        try:
            result = self._write(everything)
        except BaseException as exc:
            for _, fut in group:
                fut.set_exception(exc)
            return
        accepted_ids = {e.id for e in result.accepted}
        rejected = {r.event_id: r for r in result.rejected}
        for events, fut in group:
            mine = WriteResult(
                [e for e in events if e.id in accepted_ids],
                [rejected[e.id] for e in events if e.id in rejected],
            )
            fut.set_result(mine)
