"""The Kafka adapter of the producer's :class:`~producer.transport.Transport` port (aiokafka, the ``kafka`` extra).

Chosen by ``tracking_uri="kafka://host:9092,host2:9092"``. Settings come from
the URI's query string and/or keyword arguments (keywords win)::

    kafka://broker-1:9092,broker-2:9092?acks=all&compression=gzip&enable_idempotence=false
    kafka://user:pass@broker:9093/my.topic?security_protocol=SASL_SSL&sasl_mechanism=SCRAM-SHA-512&ssl_cafile=/ca.pem

(credentials, the topic as the path and the SASL / TLS keys: :mod:`producer.kafka_security`).

Each message is keyed by the entity id (the run id), so one run's events keep
their order within a partition; its value is a JSON array of that entity's
events (the same wire form as the HTTP body), packed up to
``max_message_bytes``. An event that cannot fit a message on its own is
refused (a :class:`Refusal` naming the size), never silently dropped.

aiokafka is asynchronous; this adapter runs its own event loop in a daemon
thread (:class:`LoopThread`) and calls it synchronously from the producer's
sender thread, with bounded waits. Every aiokafka failure is mapped here:
unreachable broker, timeouts and retriable errors become
:class:`TransientError` (the sender then retries, spills to disk and resends
later); a message the broker refuses as too large becomes
:class:`ContractError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any, NamedTuple, TypeVar

from .codec import encode_event
from .errors import ContractError, RunledgerError, TransientError
from .events import Event
from .kafka_security import KafkaSecurity, parse_kafka_target
from .transport import Refusal

__all__ = ["KafkaSettings", "KafkaMessage", "Packed", "Delivery", "LoopThread", "KafkaTransport",
           "pack_messages", "map_kafka_error", "DEFAULT_TOPIC"]

DEFAULT_TOPIC = "runledger.events"
_ACKS = {"all": "all", "-1": "all", "1": 1, "0": 0}
_COMPRESSION = ("none", "gzip", "snappy", "lz4", "zstd")
T = TypeVar("T")


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSettings:
    """How the producer talks to Kafka. Parse from a ``kafka://`` target with :meth:`parse`."""

    bootstrap: str
    """Comma-separated ``host:port`` list."""
    topic: str = DEFAULT_TOPIC
    acks: str | int = "all"
    """'all' (default: every in-sync replica), '1' (leader only) or '0' (fire and forget)."""
    compression: str = "none"
    """'none', 'gzip', 'snappy', 'lz4' or 'zstd' (the last three need cramjam installed; refused at parse if missing)."""
    linger_ms: int = 5
    """How long aiokafka waits to fill a partition batch (the producer's own batching is ``Producer.linger_ms``)."""
    max_batch_size: int = 1_000_000
    """Bytes per partition batch inside aiokafka."""
    max_message_bytes: int = 1_000_000
    """Largest message value; Kafka's broker default (message.max.bytes) is about 1 MB."""
    enable_idempotence: bool = True
    """Broker-side de-duplication of retries. Some Kafka-compatible brokers (Tansu) lack it: set False."""
    request_timeout_s: float = 10.0
    """aiokafka's per-request timeout (metadata, produce)."""
    delivery_timeout_s: float = 15.0
    """Upper bound on one ``send``: connect, metadata and every acknowledgement."""
    security: KafkaSecurity = field(default_factory=KafkaSecurity)
    """SASL / TLS, from the URI's userinfo and ``security_protocol`` / ``sasl_mechanism`` / ``ssl_*`` keys."""

    @classmethod
    def parse(cls, target: str, **overrides: Any) -> KafkaSettings:
        """``[kafka://][user:pass@]host:port[,host:port][/topic][?key=value&...]`` plus keyword overrides ->
        validated settings (keywords win over the URI)."""
        parsed = parse_kafka_target(target)
        bootstrap = parsed.bootstrap
        values: dict[str, Any] = dict(parsed.options)
        if parsed.topic:
            values["topic"] = parsed.topic
        values.update({k: v for k, v in overrides.items() if v is not None})
        known = {f.name: f for f in fields(cls) if f.name not in ("bootstrap", "security")}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ContractError(f"unknown Kafka setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        base = cls(bootstrap=_check_bootstrap(bootstrap), security=parsed.security)
        coerced = {name: _coerce(name, raw, getattr(base, name)) for name, raw in values.items()}
        return replace(base, **coerced)._validated()

    def _validated(self) -> KafkaSettings:
        if str(self.acks) not in _ACKS:
            raise ContractError(f"Kafka setting acks must be one of all, 1, 0, got {self.acks!r}")
        if self.compression not in _COMPRESSION:
            raise ContractError(f"Kafka setting compression must be one of {', '.join(_COMPRESSION)}, "
                                f"got {self.compression!r}")
        if self.compression != "none" and not _codec_available(self.compression):
            raise ContractError(f"Kafka setting compression={self.compression} needs its codec, which is not "
                                f"installed: pip install cramjam (or use compression=gzip)")
        if not self.topic:
            raise ContractError("Kafka setting topic must not be empty")
        for name in ("linger_ms", "max_batch_size", "max_message_bytes", "request_timeout_s", "delivery_timeout_s"):
            if getattr(self, name) < (0 if name == "linger_ms" else 1e-3):
                raise ContractError(f"Kafka setting {name} must be positive, got {getattr(self, name)!r}")
        return self

    def producer_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``aiokafka.AIOKafkaProducer``."""
        return {
            "bootstrap_servers": self.bootstrap,
            "acks": _ACKS[str(self.acks)],
            "compression_type": None if self.compression == "none" else self.compression,
            "linger_ms": self.linger_ms,
            "max_batch_size": self.max_batch_size,
            "max_request_size": self.max_message_bytes + 64 * 1024,  # record and batch headers
            "enable_idempotence": self.enable_idempotence,
            "request_timeout_ms": int(self.request_timeout_s * 1000),
            **self.security.client_kwargs(),
        }


def _check_bootstrap(bootstrap: str) -> str:
    hosts = [h.strip() for h in bootstrap.split(",") if h.strip()]
    if not hosts:
        raise ContractError("Kafka bootstrap must list at least one host:port, e.g. kafka://127.0.0.1:9092")
    for h in hosts:
        host, sep, port = h.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ContractError(f"Kafka bootstrap entry {h!r} is not host:port")
    return ",".join(hosts)


def _codec_available(compression: str) -> bool:
    from aiokafka import codec

    return bool(getattr(codec, f"has_{compression}")())


def _coerce(name: str, raw: Any, default: Any) -> Any:
    if not isinstance(raw, str):
        return raw
    if isinstance(default, bool):
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise ContractError(f"Kafka setting {name} must be true or false, got {raw!r}")
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError as exc:
        raise ContractError(f"Kafka setting {name} must be a number, got {raw!r}") from exc
    return raw


# ------------------------------------------------------------------ packing


class KafkaMessage(NamedTuple):
    """One Kafka record to produce."""

    key: bytes
    """The entity id, UTF-8: Kafka partitions by it."""
    value: bytes
    """A JSON array of the entity's events (wire form)."""
    event_ids: tuple[str, ...]
    """Ids of the events inside, in order."""


class Packed(NamedTuple):
    messages: list[KafkaMessage]
    refusals: list[Refusal]
    """Events too large for one message."""


def pack_messages(events: Sequence[Event], max_message_bytes: int) -> Packed:
    """Group events by entity (keeping their order) into JSON-array messages of at most ``max_message_bytes``."""
    by_entity: dict[str, list[tuple[str, bytes]]] = {}
    refusals: list[Refusal] = []
    for e in events:
        raw = encode_event(e)
        if len(raw) + 2 > max_message_bytes:
            refusals.append(Refusal(e.id, f"event is {len(raw)} bytes encoded, more than the Kafka message limit "
                                          f"max_message_bytes={max_message_bytes}; lower the producer's "
                                          f"max_batch_points or raise the limit (and the topic's max.message.bytes)"))
            continue
        by_entity.setdefault(e.entity, []).append((e.id, raw))
    messages: list[KafkaMessage] = []
    for entity, items in by_entity.items():
        key = entity.encode()
        parts: list[bytes] = []
        ids: list[str] = []
        size = 2
        for eid, raw in items:
            if parts and size + len(raw) + 1 > max_message_bytes:
                messages.append(KafkaMessage(key, b"[" + b",".join(parts) + b"]", tuple(ids)))
                parts, ids, size = [], [], 2
            parts.append(raw)
            ids.append(eid)
            size += len(raw) + 1
        messages.append(KafkaMessage(key, b"[" + b",".join(parts) + b"]", tuple(ids)))
    return Packed(messages, refusals)


# --------------------------------------------------------------- the loop


class LoopThread:
    """An asyncio event loop running in a daemon thread, so synchronous code can drive async clients.

    ``run(coro, timeout_s)`` blocks the caller until the coroutine finishes and
    cancels it (raising :class:`TransientError`) when ``timeout_s`` passes.
    Safe to call from many threads at once; the coroutines interleave on the loop.
    """

    def __init__(self, name: str) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float) -> T:
        fut = asyncio.run_coroutine_threadsafe(asyncio.wait_for(coro, timeout_s), self.loop)
        try:
            return fut.result(timeout_s + 5.0)
        except TimeoutError as exc:  # asyncio's and concurrent.futures' are this one since 3.11
            fut.cancel()
            raise TransientError(f"Kafka did not answer within {timeout_s} s") from exc

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the loop and join its thread (tasks still pending are abandoned)."""
        if self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout_s)
        if not self._thread.is_alive():
            self.loop.close()


def map_kafka_error(exc: BaseException, what: str) -> RunledgerError:
    """An aiokafka (or socket) failure as a runledger error: retriable -> TransientError."""
    from aiokafka import errors as ke

    if isinstance(exc, RunledgerError):
        return exc
    if isinstance(exc, (ke.MessageSizeTooLargeError, ke.RecordTooLargeError)):
        return ContractError(f"{what}: the broker refused a message as too large ({exc!r}); lower "
                             f"max_message_bytes or raise the topic's max.message.bytes")
    if isinstance(exc, ke.UnknownError) and "InitProducerId" in what:
        return TransientError(f"{what}: the broker failed InitProducerId ({exc!r}); it may not support "
                              f"idempotent producers: set enable_idempotence=false")
    return TransientError(f"{what}: {exc!r}")


# -------------------------------------------------------------- transport


class Delivery(NamedTuple):
    """What one produce call achieved."""

    refusals: list[Refusal]
    """Events not produced (too large), with why."""
    offsets: dict[int, int]
    """partition -> offset of the last record this call wrote there."""


class KafkaTransport:
    """Produces event batches to a Kafka topic; see the module docstring.

    Connecting is lazy: constructing never touches the network, so training
    code starts even while Kafka is down (batches spill and are resent).
    """

    def __init__(self, bootstrap: str, **settings: Any) -> None:
        self.settings = KafkaSettings.parse(bootstrap, **settings)
        self._loop = LoopThread("runledger-kafka-producer")
        self._producer: Any = None
        self._start_lock = asyncio.Lock()

    def send(self, events: Sequence[Event]) -> list[Refusal]:
        return self.deliver(events).refusals

    def deliver(self, events: Sequence[Event]) -> Delivery:
        """Produce ``events`` and wait for every acknowledgement (``acks``). Raises TransientError / ContractError."""
        packed = pack_messages(events, self.settings.max_message_bytes)
        if not packed.messages:
            return Delivery(packed.refusals, {})
        offsets = self._loop.run(self._produce(packed.messages), self.settings.delivery_timeout_s)
        return Delivery(packed.refusals, offsets)

    async def _produce(self, messages: list[KafkaMessage]) -> dict[int, int]:
        producer = await self._started()
        try:
            futures = [await producer.send(self.settings.topic, value=m.value, key=m.key) for m in messages]
            results = await asyncio.gather(*futures)
        except Exception as exc:
            raise map_kafka_error(exc, f"producing to {self.settings.topic} at {self.settings.bootstrap}") from exc
        offsets: dict[int, int] = {}
        for md in results:
            offsets[md.partition] = max(offsets.get(md.partition, -1), md.offset)
        return offsets

    async def _started(self) -> Any:
        async with self._start_lock:
            if self._producer is not None:
                return self._producer
            from aiokafka import AIOKafkaProducer

            producer = AIOKafkaProducer(**self.settings.producer_kwargs())
            try:
                await producer.start()
            except BaseException as exc:
                await _stop_quietly(producer)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                what = f"connecting to Kafka at {self.settings.bootstrap}"
                if self.settings.enable_idempotence:
                    what += " (InitProducerId)"
                raise map_kafka_error(exc, what) from exc
            self._producer = producer
            return producer

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what aiokafka still holds, disconnect, stop the loop thread."""
        if self._producer is not None:
            # A TransientError: the broker is gone; the sender already spilled what was not acknowledged.
            with contextlib.suppress(TransientError):
                self._loop.run(_stop_quietly(self._producer), timeout_s)
            self._producer = None
        self._loop.close()


async def _stop_quietly(producer: Any) -> None:
    with contextlib.suppress(Exception):
        await producer.stop()

