"""The tutorial's model flow with the stock client against ``runledger serve`` in Kafka mode.

Tansu broker, ingest in the server process, artifacts in S3 (moto):
``pyfunc.log_model`` -> ``register_model("runs:/…")`` -> stage with
``archive_existing_versions`` and alias -> ``load_model("models:/name@champion")``.
Every write (logged-model events and registry events) goes through the
broker; reads right after the writes see them, and the audit trail holds the
calls with the client's user.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import pytest

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

import mlflow
import mlflow.pyfunc
from kafka_broker import MotoS3, TansuBroker, server_env
from mlflow import MlflowClient
from servers import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


class Negate(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return [-x for x in model_input]


@pytest.fixture(scope="module")
def kafka_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    broker = TansuBroker(tmp_path_factory.mktemp("tansu") / "tansu.log").start()
    s3 = MotoS3(bucket="models").start()
    env = {**server_env(broker, "mlflow-registry"), "RUNLEDGER_ARTIFACTS_URI": "s3://models/root",
           "RUNLEDGER_S3_ENDPOINT": f"127.0.0.1:{s3.port}", "RUNLEDGER_S3_ACCESS_KEY": "test",
           "RUNLEDGER_S3_SECRET_KEY": "test"}
    server = ServerProcess(tmp_path_factory.mktemp("dist") / "data", ["--kafka", broker.bootstrap, "--ingest"],
                           env=env)
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = "bo", "secret"
    try:
        server.start()
        mlflow.set_tracking_uri(server.url)
        yield server
    finally:
        mlflow.set_tracking_uri(None)
        del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]
        server.stop()
        s3.stop()
        broker.stop()


def test_log_register_promote_and_load_through_kafka(kafka_server: ServerProcess) -> None:
    client = MlflowClient(kafka_server.url)
    mlflow.set_experiment("kafka-models")
    versions = []
    for _ in range(2):
        with mlflow.start_run() as run:
            info = mlflow.pyfunc.log_model(name="negate", python_model=Negate())
        versions.append(mlflow.register_model(f"runs:/{run.info.run_id}/negate", "negate").version)
    assert versions == ["1", "2"]
    assert json.loads(client.get_logged_model(info.model_id).tags["mlflow.modelVersions"]) == [
        {"name": "negate", "version": 2}]  # a number, as MLflow writes it
    client.transition_model_version_stage("negate", "1", "Production")
    client.transition_model_version_stage("negate", "2", "Production", archive_existing_versions=True)
    client.set_registered_model_alias("negate", "champion", "2")
    assert client.get_model_version("negate", "1").current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions("negate", ["Production"])] == ["2"]
    assert list(mlflow.pyfunc.load_model("models:/negate@champion").predict([1, -2])) == [-1, 2]
    assert client.get_model_version_download_uri("negate", "2").startswith("mlflow-artifacts:/")

    trail = httpx.get(f"{kafka_server.url}/api/v1/registry/models/negate/history", timeout=10).json()["entries"]
    assert {e["actor"] for e in trail} == {"bo"}
    assert [(e["type"], e["version"]) for e in trail] == [
        ("registered_model_created", None), ("model_version_created", 1), ("model_version_created", 2),
        ("model_version_stage_transitioned", 1), ("model_version_stage_transitioned", 2),
        ("model_version_stage_transitioned", 1), ("registered_model_alias_set", 2)]
    with kafka_server.client() as c:
        assert c.get("/api/v1/health").json()["mode"] == "kafka"
