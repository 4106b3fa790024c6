"""Kafka mode end to end on a real Kafka-protocol broker (Tansu) and chDB.

Producers in separate processes write Kafka directly (``kafka://``) or go
through the HTTP gateway of ``runledger serve --kafka ... --ingest``, whose
in-process ingest worker (the same code as ``runledger ingest``) writes chDB;
every assertion reads back through the query API.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from kafka_broker import (
    BROKERS,
    Broker,
    assert_runs_exact,
    eventually_exact,
    finish_job,
    kafka_uri,
    open_broker,
    prometheus_value,
    server_env,
    start_job,
)
from servers import REPO, RUNLEDGER, ServerProcess

from producer import events as ev
from producer.codec import encode_batch, event_to_wire
from producer.ids import experiment_id_for, new_id

pytestmark = pytest.mark.integration

TOPIC = "e2e"


@pytest.fixture(scope="module", params=BROKERS)
def kafka_broker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    yield from open_broker(request.param, tmp_path_factory)


@pytest.fixture(scope="module")
def kafka_server(kafka_broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``runledger serve --kafka BROKER --ingest`` on chDB, shared by this module's tests (one experiment each)."""
    s = ServerProcess(tmp_path_factory.mktemp("kafka-serve") / "data", ["--kafka", kafka_broker.bootstrap, "--ingest"],
                      env=server_env(kafka_broker, TOPIC))
    s.start()
    try:
        yield s
    finally:
        s.stop()


def test_producers_to_kafka_and_through_the_gateway_arrive_exactly(kafka_broker: Broker,
                                                                  kafka_server: ServerProcess, tmp_path: Path) -> None:
    direct = [start_job(kafka_uri(kafka_broker, topic=TOPIC), f"direct-{p}", 2, 5, 2000, tmp_path / f"s{p}")
              for p in range(2)]
    via_gateway = start_job(kafka_server.url, "gateway", 1, 4, 500, tmp_path / "g")
    results = [finish_job(p) for p in [*direct, via_gateway]]
    assert all(r["flushed"] for r in results)
    with kafka_server.client() as c:
        # the gateway waited for ingest before answering: its job's data is readable at once
        assert_runs_exact(c, "gateway", 1, 4, 500)
        for p in range(2):
            eventually_exact(c, f"direct-{p}", 2, 5, 2000, 60)
        health = c.get("/api/v1/health").json()
        assert health["mode"] == "kafka"
        lag = health["ingest_lag"]
        assert lag["topic"] == TOPIC and lag["worker"]["alive"] and lag["worker"]["state"] == "running"
        assert lag["worker"]["points"] >= 42_000 and set(lag["partitions"]) == {"0", "1", "2", "3"}
        metrics = c.get("/metrics")
        assert metrics.headers["content-type"].startswith("text/plain")
        assert prometheus_value(metrics.text, "runledger_ingest_points_total", topic=TOPIC) >= 42_000
        assert prometheus_value(metrics.text, "runledger_ingest_assigned_partitions") == 4
        assert prometheus_value(metrics.text, "runledger_ingest_points_per_second") > 0
        deadline = time.monotonic() + 30  # drained: every partition's lag reaches 0 once the last commit landed
        while True:
            text = c.get("/metrics").text
            lags = [prometheus_value(text, "runledger_ingest_lag_records", partition=str(p)) for p in range(4)]
            sampled = sum(f'partition="{p}"' in text for p in range(4))
            if (sampled, sum(lags)) == (4, 0) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (sampled, lags) == (4, [0.0] * 4)


def test_the_gateway_reports_a_param_conflict_at_once(kafka_server: ServerProcess, tmp_path: Path) -> None:
    import producer

    run = producer.start_run(experiment="conflict", tracking_uri=kafka_server.url, spill_dir=str(tmp_path))
    run.log_params({"lr": 0.1})
    assert run.finish()
    other = producer.Producer(kafka_server.url, spill_dir=tmp_path / "other", linger_ms=10)
    attached = producer.Run(other, run.run_id, run.experiment_id, owner=False)
    attached.log_params({"lr": 0.2})
    attached.log_metric("after", 3.0)
    assert other.flush(30)
    other.close()
    assert len(other.refusals) == 1 and "Changing param values is not allowed" in other.refusals[0].reason
    with kafka_server.client() as c:
        got = c.get(f"/api/v1/runs/{run.run_id}").json()
        assert got["params"] == {"lr": "0.1"} and got["metrics"]["after"]["value"] == 3.0
        dead = c.get("/api/v1/dead-letters").json()["dead_letters"]
        assert any("'lr'" in d["reason"] and d["origin"] == "http" for d in dead)


def _wire(body: ev.Body, entity: str) -> dict[str, object]:
    return event_to_wire(ev.Event(id=new_id(), type=body.TYPE, entity=entity, ts_ms=int(time.time() * 1000), body=body))


async def _produce_raw(broker: Broker, records: list[tuple[bytes, bytes | None]]) -> None:
    from aiokafka import AIOKafkaProducer

    p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=broker.idempotence, acks="all")
    await p.start()
    try:
        for key, value in records:
            await (await p.send(TOPIC, key=key, value=value))
    finally:
        await p.stop()


def test_poison_records_are_dead_lettered_and_the_partition_keeps_moving(kafka_broker: Broker,
                                                                          kafka_server: ServerProcess) -> None:
    exp = experiment_id_for("poison")
    rid = new_id()
    key = rid.encode()  # one key: every record below lands in the same partition, in this order
    created = [_wire(ev.ExperimentCreated(name="poison"), exp),
               _wire(ev.RunCreated(experiment_id=exp, name="p", start_time_ms=1), rid)]
    before = _wire(ev.MetricsLogged(keys=("m",), steps=(0,), timestamps_ms=(1,), values=(1.0,)), rid)
    unknown_version = {**_wire(ev.TagsSet(tags=(("a", "b"),)), rid), "v": 77}
    bad_values = _wire(ev.MetricsLogged(keys=("m",), steps=(9,), timestamps_ms=(1,), values=(1.0,)), rid)
    bad_values["body"]["values"] = ["lots"]  # type: ignore[index]
    after = _wire(ev.MetricsLogged(keys=("m", "m"), steps=(1, 2), timestamps_ms=(2, 3), values=(2.0, 3.0)), rid)
    records: list[tuple[bytes, bytes | None]] = [
        (exp.encode(), orjson.dumps(created[:1])),
        (key, orjson.dumps(created[1:])),
        (key, orjson.dumps([before])),
        (key, b"\x00\x01 not json at all \xff"),
        (key, None),
        (key, b'{"just": "an object"}'),
        (key, b'"a string"'),
        (key, orjson.dumps([unknown_version, bad_values, 5])),
        (key, orjson.dumps([after])),
    ]
    with kafka_server.client() as c:
        dead_before = prometheus_value(c.get("/metrics").text, "runledger_ingest_dead_letters_total")
        asyncio.run(_produce_raw(kafka_broker, records))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            run = c.get(f"/api/v1/runs/{rid}")
            if run.status_code == 200 and run.json()["metrics"].get("m", {}).get("count") == 3:
                break
            time.sleep(0.2)
        m = c.get(f"/api/v1/runs/{rid}").json()["metrics"]["m"]
        assert (m["count"], m["step"], m["value"]) == (3, 2, 3.0)  # records after the poison still arrived
        dead = [d for d in c.get("/api/v1/dead-letters", params={"limit": 1000}).json()["dead_letters"]
                if d["origin"] == "kafka" and f"kafka {TOPIC}[" in d["reason"]]
        reasons = " | ".join(d["reason"] for d in dead)
        for expected in ("not valid JSON", "tombstone", "schema version 77", "non-number", "JSON object",
                         "expected a JSON array of events, got str"):
            assert expected in reasons
        assert any("not json at all" in d["raw"] for d in dead)  # the raw bytes are kept
        assert any(d["event_id"] == unknown_version["id"] for d in dead)
        assert prometheus_value(c.get("/metrics").text, "runledger_ingest_dead_letters_total") - dead_before == 7
        assert c.get("/api/v1/health").json()["ingest_lag"]["worker"]["alive"]


def test_the_gateway_refuses_malformed_batches_clearly(kafka_server: ServerProcess) -> None:
    with kafka_server.client() as c:
        for payload, status in [(b"not json", 400), (b'{"an": "object"}', 400), (b"[]", 200), (b"", 400),
                                (encode_batch([]), 200), (b"[17, null]", 200)]:
            r = c.post("/api/v1/ingest", content=payload)
            assert r.status_code == status, (payload, r.text)
            assert status == 200 or "error" in r.json()
        assert c.post("/api/v1/ingest", content=b"[17, null]").json()["accepted"] == 0


@pytest.mark.parametrize(("args", "message"), [
    pytest.param([], "needs Kafka", id="no broker"),
    pytest.param(["--kafka", "localhost"], "not host:port", id="bad bootstrap"),
    pytest.param(["--kafka", "127.0.0.1:1", "--startup-timeout-s", "1"], "at 127.0.0.1:1", id="unreachable broker"),
    pytest.param(["--kafka", "127.0.0.1:1", "--max-batch-points", "0"], "positive integer", id="bad batch size"),
    pytest.param(["--kafka", "127.0.0.1:1", "--metrics-port", "99999"], "port number", id="bad port"),
    pytest.param(["--kafka", "127.0.0.1:1", "--clickhouse-dsn", "nonsense"], "DSN must be", id="bad dsn"),
    pytest.param(["--kafka", "127.0.0.1:1", "--clickhouse-dsn", "clickhouse://u:secret@h:9000"], "'clickhouse://...'",
                 id="dsn with a foreign scheme (password not echoed)"),
    pytest.param(["--kafka", "127.0.0.1:1", "--clickhouse-dsn", "http://u:p@127.0.0.1:1"], "ClickHouse unreachable",
                 id="unreachable clickhouse"),
    pytest.param(["--kafka", "127.0.0.1:1", "--topic", ""], "must not be empty", id="empty topic"),
    pytest.param(["--kafka", "127.0.0.1:1", "--session-timeout-ms", "50"], "heartbeat_interval_ms", id="bad session"),
    pytest.param(["--kafka", "127.0.0.1:1", "--max-batch-wait-ms", "nan"], "number >= 0", id="nan wait"),
    pytest.param(["--kafka", "127.0.0.1:1", "--retention-ms", "forever"], "invalid int value", id="bad retention"),
    pytest.param(["--kafka", "127.0.0.1:1", "--no-such-flag"], "unrecognized arguments", id="unknown flag"),
])
def test_runledger_ingest_refuses_bad_input_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLEDGER_")}
    out = subprocess.run([*RUNLEDGER, "ingest", "--data-dir", str(tmp_path / "d"), "--metrics-port", "0", *args],
                         capture_output=True, text=True, timeout=60, cwd=REPO, env=env, check=False)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("env", "message"), [
    pytest.param({"RUNLEDGER_KAFKA_PARTITIONS": "many"}, "RUNLEDGER_KAFKA_PARTITIONS='many' is not a valid int",
                 id="non-number"),
    pytest.param({"RUNLEDGER_KAFKA_PARTITIONS": "0"}, "must be >= 1", id="no partitions"),
    pytest.param({"RUNLEDGER_KAFKA_SESSION_TIMEOUT_MS": "-5"}, "must be >= 1", id="negative session"),
    pytest.param({"RUNLEDGER_KAFKA_BOOTSTRAP": "a:1,,b"}, "'b' is not host:port", id="bad bootstrap list"),
])
def test_runledger_ingest_refuses_bad_environment_with_one_line(env: dict[str, str], message: str,
                                                                 tmp_path: Path) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("RUNLEDGER_")}
    out = subprocess.run([*RUNLEDGER, "ingest", "--data-dir", str(tmp_path / "d"), "--metrics-port", "0",
                          *([] if "RUNLEDGER_KAFKA_BOOTSTRAP" in env else ["--kafka", "127.0.0.1:1"])],
                         capture_output=True, text=True, timeout=60, cwd=REPO, env={**clean, **env}, check=False)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--kafka", "nope"], "not host:port", id="bad bootstrap"),
    pytest.param(["--kafka", "127.0.0.1:1", "--ingest"], "at 127.0.0.1:1", id="unreachable broker"),
    pytest.param(["--ingest"], "needs --kafka", id="ingest without kafka"),
    pytest.param(["--kafka", "127.0.0.1:1"], "needs --ingest", id="chdb without ingest"),
    pytest.param(["--kafka", "127.0.0.1:1", "--clickhouse-dsn", "nonsense"], "DSN must be", id="bad dsn"),
    pytest.param(["--kafka", "127.0.0.1:1", "--clickhouse-dsn", "http://127.0.0.1:1"], "ClickHouse unreachable",
                 id="unreachable clickhouse"),
])
def test_serve_in_kafka_mode_refuses_bad_input_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNLEDGER_")}
    out = subprocess.run([*RUNLEDGER, "serve", "--data-dir", str(tmp_path / "d"), "--port", "0", *args],
                         capture_output=True, text=True, timeout=60, cwd=REPO, env=env, check=False)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_metrics_endpoint_in_embedded_mode(server: ServerProcess) -> None:
    with server.client() as c:
        text = c.get("/metrics").text
        assert prometheus_value(text, "runledger_writer_events_total", mode="embedded") >= 1
        assert "runledger_ingest_" not in text

