"""The producer's Kafka transport against a real broker (Tansu), read back from the topic itself.

No ingest here: the records are consumed with a plain aiokafka consumer, so
what is asserted is exactly what the producer put on the wire — the message
key of every event is its entity (the run id), one run's events stay in one
partition in order, the producer settings (acks, compression, linger, batch
size, idempotence) are accepted by a real broker, and a broker that is not
there yet neither delays ``start_run`` nor loses a point: ``log_metrics``
waits for room in the bounded buffer (back-pressure, never a silent drop)
while the sender spills batches to disk, and the spill is delivered once the
broker answers.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka_broker import BROKERS, Broker, TansuBroker, kafka_uri, open_broker
from servers import free_port

import producer
from ingest.kafka_admin import ensure_topic
from producer.codec import decode_batch
from producer.errors import TransientError
from producer.events import Event, MetricsLogged, ParamsLogged, RunCreated
from producer.kafka_transport import KafkaTransport

pytestmark = pytest.mark.integration


async def _consume(bootstrap: str, topic: str, until_points: int, timeout_s: float) -> list[Any]:
    """Every record of ``topic`` from the beginning, until ``until_points`` metric points were seen."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest",
                                enable_auto_commit=False)
    await consumer.start()
    records: list[Any] = []
    points = 0
    deadline = time.monotonic() + timeout_s
    try:
        while points < until_points and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                for r in batch:
                    records.append(r)
                    points += sum(len(e.body) for e in _events(r) if isinstance(e.body, MetricsLogged))
    finally:
        await consumer.stop()
    return records


def _events(record: Any) -> list[Event]:
    events, rejected = decode_batch(record.value)
    assert rejected == []
    return events


def _points(records: list[Any]) -> dict[tuple[str, str, int], list[float]]:
    """(run, key, step) -> every value logged for it, in wire order."""
    out: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for r in records:
        for e in _events(r):
            if isinstance(e.body, MetricsLogged):
                for k, s, v in zip(e.body.keys, e.body.steps, e.body.values, strict=True):
                    out[(e.entity, k, s)].append(v)
    return out


@pytest.mark.timeout(120)
def test_a_broker_outage_costs_no_round_trip_no_block_past_the_buffer_and_no_point(tmp_path: Path) -> None:
    port = free_port()
    broker = TansuBroker(tmp_path / "tansu.log", port=port)  # not started yet: the broker is "down"
    topic, keys, steps = "outage-producer", 20, 1000
    uri = (f"kafka://127.0.0.1:{port}?topic={topic}&enable_idempotence=false&acks=1&compression=gzip"
           f"&linger_ms=20&max_batch_size=65536&delivery_timeout_s=1&request_timeout_s=0.5")
    spill = tmp_path / "spill"
    started = time.monotonic()
    run = producer.start_run(experiment="kafka-producer", tracking_uri=uri, spill_dir=spill, max_buffered_points=2_000,
                             max_batch_points=500, linger_ms=20, retry_window_s=0.5, block_timeout_s=60)
    created_s = time.monotonic() - started
    p = run.producer
    try:
        assert created_s < 1.0, f"start_run took {created_s:.2f} s with no broker: it must not wait on the network"
        assert len(run.run_id) == 32 and int(run.run_id, 16)  # minted here, UUIDv7 hex
        run.log_params({"lr": 0.01})
        slowest_s = 0.0
        most_buffered = 0
        for step in range(steps):
            t0 = time.monotonic()
            run.log_metrics({f"k{i}": step * 0.5 + i for i in range(keys)}, step=step)
            slowest_s = max(slowest_s, time.monotonic() - t0)
            most_buffered = max(most_buffered, p.acc.buffered_points)
        assert p.acc.dropped_points == 0
        assert most_buffered <= 2_000, "the buffer is bounded"
        assert slowest_s >= 0.05, "with the sender stuck on a dead broker, a full buffer must make log_metrics wait"
        assert p.sender.spilled_batches > 0 and list(spill.glob("*.batch")), "batches wait on disk during the outage"
        assert run.flush(0.5) is False  # nothing can arrive yet; flush says so instead of hanging

        broker.start()
        asyncio.run(ensure_topic(broker.bootstrap, topic, 2))
        assert run.finish(timeout_s=60)
        assert list(spill.glob("*.batch")) == [] and p.refusals == []
        records = asyncio.run(_consume(broker.bootstrap, topic, keys * steps, 30))
    finally:
        p.close(10)
        broker.stop()
    points = _points(records)
    assert len(points) == keys * steps, "every point arrived"
    for (_run, key, step), values in points.items():
        assert set(values) == {step * 0.5 + int(key[1:])}  # a resent batch may repeat a point, never change it
    events = [(r.key, e) for r in records for e in _events(r)]
    assert all(key == e.entity.encode() for key, e in events), "every message is keyed by its events' entity"
    assert [type(e.body) for _, e in events if e.entity == run.run_id][:2] == [RunCreated, ParamsLogged]


@pytest.fixture(scope="module", params=BROKERS)
def kafka_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from open_broker(request.param, tmp_path_factory)


@pytest.mark.timeout(120)
def test_keys_partitions_order_and_settings_on_a_live_broker(kafka_broker: Broker, tmp_path: Path) -> None:
    broker = kafka_broker
    topic, runs, keys, steps = "keys", 3, 4, 500
    uri = kafka_uri(broker, topic=topic, acks="all", compression="gzip", linger_ms=5, max_batch_size=16384,
                    max_message_bytes=20000)
    logging_to: producer.Producer | None = None
    try:
        asyncio.run(ensure_topic(broker.bootstrap, topic, 4))

        default = KafkaTransport(f"{broker.bootstrap}?topic={topic}&delivery_timeout_s=5")
        try:
            assert default.settings.enable_idempotence is True
            if broker.idempotence:
                assert default.send(_one_event()) == []
            else:
                with pytest.raises(TransientError, match="enable_idempotence=false"):  # no InitProducerId
                    default.send(_one_event())
        finally:
            default.close()

        ids = []
        for r in range(runs):
            run = producer.start_run(experiment="keys", tracking_uri=uri, spill_dir=tmp_path / "spill",
                                     max_batch_points=300, linger_ms=10)
            logging_to = run.producer
            run.log_params({"run": r})
            for step in range(steps):
                run.log_metrics({f"k{i}": step + i + 100 * r for i in range(keys)}, step=step)
            assert run.finish(timeout_s=30)
            ids.append(run.run_id)
        records = asyncio.run(_consume(broker.bootstrap, topic, runs * keys * steps, 30))
    finally:
        if logging_to is not None:
            logging_to.close(10)

    partitions: dict[str, set[int]] = defaultdict(set)
    seqs: dict[str, list[int]] = defaultdict(list)
    for rec in sorted(records, key=lambda x: (x.partition, x.offset)):
        assert len(rec.value) <= 20000
        for e in _events(rec):
            assert rec.key == e.entity.encode(), "the message key is the event's entity (run id)"
            partitions[e.entity].add(rec.partition)
            seqs[e.entity].append(e.seq)
    for rid in ids:
        assert len(partitions[rid]) == 1, "one run's events stay in one partition"
        assert seqs[rid] == sorted(seqs[rid]), "and in the order they were logged"
        kinds = [type(e.body) for rec in records for e in _events(rec) if e.entity == rid]
        assert kinds[:2] == [RunCreated, ParamsLogged]
    points = _points(records)
    assert len(points) == runs * keys * steps
    for r, rid in enumerate(ids):
        for i in range(keys):
            assert [points[(rid, f"k{i}", s)][-1] for s in range(steps)] == [s + i + 100 * r for s in range(steps)]


def _one_event() -> list[Event]:
    from producer.events import TagsSet
    from producer.ids import new_id

    body = TagsSet(tags=(("a", "b"),))
    return [Event(id=new_id(), type=body.TYPE, entity="run", ts_ms=1, body=body)]
