"""MLflow 3 logged models with the stock client against ``runledger serve``.

``mlflow.<flavor>.log_model`` end to end (create PENDING -> upload through the
``mlflow-artifacts`` proxy -> finalize READY), with ``registered_model_name``,
for pyfunc and (already installed) scikit-learn; the logged-model calls and
their errors; malformed requests to every logged-model endpoint.
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
from mlflow import MlflowClient
from mlflow.entities import LoggedModelStatus
from mlflow.exceptions import MlflowException
from servers import ServerProcess

pytestmark = [pytest.mark.integration, pytest.mark.filterwarnings("ignore::FutureWarning"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

P = "/api/2.0/mlflow"


class Doubler(mlflow.pyfunc.PythonModel):
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        return [2 * x for x in model_input]


@pytest.fixture(scope="module")
def client(shared_server: ServerProcess) -> Iterator[MlflowClient]:
    mlflow.set_tracking_uri(shared_server.url)
    try:
        yield MlflowClient(shared_server.url)
    finally:
        mlflow.set_tracking_uri(None)


def test_pyfunc_log_model_with_registered_model_name(client: MlflowClient) -> None:
    mlflow.set_experiment("lm-pyfunc")
    with mlflow.start_run() as run:
        info = mlflow.pyfunc.log_model(name="doubler", python_model=Doubler(), registered_model_name="doubler",
                                       params={"factor": "2"})
    assert str(info.registered_model_version) == "1"
    logged = client.get_logged_model(info.model_id)
    assert (logged.status, logged.name, logged.source_run_id) == (LoggedModelStatus.READY, "doubler",
                                                                 run.info.run_id)
    assert logged.params == {"factor": "2"}
    assert json.loads(logged.tags["mlflow.modelVersions"]) == [{"name": "doubler", "version": 1}]  # a number, as MLflow writes it
    mv = client.get_model_version("doubler", "1")
    assert (mv.source, mv.run_id, mv.status) == (f"models:/{info.model_id}", run.info.run_id, "READY")
    raw = httpx.get(f"{client.tracking_uri}{P}/model-versions/get", params={"name": "doubler", "version": "1"},
                    timeout=10).json()["model_version"]
    assert raw["model_id"] == info.model_id  # the client's entity drops it; the UI reads it
    files = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
    assert "MLmodel" in files
    with httpx.Client(base_url=f"{client.tracking_uri}/ajax-api/2.0/mlflow/logged-models/{info.model_id}",
                      timeout=10) as ui:  # what MLflow's UI reads
        listed = ui.get("/artifacts/directories").json()
        assert listed["root_uri"] == logged.artifact_location and "MLmodel" in {f["path"] for f in listed["files"]}
        mlmodel = ui.get("/artifacts/files", params={"artifact_file_path": "MLmodel"})
        assert mlmodel.status_code == 200 and f"model_id: {info.model_id}" in mlmodel.text
    assert list(mlflow.pyfunc.load_model("models:/doubler/1").predict([1, 5])) == [2, 10]
    assert list(mlflow.pyfunc.load_model("models:/doubler/latest").predict([3])) == [6]
    assert list(mlflow.pyfunc.load_model(f"models:/{info.model_id}").predict([4])) == [8]


def test_sklearn_log_model_register_and_load(client: MlflowClient) -> None:
    sklearn_linear = pytest.importorskip("sklearn.linear_model")
    import mlflow.sklearn

    model = sklearn_linear.LinearRegression().fit([[0.0], [1.0], [2.0]], [1.0, 3.0, 5.0])
    mlflow.set_experiment("lm-sklearn")
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="linear")
    mv = mlflow.register_model(f"runs:/{run.info.run_id}/linear", "linear")
    assert mv.version == "1" and mv.source == f"models:/{info.model_id}"
    client.set_registered_model_alias("linear", "champion", mv.version)
    loaded = mlflow.sklearn.load_model("models:/linear@champion")
    assert [round(float(y), 6) for y in loaded.predict([[3.0], [10.0]])] == [7.0, 21.0]


def test_logged_model_calls_search_and_errors(client: MlflowClient) -> None:
    eid = client.create_experiment("lm-calls")
    with mlflow.start_run(experiment_id=eid) as run:
        pass
    first = client.create_logged_model(eid, name="clf", params={"depth": "3"}, tags={"a": "1"},
                                       source_run_id=run.info.run_id, model_type="classifier")
    second = client.create_logged_model(eid, name="reg", params={"depth": "5"})
    assert first.status == LoggedModelStatus.PENDING and first.artifact_location.startswith("mlflow-artifacts:/")
    client.finalize_logged_model(second.model_id, LoggedModelStatus.FAILED)
    client.set_logged_model_tags(first.model_id, {"b": "2"})
    client.delete_logged_model_tag(first.model_id, "a")
    client.log_model_params(first.model_id, {"lr": "0.1"})
    got = client.get_logged_model(first.model_id)
    assert (got.tags, got.params, got.model_type) == ({"b": "2"}, {"depth": "3", "lr": "0.1"}, "classifier")
    assert client.get_logged_model(second.model_id).status == LoggedModelStatus.FAILED

    def names(**kw: object) -> list[str]:
        return [m.name for m in client.search_logged_models(experiment_ids=[eid], **kw)]  # type: ignore[arg-type]

    assert names() == ["reg", "clf"]  # newest first
    assert names(order_by=[{"field_name": "name", "ascending": True}]) == ["clf", "reg"]
    assert names(filter_string="params.depth = '5'") == ["reg"]
    assert names(filter_string="tags.b = '2'") == ["clf"]
    assert names(filter_string=f"source_run_id = '{run.info.run_id}'") == ["clf"]
    assert names(filter_string="status = 'LOGGED_MODEL_UPLOAD_FAILED'") == ["reg"]
    page = client.search_logged_models(experiment_ids=[eid], max_results=1)
    assert len(page) == 1 and page.token
    rest = client.search_logged_models(experiment_ids=[eid], max_results=1, page_token=page.token)
    assert [m.name for m in page] + [m.name for m in rest] == ["reg", "clf"] and not rest.token

    client.delete_logged_model(second.model_id)
    assert names() == ["clf"]
    for call in (lambda: client.get_logged_model(second.model_id),
                 lambda: client.get_logged_model("m-" + "0" * 32),
                 lambda: client.delete_logged_model_tag(first.model_id, "never-set"),
                 lambda: client.create_logged_model("999999", name="x")):
        with pytest.raises(MlflowException) as err:
            call()
        assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    with pytest.raises(MlflowException) as bad:
        client.search_logged_models(experiment_ids=[eid], filter_string="metrics.acc > 0.5")
    assert bad.value.error_code == "INVALID_PARAMETER_VALUE"


MALFORMED = [
    ("POST", "/logged-models", {"experiment_id": 0}),
    ("POST", "/logged-models", {"experiment_id": "0", "tags": {"a": "b"}}),
    ("POST", "/logged-models", {"experiment_id": "0", "params": [{"value": "v"}]}),
    ("POST", "/logged-models/search", {"experiment_ids": "0"}),
    ("POST", "/logged-models/search", {"max_results": 0}),
    ("POST", "/logged-models/search", {"page_token": "not-a-token"}),
    ("POST", "/logged-models/search", {"filter": "name = "}),
    ("POST", "/logged-models/search", {"order_by": [{"field_name": "metrics.acc"}]}),
    ("POST", "/logged-models/search", {"order_by": [{"field_name": "name", "ascending": "yes"}]}),
    ("PATCH", "/logged-models/{id}", {"status": "DONE"}),
    ("PATCH", "/logged-models/{id}", {}),
    ("PATCH", "/logged-models/{id}/tags", {"tags": "a=b"}),
    ("PATCH", "/logged-models/{id}/tags", {"tags": [{"key": "", "value": "v"}]}),
    ("POST", "/logged-models/{id}/params", {"params": [1, 2]}),
    ("GET", "/logged-models/m-missing", None),
    ("PATCH", "/logged-models/m-missing", {"status": "LOGGED_MODEL_READY"}),
    ("DELETE", "/logged-models/m-missing", None),
    ("DELETE", "/logged-models/{id}/tags/missing-key", None),
    ("GET", "/logged-models/{id}/artifacts/directories?artifact_directory_path=../..", None),
    ("GET", "/logged-models/{id}/artifacts/files", None),
    ("GET", "/logged-models/{id}/artifacts/files?artifact_file_path=a/../../../etc/passwd", None),
    ("GET", "/logged-models/{id}/artifacts/files?artifact_file_path=missing.txt", None),
    ("GET", "/logged-models/m-missing/artifacts/files?artifact_file_path=MLmodel", None),
    ("GET", "/logged-models/m-missing/artifacts/directories", None),
]


def test_malformed_logged_model_requests_answer_clear_errors(shared_server: ServerProcess) -> None:
    with httpx.Client(base_url=shared_server.url + P, timeout=30) as http:
        created = http.post("/logged-models", json={"experiment_id": "0", "name": "target"})
        model_id = created.json()["model"]["info"]["model_id"]
        for method, path, body in MALFORMED:
            r = http.request(method, path.format(id=model_id), json=body)
            expected = 404 if "missing" in path else 400
            assert r.status_code == expected, (method, path, body, r.status_code, r.text)
            assert r.json()["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"), r.text
        after = http.get(f"/logged-models/{model_id}").json()["model"]["info"]
        assert (after["status"], after["tags"]) == ("LOGGED_MODEL_PENDING", [])  # nothing refused was recorded
