"""The Kafka ingest worker: decode -> batch -> insert -> commit, as one consumer-group member.

One :class:`IngestWorker` is one member of the consumer group: any number of
them (in any number of processes) share the topic's partitions. The steps
are small modules of their own: :mod:`ingest.kafka_decode` (record -> events
and dead letters), :mod:`ingest.kafka_batch` (size/age batching; offsets
travel with the data), :mod:`ingest.kafka_insert` (the same
:class:`~ingest.writer.Writer` as embedded mode, then ``ingest_offsets``);
this module only runs the loop and talks to aiokafka.

Guarantees:

* Offsets are committed only after the insert returned. A worker killed at
  any moment re-reads from the last commit; every sink is idempotent, so the
  re-read changes nothing a query sees.
* On a rebalance (``on_partitions_revoked``) the batch in flight is written
  and committed before the partitions go; if that fails within
  ``revoke_timeout_s`` the batch is dropped uncommitted (the new owner
  re-reads it).
* ``stop`` (SIGTERM in ``runledger ingest``) drains: the pending batch is
  written and committed, then the worker leaves the group.
* ClickHouse unreachable: the insert is retried with backoff (the partition
  waits; nothing is skipped). A commit that fails is counted and left for
  the next batch's commit, which supersedes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from producer.errors import RunledgerError, TransientError
from producer.kafka_security import KafkaSecurity
from producer.kafka_transport import DEFAULT_TOPIC, map_kafka_error

from .kafka_admin import ensure_topic
from .kafka_batch import PendingBatch, ReadyBatch
from .kafka_decode import decode_record
from .kafka_insert import write_batch
from .kafka_metrics import IngestStats
from .sink import Store
from .writer import Writer

__all__ = ["IngestConfig", "IngestWorker", "WorkerThread", "DEFAULT_GROUP"]

log = logging.getLogger("runledger.ingest")

DEFAULT_GROUP = "runledger-ingest"


@dataclass(frozen=True, slots=True, kw_only=True)
class IngestConfig:
    """Everything one worker needs to know about Kafka and batching."""

    bootstrap: str
    topic: str = DEFAULT_TOPIC
    group: str = DEFAULT_GROUP
    partitions: int = 12
    """Partitions to create the topic with when it is missing (= the most workers that can share it)."""
    replication_factor: int = 1
    retention_ms: int = -1
    """Retention of a topic this worker creates; -1 keeps the log (see :mod:`ingest.kafka_admin`)."""
    max_batch_points: int = 50_000
    max_batch_events: int = 5_000
    max_batch_wait_ms: float = 250.0
    session_timeout_ms: int = 10_000
    """How long the group waits for a silent (crashed) member before giving its partitions away."""
    heartbeat_interval_ms: int = 3_000
    max_partition_fetch_bytes: int = 8 * 1024 * 1024
    commit_timeout_s: float = 10.0
    revoke_timeout_s: float = 20.0
    drain_timeout_s: float = 30.0
    """On stop: how long to keep retrying the last insert before leaving it to the next worker."""
    startup_timeout_s: float = 60.0
    """How long to keep trying to reach Kafka at start before giving up with an error."""
    request_timeout_s: float = 10.0
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    """SASL / TLS of every connection (from the ``kafka://user:pass@host?security_protocol=...`` URI)."""

    def __post_init__(self) -> None:
        if not self.topic or not self.group:
            raise ValueError(f"topic and group must not be empty, got topic={self.topic!r} group={self.group!r}")
        if self.partitions < 1 or self.replication_factor < 1 or self.session_timeout_ms < 1:
            raise ValueError(f"partitions, replication_factor and session_timeout_ms must be >= 1, got "
                             f"{self.partitions}, {self.replication_factor}, {self.session_timeout_ms}")
        if self.max_batch_points < 1 or self.max_batch_events < 1 or self.max_batch_wait_ms < 0:
            raise ValueError("max_batch_points and max_batch_events must be >= 1, max_batch_wait_ms >= 0")
        if self.heartbeat_interval_ms >= self.session_timeout_ms:
            raise ValueError("heartbeat_interval_ms must be smaller than session_timeout_ms")


class _Abandoned(Exception):
    """A batch given up while stopping; its offsets stay uncommitted."""


class IngestWorker:
    """One consumer-group member writing through ``writer``. Run with ``await worker.run(stop)``."""

    def __init__(self, config: IngestConfig, writer: Writer, store: Store, *,
                 on_written: Callable[[dict[int, int]], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.writer = writer
        self.store = store
        self.stats = IngestStats(config.topic, config.group, clock=clock)
        self._on_written = on_written
        self._clock = clock
        self._batch = PendingBatch(max_points=config.max_batch_points, max_events=config.max_batch_events,
                                   max_wait_ms=config.max_batch_wait_ms, clock=clock)
        self._consumer: Any = None
        self._lock: asyncio.Lock | None = None
        self._inflight: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None

    # ----------------------------------------------------------------- run

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; then write and commit what is pending and leave the group.

        Raises TransientError if Kafka stays unreachable for ``startup_timeout_s`` at start.
        """
        self._lock = asyncio.Lock()
        self._stop = stop
        if not await self._retry_start(self._ensure_topic, "creating the topic"):
            return
        if not await self._retry_start(self._start_consumer, "joining the consumer group"):
            return
        cfg = self.config
        self.stats.set_state("running")
        log.info("ingest worker consuming %s as group %s from %s", cfg.topic, cfg.group, cfg.bootstrap)
        try:
            while not stop.is_set():
                await self._poll_once()
            self.stats.set_state("draining")
            async with self._lock:
                await self._flush(wait=True)
        finally:
            self.stats.set_state("stopping")
            await _stop_consumer(self._consumer, cfg.commit_timeout_s)
            self.stats.set_state("stopped")

    async def _ensure_topic(self) -> None:
        cfg = self.config
        await ensure_topic(cfg.bootstrap, cfg.topic, cfg.partitions, replication_factor=cfg.replication_factor,
                           retention_ms=cfg.retention_ms, request_timeout_s=cfg.request_timeout_s,
                           security=cfg.security)

    async def _start_consumer(self) -> None:
        from aiokafka import AIOKafkaConsumer

        cfg = self.config
        consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap, group_id=cfg.group, client_id=f"runledger-ingest-{socket.gethostname()}",
            enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=cfg.session_timeout_ms,
            heartbeat_interval_ms=cfg.heartbeat_interval_ms, max_partition_fetch_bytes=cfg.max_partition_fetch_bytes,
            request_timeout_ms=int(cfg.request_timeout_s * 1000) + cfg.session_timeout_ms,
            **cfg.security.client_kwargs(),
        )
        consumer.subscribe([cfg.topic], listener=_listener(self))
        try:
            await consumer.start()
        except BaseException:
            await _stop_consumer(consumer, cfg.commit_timeout_s)
            raise
        self._consumer = consumer

    async def _retry_start(self, step: Callable[[], Awaitable[None]], what: str) -> bool:
        """Run ``step`` until it succeeds (True), ``stop`` is set (False) or ``startup_timeout_s`` passes (raise)."""
        assert self._stop is not None
        deadline = self._clock() + self.config.startup_timeout_s
        backoff = 0.2
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(step(), self.config.request_timeout_s + 5)
                return True
            except RunledgerError as exc:
                error: RunledgerError = exc
            except Exception as exc:
                error = map_kafka_error(exc, f"{what} at {self.config.bootstrap}")
            if not isinstance(error, TransientError) or self._clock() + backoff > deadline:
                raise error
            log.warning("%s failed (%s); retrying", what, error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)
        return False

    async def _poll_once(self) -> None:
        from aiokafka import TopicPartition

        remaining = self._batch.remaining_s()
        timeout_ms = 200 if remaining is None else int(min(remaining, 0.2) * 1000)
        data = await self._consumer.getmany(timeout_ms=timeout_ms)
        assert self._lock is not None
        async with self._lock:
            owned = self._consumer.assignment()
            for tp, records in data.items():
                if tp not in owned:
                    continue  # revoked while this fetch was on its way
                for r in records:
                    self._batch.add(decode_record(tp.topic, tp.partition, r.offset, r.value))
            for tp in owned:
                if isinstance(tp, TopicPartition):
                    self.stats.seen_end(tp.partition, self._consumer.highwater(tp))
            if self._batch.ready():
                await self._flush(wait=False)

    # -------------------------------------------------------- insert, commit

    async def _flush(self, *, wait: bool) -> None:
        """Hand the pending batch to the insert step; with ``wait``, also until it is written and committed.

        One batch is in flight at a time, so inserts and commits keep their
        order while the next batch is fetched and decoded. Call with the lock held.
        """
        batch = self._batch.take()
        await self._settle()
        if batch:
            self._inflight = asyncio.create_task(self._write_and_commit(batch))
        if wait:
            await self._settle()

    async def _settle(self) -> None:
        """Wait for the batch in flight: written and committed, or given up while stopping."""
        task, self._inflight = self._inflight, None
        if task is not None:
            await task

    async def _write_and_commit(self, batch: ReadyBatch) -> None:
        try:
            await self._insert(batch)
        except _Abandoned:
            return
        await self._commit(batch.offsets)

    async def _insert(self, batch: ReadyBatch) -> None:
        cfg = self.config
        backoff = 0.1
        give_up_at: float | None = None
        while True:
            started = self._clock()
            try:
                report = await asyncio.to_thread(write_batch, self.writer, self.store, batch,
                                                 group=cfg.group, topic=cfg.topic)
            except TransientError as exc:
                self.stats.count("insert_retries")
                assert self._stop is not None
                if self._stop.is_set():
                    give_up_at = give_up_at or self._clock() + cfg.drain_timeout_s
                    if self._clock() >= give_up_at:
                        log.error("stopping: ClickHouse still unreachable (%s); %d records left uncommitted "
                                  "for the next worker", exc, batch.records)
                        raise _Abandoned from exc
                log.warning("ClickHouse unreachable (%s); retrying the batch in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            self.stats.batch_written(records=batch.records, events=report.events, points=report.points,
                                     dead_letters=report.dead_letters, seconds=self._clock() - started)
            if self._on_written is not None:
                self._on_written(batch.offsets)
            return

    async def _commit(self, offsets: dict[int, int]) -> None:
        from aiokafka import TopicPartition
        from aiokafka.structs import OffsetAndMetadata

        owned = self._consumer.assignment()
        commit = {tp: OffsetAndMetadata(n, "") for p, n in offsets.items()
                  if (tp := TopicPartition(self.config.topic, p)) in owned}
        if not commit:
            return
        try:
            await asyncio.wait_for(self._consumer.commit(commit), self.config.commit_timeout_s)
        except Exception as exc:
            self.stats.count("commit_failures")
            log.warning("offset commit failed (%r); the records will be read again (writes are idempotent)", exc)
            return
        self.stats.committed({tp.partition: om.offset for tp, om in commit.items()})

    # ---------------------------------------------------------- rebalances

    async def on_revoked(self, revoked: set[Any]) -> None:
        """Write and commit the batch in flight before the partitions go to another member."""
        if not revoked or self._lock is None:
            return
        async with self._lock:
            try:
                await asyncio.wait_for(self._flush(wait=True), self.config.revoke_timeout_s)
            except Exception as exc:
                dropped = self._batch.drop_partitions(tp.partition for tp in revoked)
                log.warning("could not finish the batch before the rebalance (%r); %d records left to the "
                            "partitions' next owner", exc, dropped)

    def on_assigned(self, assigned: set[Any]) -> None:
        self.stats.count("rebalances")
        self.stats.assigned(tuple(tp.partition for tp in assigned))
        log.info("assigned partitions %s of %s", sorted(tp.partition for tp in assigned), self.config.topic)


async def _stop_consumer(consumer: Any, timeout_s: float) -> None:
    if consumer is None:
        return
    try:
        await asyncio.wait_for(consumer.stop(), timeout_s)
    except Exception as exc:
        log.warning("leaving the consumer group failed: %r", exc)


def _listener(worker: IngestWorker) -> Any:
    from aiokafka import ConsumerRebalanceListener

    class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: Any) -> None:
            await worker.on_revoked(set(revoked))

        async def on_partitions_assigned(self, assigned: Any) -> None:
            worker.on_assigned(set(assigned))

    return Listener()


class WorkerThread:
    """Runs an :class:`IngestWorker` on its own event loop in a daemon thread (ingest inside another process)."""

    def __init__(self, worker: IngestWorker) -> None:
        self.worker = worker
        self.error: BaseException | None = None
        """Why the worker ended, if it ended on its own."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name="runledger-ingest", daemon=True)

    def start(self) -> WorkerThread:
        self._thread.start()
        self._ready.wait(10.0)
        return self

    def _main(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            self._ready.set()
            await self.worker.run(self._stop)

        try:
            asyncio.run(main())
        except BaseException as exc:
            self.error = exc
            log.error("ingest worker ended: %r", exc)
        finally:
            self._ready.set()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Ask the worker to drain (write and commit what it holds) and wait for it to leave the group."""
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop already ended
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout_s)
