"""The stock mlflow client's model registry and logged models against ``runledger serve``.

``mlflow.pyfunc.log_model`` -> ``register_model("runs:/...")`` -> aliases and
stages -> ``load_model("models:/name@champion")``, plus every registry call
and its MLflow error code, and the audit trail those calls leave (with the
actor the client authenticated as).
"""

from __future__ import annotations

import os
from typing import Iterator

import httpx
import pytest

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

import mlflow  # noqa: E402
import mlflow.pyfunc  # noqa: E402
from mlflow import MlflowClient  # noqa: E402
from mlflow.entities import LoggedModelStatus  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from servers import ServerProcess  # noqa: E402

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]


class AddOne(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return [x + 1 for x in model_input]


@pytest.fixture(scope="module")
def client(shared_server: ServerProcess) -> Iterator[MlflowClient]:
    os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = "ana", "secret"
    mlflow.set_tracking_uri(shared_server.url)
    try:
        yield MlflowClient(shared_server.url)
    finally:
        mlflow.set_tracking_uri(None)
        del os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]


def history(server: ServerProcess, name: str) -> list[dict]:
    r = httpx.get(f"{server.url}/api/v1/registry/models/{name}/history", timeout=10)
    r.raise_for_status()
    return r.json()["entries"]


def test_log_model_register_alias_stage_and_load_by_alias(shared_server: ServerProcess, client: MlflowClient) -> None:
    mlflow.set_experiment("models")
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="model", python_model=AddOne())
    logged = client.get_logged_model(info.model_id)
    assert logged.status == LoggedModelStatus.READY
    assert logged.source_run_id == run.info.run_id and logged.name == "model"
    found = client.search_logged_models(experiment_ids=[run.info.experiment_id], filter_string="name = 'model'")
    assert [m.model_id for m in found] == [info.model_id]

    mv = mlflow.register_model(f"runs:/{run.info.run_id}/model", "adder")
    assert mv.version == "1" and mv.source == f"models:/{info.model_id}"
    client.set_registered_model_alias("adder", "champion", "1")
    client.transition_model_version_stage("adder", "1", "Production")
    model = mlflow.pyfunc.load_model("models:/adder@champion")
    assert list(model.predict([1, 2, 3])) == [2, 3, 4]
    assert list(mlflow.pyfunc.load_model("models:/adder/Production").predict([0])) == [1]
    assert client.get_model_version_by_alias("adder", "champion").version == "1"
    assert client.get_model_version_download_uri("adder", "1").startswith("mlflow-artifacts:/")

    trail = history(shared_server, "adder")
    assert [(e["actor"], e["type"]) for e in trail] == [
        ("ana", "registered_model_created"), ("ana", "model_version_created"),
        ("ana", "registered_model_alias_set"), ("ana", "model_version_stage_transitioned")]


def test_registered_model_calls_and_their_errors(shared_server: ServerProcess, client: MlflowClient) -> None:
    client.create_registered_model("iris", tags={"team": "cv"}, description="first")
    with pytest.raises(MlflowException) as dup:
        client.create_registered_model("iris")
    assert dup.value.error_code == "RESOURCE_ALREADY_EXISTS"
    with pytest.raises(MlflowException) as missing:
        client.get_registered_model("nope")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.update_registered_model("iris", description="second")
    client.set_registered_model_tag("iris", "tier", "gold")
    client.delete_registered_model_tag("iris", "team")
    m = client.get_registered_model("iris")
    assert m.description == "second" and m.tags == {"tier": "gold"}
    for i in range(3):
        assert client.create_model_version("iris", f"s3://bucket/iris/{i}", run_id=None).version == str(i + 1)
    client.transition_model_version_stage("iris", "1", "Production")
    client.transition_model_version_stage("iris", "2", "Production", archive_existing_versions=True)
    assert client.get_model_version("iris", "1").current_stage == "Archived"
    assert [v.version for v in client.get_latest_versions("iris", ["Production"])] == ["2"]
    with pytest.raises(MlflowException) as bad_stage:
        client.transition_model_version_stage("iris", "3", "Prod")
    assert bad_stage.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(MlflowException) as no_version:
        client.set_registered_model_alias("iris", "champion", "9")
    assert no_version.value.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
    client.set_registered_model_alias("iris", "champion", "3")
    client.set_registered_model_alias("iris", "champion", "2")  # moving an alias is an event
    assert client.get_registered_model("iris").aliases == {"champion": "2"}
    client.delete_registered_model_alias("iris", "champion")
    assert client.get_registered_model("iris").aliases == {}
    client.update_model_version("iris", "3", description="candidate")
    client.set_model_version_tag("iris", "3", "validated", "yes")
    client.delete_model_version_tag("iris", "3", "validated")
    v3 = client.get_model_version("iris", "3")
    assert v3.description == "candidate" and v3.tags == {}
    client.delete_model_version("iris", "3")
    with pytest.raises(MlflowException) as gone:
        client.get_model_version("iris", "3")
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    assert client.create_model_version("iris", "s3://bucket/iris/4").version == "4"  # numbers never reused
    assert sorted(v.version for v in client.search_model_versions("name = 'iris'")) == ["1", "2", "4"]
    client.rename_registered_model("iris", "iris-v2")
    assert client.get_model_version("iris-v2", "4").source == "s3://bucket/iris/4"
    assert [m.name for m in client.search_registered_models(filter_string="name LIKE 'iris%'")] == ["iris-v2"]
    trail = history(shared_server, "iris-v2")
    assert trail[0]["type"] == "registered_model_created" and trail[-1]["type"] == "registered_model_renamed"
    assert {e["actor"] for e in trail} == {"ana"}
    client.delete_registered_model("iris-v2")
    assert client.search_registered_models(filter_string="name = 'iris-v2'") == []


def test_search_registered_models_pages(client: MlflowClient) -> None:
    for i in range(5):
        client.create_registered_model(f"paged-model-{i}")
    seen, token = [], None
    while True:
        page = client.search_registered_models(filter_string="name LIKE 'paged-model-%'", max_results=2,
                                               page_token=token, order_by=["name DESC"])
        seen += [m.name for m in page]
        token = page.token
        if not token:
            break
    assert seen == [f"paged-model-{i}" for i in range(4, -1, -1)]


def test_fifty_concurrent_create_version_calls_number_one_to_fifty(shared_server: ServerProcess,
                                                                    client: MlflowClient) -> None:
    from concurrent.futures import ThreadPoolExecutor

    client.create_registered_model("busy")
    with ThreadPoolExecutor(16) as pool:
        versions = list(pool.map(lambda i: client.create_model_version("busy", f"s3://b/{i}").version, range(50)))
    assert sorted(int(v) for v in versions) == list(range(1, 51))


def test_logged_model_tags_params_and_delete(shared_server: ServerProcess, client: MlflowClient) -> None:
    eid = client.create_experiment("logged-models")
    m = client.create_logged_model(eid, name="clf", params={"depth": "3"}, tags={"a": "1"})
    client.set_logged_model_tags(m.model_id, {"b": "2"})
    client.delete_logged_model_tag(m.model_id, "a")
    got = client.get_logged_model(m.model_id)
    assert got.tags == {"b": "2"} and got.params == {"depth": "3"}
    client.delete_logged_model(m.model_id)
    with pytest.raises(MlflowException) as gone:
        client.get_logged_model(m.model_id)
    assert gone.value.error_code == "RESOURCE_DOES_NOT_EXIST"
