"""The production topology on real servers (testcontainers): Apache Kafka (KRaft), ClickHouse server, MinIO.

Two ``runledger ingest`` processes share the partitions and write the same
ClickHouse server; the query service is ``runledger serve --kafka ...
--clickhouse-dsn http://...`` without ``--ingest``, so its gateway waits on
the workers for read-your-writes. One worker is SIGKILLed mid-stream and
restarted; every query must still be exact. Skipped, with the reason, where
no Docker engine runs (the Tansu/chDB modules cover the same code there; the
e2e, crash and rebalance modules also run on the Apache Kafka container).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kafka_broker import (
    ContainerKafka,
    IngestProcess,
    assert_runs_exact,
    docker_skip_reason,
    eventually_exact,
    finish_job,
    kafka_uri,
    prometheus_value,
    server_env,
    start_job,
    worker_args,
)
from servers import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.docker]

TOPIC = "containers"
BUCKET = "runledger-artifacts"


@dataclass
class Stack:
    kafka: ContainerKafka
    clickhouse_dsn: str
    s3_env: dict[str, str]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    reason = docker_skip_reason()
    if reason:
        pytest.skip(reason)
    from testcontainers.community.clickhouse import ClickHouseContainer
    from testcontainers.community.kafka import KafkaContainer
    from testcontainers.community.minio import MinioContainer

    with (KafkaContainer().with_kraft() as kafka, ClickHouseContainer("clickhouse/clickhouse-server:24.8") as ch,
          MinioContainer() as minio):
        minio.get_client().make_bucket(BUCKET)
        cfg = minio.get_config()
        dsn = f"http://{ch.username}:{ch.password}@{ch.get_container_host_ip()}:{ch.get_exposed_port(8123)}"
        yield Stack(ContainerKafka(kafka), dsn, {
            "RUNLEDGER_ARTIFACTS_URI": f"s3://{BUCKET}/artifacts", "RUNLEDGER_S3_ENDPOINT": cfg["endpoint"],
            "RUNLEDGER_S3_ACCESS_KEY": cfg["access_key"], "RUNLEDGER_S3_SECRET_KEY": cfg["secret_key"]})


def test_two_workers_on_one_clickhouse_server_survive_a_crash(stack: Stack, tmp_path: Path) -> None:
    kafka = stack.kafka
    args = [*worker_args(kafka), "--clickhouse-dsn", stack.clickhouse_dsn]
    workers = [IngestProcess(tmp_path / f"w{i}" / "data", kafka.bootstrap, TOPIC, args).start() for i in range(2)]
    server = ServerProcess(tmp_path / "serve" / "data", ["--kafka", kafka.bootstrap, "--clickhouse-dsn",
                                                         stack.clickhouse_dsn],
                           env={**server_env(kafka, TOPIC), **stack.s3_env})
    jobs = []
    try:
        server.start(timeout_s=120)
        uri = kafka_uri(kafka, topic=TOPIC)
        jobs = [start_job(uri, f"containers-{p}", 2, 5, 3000, tmp_path / f"s{p}", "--slow-ms", "150")
                for p in range(2)]
        gateway = start_job(server.url, "containers-gateway", 1, 3, 500, tmp_path / "g")
        deadline = time.monotonic() + 60
        while prometheus_value(workers[0].metrics(), "runledger_ingest_points_total") == 0:
            assert time.monotonic() < deadline, "worker 0 never wrote"
            time.sleep(0.2)
        workers[0].stop(signal.SIGKILL)
        workers[0] = IngestProcess(tmp_path / "w0b" / "data", kafka.bootstrap, TOPIC, args).start()
        assert all(finish_job(j)["flushed"] for j in [*jobs, gateway])
        with server.client() as c:
            assert_runs_exact(c, "containers-gateway", 1, 3, 500)
            for p in range(2):
                eventually_exact(c, f"containers-{p}", 2, 5, 3000, 90)
            lag = c.get("/api/v1/health").json()["ingest_lag"]
            assert lag["topic"] == TOPIC and "error" not in lag
    finally:
        for j in jobs:
            if j.poll() is None:
                j.kill()
        server.stop()
        for w in workers:
            w.stop()
