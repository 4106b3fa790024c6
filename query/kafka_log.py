"""Distributed mode's event log: the HTTP gateway produces to Kafka and waits for ingest (read-your-writes).

``runledger serve --kafka HOST:PORT`` builds a :class:`KafkaLog` instead of the
embedded log. ``append``:

1. checks the events against recorded state in ClickHouse
   (:meth:`Writer.check`: params are immutable, experiment names unique), so
   an HTTP caller hears of a conflict in the answer; conflicts are
   dead-lettered, never produced;
2. produces the rest to the topic, keyed by entity, and waits for the
   acknowledgements (a broker that is down is a :class:`TransientError`, 503);
3. waits until the ingest group has written past every produced offset
   (``ingest_offsets`` in ClickHouse, polled while someone waits), bounded by
   ``read_your_writes_timeout_s``. When ingest does not catch up in time the
   events are safe in Kafka and will appear, but the caller gets a 503 so
   that nothing reads state it cannot see yet.
4. reports the events ingest refused after all (its ``dead_letter`` rows for
   their ids: a conflict only ingest could see, e.g. a registry event that
   lost the race for its model's next position) in ``WriteResult.rejected``.

A conflict between an event sent here and one a producer sent to Kafka
directly can only be seen by ingest; ingest dead-letters the later one.

With ``--ingest`` (``settings.ingest_in_process``; required with chDB, whose
folder admits one process) the same :class:`~ingest.consumer.IngestWorker`
that ``runledger ingest`` runs is started inside this process; its writes
advance the watermarks directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from ingest.consumer import IngestConfig, IngestWorker, WorkerThread
from ingest.kafka_admin import end_offsets, ensure_topic
from ingest.kafka_insert import read_offsets
from ingest.kafka_metrics import StatsSnapshot
from ingest.kafka_offsets import advance, caught_up, lag
from ingest.sink import ClickHouseStore
from ingest.writer import DeadLetter, Writer, WriteResult
from producer.codec import encode_event
from producer.errors import ContractError, RunledgerError, TransientError
from producer.events import Event
from producer.kafka_transport import KafkaSettings, KafkaTransport, LoopThread

from .settings import Settings

__all__ = ["KafkaLog", "Watermarks", "preflight"]

log = logging.getLogger("runledger.server")

ORIGIN = "http"


def preflight(settings: Settings, *, timeout_s: float = 15.0) -> None:
    """What ``runledger serve --kafka`` checks before it listens, so that a bad flag, a bad ClickHouse DSN or an
    unreachable broker ends the command with one line instead of a failed application start-up.

    Creates the topic if it is missing (the gateway would at start anyway). Raises ContractError / TransientError.
    """
    if not settings.kafka_bootstrap:
        raise ContractError("--ingest runs the Kafka consumer inside the server: it needs --kafka HOST:PORT[,...] "
                            "(or RUNLEDGER_KAFKA_BOOTSTRAP)")
    target = KafkaSettings.parse(settings.kafka_bootstrap)
    bootstrap = target.bootstrap
    if settings.dsn.startswith("chdb:"):  # a chDB folder admits one process: the server opens it itself
        if not settings.ingest_in_process:
            raise ContractError("with chDB (no --clickhouse-dsn) nothing but this process can write its folder, so "
                                "serve --kafka needs --ingest; separate `runledger ingest` workers need a ClickHouse "
                                "server: --clickhouse-dsn http://user:password@host:8123")
    else:
        ClickHouseStore(settings.dsn, settings.database).close()
    loop = LoopThread("runledger-kafka-preflight")
    try:
        loop.run(ensure_topic(bootstrap, settings.kafka_topic, settings.kafka_partitions, security=target.security),
                 timeout_s)
    finally:
        loop.close()


class Watermarks:
    """The ingest group's written offsets, refreshed by polling (at most one poll in flight) while someone waits.

    ``advance`` lets an in-process worker publish its progress without a poll.
    """

    def __init__(self, poll: Callable[[], dict[int, int]], *, interval_s: float = 0.02,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._poll = poll
        self._interval_s = interval_s
        self._clock = clock
        self._cond = threading.Condition()
        self._known: dict[int, int] = {}
        self._polling = False
        self._next_poll = 0.0

    def advance(self, offsets: dict[int, int]) -> None:
        with self._cond:
            self._known = advance(self._known, offsets)
            self._cond.notify_all()

    def known(self) -> dict[int, int]:
        with self._cond:
            return dict(self._known)

    def wait_past(self, produced: dict[int, int], timeout_s: float) -> bool:
        """True once every ``partition -> last produced offset`` is written; False after ``timeout_s``."""
        deadline = self._clock() + timeout_s
        while True:
            with self._cond:
                if caught_up(produced, self._known):
                    return True
                now = self._clock()
                if now >= deadline:
                    return False
                if self._polling or now < self._next_poll:
                    self._cond.wait(min(deadline - now, max(self._next_poll - now, 0.005)))
                    continue
                self._polling = True
            fresh: dict[int, int] = {}
            try:
                fresh = self._poll()
            except RunledgerError as exc:
                log.warning("reading ingest offsets failed: %s", exc)
            finally:
                with self._cond:
                    self._polling = False
                    self._known = advance(self._known, fresh)
                    self._next_poll = self._clock() + self._interval_s
                    self._cond.notify_all()


class KafkaLog:
    """The Kafka adapter of the :class:`~query.log.EventLog` port (see the module docstring)."""

    mode = "kafka"

    def __init__(self, settings: Settings, store: ClickHouseStore, writer: Writer) -> None:
        self.settings = settings
        self.store = store
        self.writer = writer
        self._admin = LoopThread("runledger-kafka-admin")
        self._transport: KafkaTransport | None = None
        self._worker: WorkerThread | None = None
        try:
            self._transport = KafkaTransport(settings.kafka_bootstrap, topic=settings.kafka_topic,
                                             enable_idempotence=settings.kafka_idempotence, linger_ms=0)
            self.bootstrap = self._transport.settings.bootstrap
            self.security = self._transport.settings.security
            self._admin.run(ensure_topic(self.bootstrap, settings.kafka_topic, settings.kafka_partitions,
                                         security=self.security), 30.0)
            self.watermarks = Watermarks(lambda: read_offsets(store, settings.kafka_group, settings.kafka_topic))
            if settings.ingest_in_process:
                config = IngestConfig(bootstrap=self.bootstrap, security=self.security, topic=settings.kafka_topic,
                                      group=settings.kafka_group, partitions=settings.kafka_partitions,
                                      session_timeout_ms=settings.kafka_session_timeout_ms,
                                      heartbeat_interval_ms=max(100, settings.kafka_session_timeout_ms // 3))
                worker = IngestWorker(config, writer, store, on_written=self.watermarks.advance)
                self._worker = WorkerThread(worker).start()
        except BaseException:
            self.close()
            raise

    def append(self, events: Sequence[Event], *, timeout_s: float = 30.0) -> WriteResult:
        if not events:
            return WriteResult()
        assert self._transport is not None
        started_ms = time.time_ns() // 1_000_000 - 60_000  # ClickHouse's clock may trail ours a little
        ok, rejected = self.writer.check(events)
        delivery = self._transport.deliver(ok) if ok else None
        if delivery is not None and delivery.refusals:
            by_id = {e.id: e for e in ok}
            refused = {r.event_id for r in delivery.refusals}
            rejected += [DeadLetter(r.event_id or "", r.reason, encode_event(by_id[r.event_id]), "delivery")
                         for r in delivery.refusals if r.event_id in by_id]
            ok = [e for e in ok if e.id not in refused]
        self.writer.dead_letter(rejected, origin=ORIGIN)
        if delivery is not None and delivery.offsets:
            wait_s = min(timeout_s, self.settings.read_your_writes_timeout_s)
            if not self.watermarks.wait_past(delivery.offsets, wait_s):
                raise TransientError(
                    f"{len(ok)} event(s) are safely in Kafka topic {self.settings.kafka_topic!r} but ingest group "
                    f"{self.settings.kafka_group!r} has not written them within {wait_s:g} s; they will become "
                    f"visible when it catches up (is a `runledger ingest` worker or `serve --ingest` running?)")
            refused_by_ingest = self._ingest_refusals(ok, since_ms=started_ms)
            if refused_by_ingest:
                rejected += refused_by_ingest
                refused_ids = {d.event_id for d in refused_by_ingest}
                ok = [e for e in ok if e.id not in refused_ids]
        return WriteResult(ok, rejected)

    def _ingest_refusals(self, events: Sequence[Event], *, since_ms: int) -> list[DeadLetter]:
        """Events ingest refused after they were produced (a conflict only ingest could see, e.g. a
        registry event that lost a race for its model's next position): its dead letters for these ids."""
        rows = self.store.query_rows(
            "SELECT event_id, any(reason), any(raw), any(kind) FROM dead_letter WHERE origin = 'kafka' "
            "AND received_at >= fromUnixTimestamp64Milli({t:Int64}, 'UTC') AND event_id IN {ids:Array(String)} "
            "GROUP BY event_id", {"t": since_ms, "ids": [e.id for e in events]})
        return [DeadLetter(r[0], r[1], str(r[2]).encode(), r[3]) for r in rows]

    def lag(self) -> dict[str, Any]:
        """For /api/v1/health: per-partition end, written and lag, plus the in-process worker's counters."""
        out: dict[str, Any] = {"topic": self.settings.kafka_topic, "group": self.settings.kafka_group}
        try:
            written = read_offsets(self.store, self.settings.kafka_group, self.settings.kafka_topic)
            ends = self._admin.run(end_offsets(self.bootstrap, self.settings.kafka_topic, security=self.security), 5.0)
        except RunledgerError as exc:
            out["error"] = str(exc)
        else:
            per = lag(ends, written)
            out["records"] = sum(per.values())
            out["partitions"] = {str(p): {"end": ends[p], "written": written.get(p, 0), "lag": n}
                                 for p, n in per.items()}
        if self._worker is not None:
            out["worker"] = {**self._worker.worker.stats.snapshot().as_dict(), "alive": self._worker.alive(),
                             "error": repr(self._worker.error) if self._worker.error else None}
        return out

    def ingest_snapshots(self) -> list[StatsSnapshot]:
        """Counters of the in-process worker (empty without ``--ingest``), for /metrics."""
        return [self._worker.worker.stats.snapshot()] if self._worker is not None else []

    def close(self) -> None:
        """Drain the in-process worker (write and commit what it holds), then disconnect."""
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        self._admin.close()
