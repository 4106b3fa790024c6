"""Topic management and offset look-ups against Kafka (aiokafka admin and metadata calls).

Only Kafka adapter modules import aiokafka; failures leave here as
:class:`TransientError` (broker unreachable, timeouts) or
:class:`KafkaAdminError` (the broker refused the request).

Retention: the topic is created with ``retention.ms=-1`` by default, i.e. the
log is kept. ClickHouse's ``events`` table is a complete, durable mirror of
every accepted event (``rebuild`` recomputes all projections from it), so an
operator may set a finite retention once ingest keeps up; what must be kept
is at least the longest ingest outage to be survived.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from producer.errors import RunledgerError
from producer.kafka_security import KafkaSecurity
from producer.kafka_transport import map_kafka_error

__all__ = ["KafkaAdminError", "ensure_topic", "end_offsets", "TOPIC_EXISTS"]

log = logging.getLogger("runledger.ingest")

#: Kafka error code TOPIC_ALREADY_EXISTS.
TOPIC_EXISTS = 36


class KafkaAdminError(RunledgerError):
    """The broker refused an admin request (bad partition count, policy, authorisation ...)."""


async def ensure_topic(bootstrap: str, topic: str, partitions: int, *, replication_factor: int = 1,
                       retention_ms: int = -1, request_timeout_s: float = 10.0,
                       security: KafkaSecurity | None = None) -> int:
    """Create ``topic`` with ``partitions`` if it does not exist; return the partition count it has.

    An existing topic is left as it is (a smaller partition count is logged, never altered).
    """
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic

    if partitions < 1 or replication_factor < 1:
        raise KafkaAdminError(f"partitions and replication factor must be >= 1, got {partitions}, {replication_factor}")
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=int(request_timeout_s * 1000),
                                **(security or KafkaSecurity()).client_kwargs())
    try:
        await admin.start()
        resp = await admin.create_topics([NewTopic(topic, partitions, replication_factor,
                                                   topic_configs={"retention.ms": str(retention_ms)})])
        for _name, code, message, *_ in resp.topic_errors:
            if code not in (0, TOPIC_EXISTS):
                raise KafkaAdminError(f"creating topic {topic!r} failed with Kafka error {code}: {message}")
            if code == 0:
                log.info("created topic %s with %d partitions (retention.ms=%d)", topic, partitions, retention_ms)
        described = await admin.describe_topics([topic])
    except RunledgerError:
        raise
    except Exception as exc:
        raise map_kafka_error(exc, f"managing topic {topic!r} at {bootstrap}") from exc
    finally:
        await _close(admin)
    have = len(described[0]["partitions"]) if described else 0
    if have < partitions:
        log.warning("topic %s has %d partitions, fewer than the %d configured: at most %d ingest workers "
                    "will share it", topic, have, partitions, have)
    return have


async def end_offsets(bootstrap: str, topic: str, *, request_timeout_s: float = 5.0,
                      security: KafkaSecurity | None = None) -> dict[int, int]:
    """partition -> end offset (one past the last record) of every partition of ``topic``."""
    from aiokafka import AIOKafkaConsumer, TopicPartition

    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                request_timeout_ms=int(request_timeout_s * 1000),
                                **(security or KafkaSecurity()).client_kwargs())
    try:
        await consumer.start()
        await consumer.topics()  # refreshes metadata for every topic
        parts = sorted(consumer.partitions_for_topic(topic) or ())
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in parts]) if parts else {}
    except Exception as exc:
        raise map_kafka_error(exc, f"reading end offsets of {topic!r} at {bootstrap}") from exc
    finally:
        await _close(consumer)
    return {tp.partition: int(off) for tp, off in ends.items()}


async def _close(client: Any) -> None:
    close = getattr(client, "close", None) or client.stop
    with contextlib.suppress(Exception):
        await asyncio.wait_for(close(), 5.0)
