"""The stock mlflow client's model registry against ``runledger serve`` (logged models: test_mlflow_logged_models).

``mlflow.pyfunc.log_model`` -> ``register_model("runs:/...")`` -> aliases and
stages -> ``load_model("models:/name@champion")``, plus every registry call
and its MLflow error code, and the audit trail those calls leave (with the
actor the client authenticated as).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

import mlflow
import mlflow.pyfunc
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from servers import ServerProcess

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


def test_copy_model_version_search_filters_and_download_uri(client: MlflowClient, tmp_path: Path) -> None:
    mlflow.set_experiment("copies")
    with mlflow.start_run() as run:
        mlflow.log_text("weights", "model/weights.txt")
    rid = run.info.run_id
    client.create_registered_model("staging-model")
    src = client.create_model_version("staging-model", f"runs:/{rid}/model", run_id=rid, tags={"owner": "ana"})
    assert client.get_model_version_download_uri("staging-model", src.version) == f"runs:/{rid}/model"  # as MLflow
    copy = client.copy_model_version(f"models:/staging-model/{src.version}", "prod-model")
    assert (copy.name, copy.version, copy.source, copy.run_id, copy.tags) == (
        "prod-model", "1", "models:/staging-model/1", rid, {"owner": "ana"})
    assert client.get_model_version_download_uri("prod-model", "1") == \
        client.get_model_version_download_uri("staging-model", "1")
    local = mlflow.artifacts.download_artifacts("models:/prod-model/1", dst_path=str(tmp_path))
    assert (Path(local) / "weights.txt").read_text() == "weights"

    found = client.search_model_versions(f"run_id = '{rid}'", order_by=["name ASC"])
    assert [(v.name, v.version) for v in found] == [("prod-model", "1"), ("staging-model", "1")]
    assert [v.name for v in client.search_model_versions("tags.owner = 'ana' AND name LIKE 'prod%'")] == \
        ["prod-model"]
    with pytest.raises(MlflowException) as mismatch:
        client.create_model_version("prod-model", f"runs:/{rid}/model", run_id="some-other-run")
    assert mismatch.value.error_code == "INVALID_PARAMETER_VALUE"


def raw(server: ServerProcess, method: str, path: str, body: dict | None = None,
        headers: dict | None = None) -> httpx.Response:
    return httpx.request(method, f"{server.url}/api/2.0/mlflow{path}", json=body, headers=headers, timeout=30)


def test_actor_from_header_or_anonymous(shared_server: ServerProcess) -> None:
    assert raw(shared_server, "POST", "/registered-models/create", {"name": "audited"},
               {"X-Runledger-Actor": "ci-bot"}).status_code == 200
    assert raw(shared_server, "POST", "/registered-models/set-tag", {"name": "audited", "key": "k", "value": "v"}
               ).status_code == 200
    assert [(e["actor"], e["type"]) for e in history(shared_server, "audited")] == [
        ("ci-bot", "registered_model_created"), ("anonymous", "registered_model_tag_set")]


MALFORMED = [  # (method, path, body, status): each must be refused and record nothing
    ("POST", "/registered-models/create", {"name": "reg-target"}, 400),  # taken
    ("POST", "/registered-models/create", {"name": "x", "tags": {"k": "v"}}, 400),
    ("POST", "/registered-models/rename", {"name": "reg-target", "new_name": ""}, 400),
    ("POST", "/registered-models/rename", {"name": "no-such-model", "new_name": "y"}, 404),
    ("POST", "/registered-models/set-tag", {"name": "reg-target", "key": "k", "value": 5}, 400),
    ("POST", "/registered-models/alias", {"name": "reg-target", "alias": "champion", "version": "7"}, 404),
    ("POST", "/registered-models/alias", {"name": "reg-target", "alias": "latest", "version": "1"}, 400),
    ("POST", "/registered-models/alias", {"name": "reg-target", "alias": "v2", "version": "1"}, 400),
    ("POST", "/registered-models/alias", {"name": "reg-target", "alias": "a", "version": "one"}, 400),
    ("GET", "/registered-models/alias?name=reg-target&alias=nope", None, 400),  # MLflow: INVALID_PARAMETER_VALUE
    ("POST", "/registered-models/get-latest-versions", {"name": "reg-target", "stages": ["Prod"]}, 400),
    ("POST", "/registered-models/get-latest-versions", {"name": "reg-target", "stages": [1]}, 400),
    ("GET", "/registered-models/search?max_results=0", None, 400),
    ("GET", "/registered-models/search?order_by=tags.x%20ASC", None, 400),
    ("GET", "/registered-models/search?filter=metrics.x%20%3E%201", None, 400),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "s3://b/../../etc"}, 400),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "s3://b/%252e%252e/x"}, 400),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "runs://host/r/m"}, 400),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "runs:/r1/m", "run_id": "r2"}, 400),
    # MLflow 3.17: a models:/<id> source needs model_id; unknown runs behind run files and local paths are refused
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "models:/m-missing"}, 400),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "models:/m-missing", "model_id": "m-missing"},
     404),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "mlflow-artifacts:/0/r/artifacts/m",
                                        "run_id": "r"}, 400),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "/tmp/model"}, 400),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "runs:/r1/m"}, 400),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "models:/reg-target/9"}, 404),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "models:/reg-target/a/b"}, 400),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "s3://x", "model_id": "m-missing"}, 404),
    ("POST", "/model-versions/create", {"name": "reg-target", "source": "s3://x", "tags": [{"key": ""}]}, 400),
    ("POST", "/model-versions/transition-stage", {"name": "reg-target", "version": "1", "stage": "Prod"}, 400),
    ("POST", "/model-versions/transition-stage",
     {"name": "reg-target", "version": "1", "stage": "Staging", "archive_existing_versions": "maybe"}, 400),
    ("POST", "/model-versions/transition-stage", {"name": "reg-target", "version": True, "stage": "None"}, 400),
    ("PATCH", "/model-versions/update", {"name": "reg-target", "version": "0"}, 400),
    ("POST", "/model-versions/set-tag", {"name": "reg-target", "version": "1", "key": "k", "value": []}, 400),
    ("DELETE", "/model-versions/delete", {"name": "reg-target", "version": "2"}, 404),
    ("GET", "/model-versions/get-download-uri?name=reg-target&version=2", None, 404),
    ("GET", "/model-versions/search?order_by=metrics.x%20ASC", None, 400),
    ("GET", "/model-versions/search?filter=params.x%20%3D%20%271%27", None, 400),
    ("GET", "/model-versions/search?page_token=garbage", None, 400),
]


def test_malformed_registry_requests_answer_clear_errors_and_record_nothing(shared_server: ServerProcess) -> None:
    assert raw(shared_server, "POST", "/registered-models/create", {"name": "reg-target"}).status_code == 200
    assert raw(shared_server, "POST", "/model-versions/create",
               {"name": "reg-target", "source": "s3://b/1"}).status_code == 200
    before = history(shared_server, "reg-target")
    for method, path, body, status in MALFORMED:
        r = raw(shared_server, method, path, body)
        assert r.status_code == status, (method, path, body, r.status_code, r.text)
        code = {400: ("INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS"), 404: ("RESOURCE_DOES_NOT_EXIST",)}
        assert r.json()["error_code"] in code[status] and r.json()["message"], r.text
    assert history(shared_server, "reg-target") == before
