"""The stock mlflow client in distributed mode: Kafka in (Tansu), artifacts in S3 (moto), read-your-writes.

One ``runledger serve --kafka ... --ingest`` with ``s3://`` artifacts: every
MLflow write goes through the broker and the ingest consumer, and a read
right after a write that returned sees it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

import mlflow
from kafka_broker import MotoS3, TansuBroker, server_env
from mlflow import MlflowClient
from mlflow.entities import Metric, Param
from servers import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::FutureWarning")]


@pytest.fixture(scope="module")
def distributed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, MotoS3]]:
    broker = TansuBroker(tmp_path_factory.mktemp("tansu") / "tansu.log").start()
    s3 = MotoS3(bucket="artifacts").start()
    env = {**server_env(broker, "mlflow"), "RUNLEDGER_ARTIFACTS_URI": "s3://artifacts/mlflow",
           "RUNLEDGER_S3_ENDPOINT": f"127.0.0.1:{s3.port}", "RUNLEDGER_S3_ACCESS_KEY": "test",
           "RUNLEDGER_S3_SECRET_KEY": "test"}
    server = ServerProcess(tmp_path_factory.mktemp("dist") / "data", ["--kafka", broker.bootstrap, "--ingest"], env=env)
    try:
        server.start()
        mlflow.set_tracking_uri(server.url)
        yield server, s3
    finally:
        mlflow.set_tracking_uri(None)
        server.stop()
        s3.stop()
        broker.stop()


def test_reads_right_after_writes_see_them_through_kafka(distributed: tuple[ServerProcess, MotoS3]) -> None:
    server, _ = distributed
    client = MlflowClient(server.url)
    eid = client.create_experiment("kafka-mlflow")
    run = client.create_run(eid, run_name="r")
    rid = run.info.run_id
    for batch in range(5):
        client.log_batch(rid, metrics=[Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s)
                                       for s in range(batch * 200, batch * 200 + 200)],
                         params=[Param(f"p{batch}", str(batch))])
        got = client.get_run(rid)  # no sleep: the gateway answered after ingest wrote the batch
        assert got.data.params[f"p{batch}"] == str(batch)
        assert got.data.metrics["loss"] == pytest.approx(1.0 / (batch * 200 + 200))
    assert len(client.get_metric_history(rid, "loss")) == 1000
    client.set_terminated(rid)
    assert client.get_run(rid).info.status == "FINISHED"
    client.create_registered_model("kafka-model")
    assert client.create_model_version("kafka-model", "s3://x/1", run_id=rid).version == "1"
    trail = httpx.get(f"{server.url}/api/v1/registry/models/kafka-model/history", timeout=10).json()["entries"]
    assert [e["type"] for e in trail] == ["registered_model_created", "model_version_created"]
    with server.client() as c:
        assert c.get("/api/v1/health").json()["mode"] == "kafka"


def test_artifacts_land_in_s3_and_come_back(distributed: tuple[ServerProcess, MotoS3], tmp_path: Path) -> None:
    server, s3 = distributed
    from minio import Minio

    (tmp_path / "weights.bin").write_bytes(os.urandom(300_000))
    mlflow.set_experiment("kafka-artifacts")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "weights.bin"), artifact_path="ckpt")
    client = MlflowClient(server.url)
    assert [(a.path, a.file_size) for a in client.list_artifacts(run.info.run_id, "ckpt")] == [
        ("ckpt/weights.bin", 300_000)]
    out = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="ckpt/weights.bin",
                                              dst_path=str(tmp_path / "down"))
    assert Path(out).read_bytes() == (tmp_path / "weights.bin").read_bytes()
    keys = [o.object_name for o in Minio(f"127.0.0.1:{s3.port}", "test", "test", secure=False)
            .list_objects("artifacts", prefix="mlflow/", recursive=True)]
    assert keys == [f"mlflow/{run.info.experiment_id}/{run.info.run_id}/artifacts/ckpt/weights.bin"]
