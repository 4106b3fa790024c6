"""Where accepted events go: the event-log port and its embedded adapter.

``EventLog.append`` returns once the events are durable *and* visible to reads
(read-your-writes): embedded mode writes ClickHouse through group commit; the
Kafka adapter (``query.kafka_log``) produces and waits for ingest to pass the
produced offsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ingest.group_commit import GroupCommitter
from ingest.writer import Writer, WriteResult
from producer.errors import TransientError
from producer.events import Event

__all__ = ["EventLog", "EmbeddedLog"]


class EventLog(Protocol):
    mode: str

    def append(self, events: Sequence[Event], *, timeout_s: float = 30.0) -> WriteResult: ...
    def close(self) -> None: ...


class EmbeddedLog:
    """The ClickHouse ``events`` table is the log; this process is its single writer."""

    mode = "embedded"

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self._committer = GroupCommitter(writer.write)

    def append(self, events: Sequence[Event], *, timeout_s: float = 30.0) -> WriteResult:
        if not events:
            return WriteResult()
        fut = self._committer.submit(events)
        try:
            return fut.result(timeout=timeout_s)
        except TimeoutError as exc:
            raise TransientError(f"write not acknowledged within {timeout_s} s") from exc

    def close(self) -> None:
        self._committer.close()
