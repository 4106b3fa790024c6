"""The broker goes away mid-run: the producer keeps logging, and everything arrives once it is back.

Tansu's default storage is memory, so a restarted in-memory broker would come
back empty (no topic, no log, no committed offsets) — not what a Kafka outage
looks like. This test gives Tansu durable ``s3://`` storage on moto's S3
server instead, so the restarted broker has its log and its consumer-group
offsets, as Apache Kafka would after a restart. During the outage the
producer's sends fail within ``delivery_timeout_s``; its batches go to the
spill folder (the training loop never blocks) and are resent when the broker
answers again; the in-process ingest worker reconnects and carries on from
its committed offsets.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from kafka_broker import (
    MotoS3,
    TansuBroker,
    eventually_exact,
    finish_job,
    kafka_uri,
    run_logged_points,
    start_job,
    wait_for_points,
)
from servers import ServerProcess

pytestmark = pytest.mark.integration

TOPIC = "outage"
RUNS, KEYS, STEPS = 1, 5, 3000


@pytest.mark.timeout(180)
def test_producer_keeps_logging_while_the_broker_is_down(tmp_path: Path) -> None:
    s3 = MotoS3().start()
    broker = TansuBroker(tmp_path / "tansu.log", storage="s3://tansu/", env=s3.env()).start()
    server = ServerProcess(tmp_path / "data", ["--kafka", broker.bootstrap, "--ingest"],
                           env={"RUNLEDGER_KAFKA_TOPIC": TOPIC, "RUNLEDGER_KAFKA_PARTITIONS": "2",
                                "RUNLEDGER_KAFKA_IDEMPOTENCE": "false", "RUNLEDGER_KAFKA_SESSION_TIMEOUT_MS": "3000"})
    spill = tmp_path / "spill"
    job = None
    try:
        server.start()
        uri = kafka_uri(broker, topic=TOPIC, delivery_timeout_s=2, request_timeout_s=1)
        job = start_job(uri, "outage", RUNS, KEYS, STEPS, spill, "--slow-ms", "400")  # ~12 s of logging
        with server.client() as c:
            assert wait_for_points(c, "outage", 1, 30) > 0
            broker.stop()
            down_at = time.monotonic()
            spilled = 0
            while time.monotonic() - down_at < 5:
                spilled = max(spilled, len(list(spill.glob("*.batch"))))
                time.sleep(0.1)
            assert job.poll() is None, "the producer must keep logging while the broker is down"
            assert spilled > 0, "batches should wait in the spill folder during the outage"
            during = run_logged_points(c, "outage")
            broker.start()
            result = finish_job(job)
            assert result["flushed"]
            assert during < RUNS * KEYS * STEPS
            eventually_exact(c, "outage", RUNS, KEYS, STEPS, 60)
            assert list(spill.glob("*.batch")) == []
            assert c.get("/api/v1/health").json()["ingest_lag"]["worker"]["alive"]
    finally:
        if job is not None and job.poll() is None:
            job.kill()
        server.stop()
        broker.stop()
        s3.stop()
