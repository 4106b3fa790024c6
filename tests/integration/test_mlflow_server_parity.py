"""Behaviours MLflow's own server tests (scripts/mlflow-server-tests) check, compared with mlflow server 3.17:
request-validation wording, experiments/search-datasets, model-version search order, logged-model default
names, and the source rules of model-versions/create (unknown runs, local paths, runs:/ without run_id)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric
from servers import ServerProcess

from query.interval_sample import sample_positions

pytestmark = pytest.mark.integration

API = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def client(shared_server: ServerProcess) -> MlflowClient:
    return MlflowClient(shared_server.url)


@pytest.fixture(scope="module")
def http(shared_server: ServerProcess) -> Iterator[httpx.Client]:
    with shared_server.client() as c:
        yield c


def bad(http: httpx.Client, path: str, body: dict[str, object]) -> str:
    r = http.post(API + path, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    return str(r.json()["message"])


def test_request_validation_speaks_mlflows_words(client: MlflowClient, http: httpx.Client) -> None:
    run_id = client.create_run(client.create_experiment("parity-validation")).info.run_id
    metric = {"run_id": run_id, "key": "m", "value": 1, "timestamp": 1, "step": 1}
    assert "Invalid value 31 for parameter 'run_id' supplied" in bad(http, "/runs/log-metric", {**metric, "run_id": 31})
    assert 'Invalid value "foo" for parameter \'step\' supplied' in bad(http, "/runs/log-metric", {**metric, "step": "foo"})
    assert "Missing value for required parameter 'key'" in bad(http, "/runs/log-metric", {**metric, "key": None})
    assert "Invalid value 41 for parameter 'value' supplied" in bad(
        http, "/runs/set-tag", {"run_id": run_id, "key": "k", "value": 41})
    assert 'Invalid value "foo" for parameter \'params\' supplied' in bad(
        http, "/runs/log-batch", {"run_id": run_id, "params": "foo"})
    assert "Missing value for required parameter 'metrics[0].timestamp'" in bad(
        http, "/runs/log-batch", {"run_id": run_id, "metrics": [{"key": "mae", "value": 2.5}]})
    assert 'Invalid value "5" for parameter \'tags\'' in bad(http, "/experiments/create", {"name": "x", "tags": "5"})
    assert http.post(API + "/runs/set-tag", json={"run_uuid": run_id, "key": "k", "value": "v"}).status_code == 200


def test_search_datasets(client: MlflowClient, http: httpx.Client) -> None:
    exp = client.create_experiment("parity-datasets")
    run_id = client.create_run(exp).info.run_id
    client.log_inputs(run_id, [DatasetInput(Dataset(name="d1", digest="x1", source_type="t", source="s"),
                                            [InputTag(key="mlflow.data.context", value="training")])])
    r = http.post(API + "/experiments/search-datasets", json={"experiment_ids": [exp]})
    assert r.json()["dataset_summaries"] == [{"experiment_id": exp, "name": "d1", "digest": "x1", "context": "training"}]
    assert "at least one experiment_id" in bad(http, "/experiments/search-datasets", {"experiment_ids": []})
    assert "cannot specify more than 20 experiment_ids" in bad(
        http, "/experiments/search-datasets", {"experiment_ids": [str(i) for i in range(21)]})


def test_model_versions_newest_update_first_and_logged_model_names(client: MlflowClient) -> None:
    for name in ("parity-a", "parity-b"):
        client.create_registered_model(name)
    for name in ("parity-a", "parity-b", "parity-a"):
        time.sleep(0.002)
        client.create_model_version(name, "runs:/r/model", "r")
    found = [(v.name, v.version) for v in client.search_model_versions("name LIKE 'parity-%'")]
    assert found == [("parity-a", "2"), ("parity-b", "1"), ("parity-a", "1")]
    named = [(v.name, v.version) for v in client.search_model_versions("name LIKE 'parity-%'", order_by=["name DESC"])]
    assert named == [("parity-b", "1"), ("parity-a", "2"), ("parity-a", "1")]
    model = client.create_logged_model(client.create_experiment("parity-logged"))
    assert model.name and model.name != "model" and model.name.count("-") == 2
    elsewhere = client.create_logged_model(model.experiment_id, source_run_id="123")  # a run elsewhere: kept
    assert client.get_logged_model(elsewhere.model_id).source_run_id == "123"


def test_logged_models_filtered_by_the_datasets_their_metrics_were_logged_on(client: MlflowClient) -> None:
    exp = client.create_experiment("parity-logged-datasets")
    on, off = client.create_logged_model(exp), client.create_logged_model(exp)
    run_id = client.create_run(exp).info.run_id
    client.log_metric(run_id, "m", 1.0, dataset_name="ds", dataset_digest="123", model_id=on.model_id)
    client.log_metric(run_id, "m", 1.0, dataset_name="other", dataset_digest="9", model_id=off.model_id)
    for datasets in ([{"dataset_name": "ds", "dataset_digest": "123"}], [{"dataset_name": "ds"}]):
        found = client.search_logged_models(experiment_ids=[exp], datasets=datasets)
        assert [m.model_id for m in found] == [on.model_id]


@pytest.mark.parametrize(("source", "run_id", "message"), [
    ("mlflow-artifacts:/0/nope/artifacts/model", "nope", "The run_id request parameter must identify"),
    ("runs:/abc/model", None, "The run_id request parameter must identify"),
    ("path/to/model", "run_id_1", "The run_id request parameter must identify"),
    ("/abs/path/model", None, "To use a local path as a model version source"),
    ("s3://bucket/../../etc", None, "an absolute path must be provided without relative path references"),
])
def test_version_sources_refused_like_mlflow(client: MlflowClient, http: httpx.Client, source: str,
                                            run_id: str | None, message: str) -> None:
    if client.search_registered_models("name = 'parity-src'") == []:
        client.create_registered_model("parity-src")
    body = {"name": "parity-src", "source": source, **({"run_id": run_id} if run_id else {})}
    assert message in bad(http, "/model-versions/create", body)


def test_version_sources_accepted(client: MlflowClient) -> None:
    client.create_registered_model("parity-ok")
    run = client.create_run(client.create_experiment("parity-src-run"))
    assert client.create_model_version("parity-ok", run.info.artifact_uri + "/model", run.info.run_id).version == "1"
    assert client.create_model_version("parity-ok", "s3://bucket/model", "no-such-run").run_id == "no-such-run"


def test_long_param_and_tag_values_are_cut_as_mlflow_cuts_them(client: MlflowClient, http: httpx.Client) -> None:
    run_id = client.create_run(client.create_experiment("parity-truncate")).info.run_id
    r = http.post(API + "/runs/log-batch", json={"run_id": run_id, "params": [{"key": "p", "value": "v" * 6001}],
                                                 "tags": [{"key": "t", "value": "w" * 8001}]})
    assert r.status_code == 200, r.text
    data = client.get_run(run_id).data
    assert (data.params["p"], data.tags["t"]) == ("v" * 6000, "w" * 8000)


def test_log_inputs_and_outputs_checked_like_mlflow(client: MlflowClient, http: httpx.Client) -> None:
    run_id = client.create_run(client.create_experiment("parity-log-inputs")).info.run_id
    assert http.post(API + "/runs/log-inputs", json={"run_id": run_id}).json() == {}  # 3.17.2: datasets optional
    assert http.post(API + "/runs/log-inputs", json={"run_id": run_id, "datasets": []}).status_code == 200
    models_only = {"run_id": run_id, "models": [{"model_id": "m-1"}]}
    assert http.post(API + "/runs/log-inputs", json=models_only).status_code == 200
    assert "Missing value for required parameter 'run_id'" in bad(http, "/runs/log-inputs", {"datasets": []})
    assert ("Invalid value \"foo\" for parameter 'datasets' supplied:  Hint: Value was of type 'str'."
            in bad(http, "/runs/log-inputs", {"run_id": run_id, "datasets": "foo"}))
    assert "Invalid value {} for parameter 'datasets' supplied" in bad(
        http, "/runs/log-inputs", {"run_id": run_id, "datasets": {}})
    assert "Invalid value \"x\" for parameter 'models' supplied" in bad(
        http, "/runs/log-inputs", {"run_id": run_id, "models": "x"})
    assert "Missing value for required parameter 'models'" in bad(http, "/runs/outputs", {"run_id": run_id})
    assert "Invalid value {} for parameter 'models' supplied" in bad(
        http, "/runs/outputs", {"run_id": run_id, "models": {}})
    r = http.post(API + "/runs/log-inputs", json={"run_id": "nope"})
    assert (r.status_code, r.json()["message"]) == (404, "Run with id=nope not found")
    assert [m.model_id for m in client.get_run(run_id).inputs.model_inputs] == ["m-1"]


def test_history_bulk_interval_picks_mlflows_steps(client: MlflowClient, http: httpx.Client) -> None:
    exp = client.create_experiment("parity-bulk-interval")
    dense, sparse = client.create_run(exp).info.run_id, client.create_run(exp).info.run_id
    steps = [s * s for s in range(37)]  # uneven gaps: MLflow samples by position, not by step value
    client.log_batch(dense, metrics=[Metric("m", float(s), 100 + s, s) for s in range(10)])
    client.log_batch(sparse, metrics=[Metric("m", float(s), 100 + s, s) for s in steps])
    url = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"

    def sampled(run_id: str, **extra: object) -> list[int]:
        r = http.get(url, params={"run_ids": run_id, "metric_key": "m", **extra})
        assert r.status_code == 200, r.text
        return [p["step"] for p in r.json().get("metrics", [])]

    assert sampled(dense, max_results=5) == [0, 2, 4, 6, 9]  # mlflow server 3.17.2's answer
    assert sampled(dense, max_results=3) == [0, 4, 9]
    assert sampled(dense, max_results=1) == [9]
    assert sampled(dense, max_results=4, start_step=2, end_step=8) == [2, 4, 6, 8]
    assert sampled(dense) == list(range(10))  # max_results defaults to 2500
    for k in (1, 2, 5, 10, 36, 37):
        assert sampled(sparse, max_results=k) == [steps[i] for i in sample_positions(37, k)], k
    inside = [s for s in steps if 10 <= s <= 700]
    assert sampled(sparse, max_results=6, start_step=10, end_step=700) == [
        inside[i] for i in sample_positions(len(inside), 6)]
    assert sampled("no-such-run") == []
    q = {"run_ids": dense, "metric_key": "m"}
    for extra, message in [
        ({"start_step": 5, "end_step": 3}, "end_step must be greater than start_step. Found start_step=5 and "
                                           "end_step=3."),
        ({"max_results": 0}, "max_results must be between 1 and 2500. See the API docs"),
        ({"max_results": "x"}, "Invalid value \"x\" for parameter 'max_results' supplied"),
        ({"start_step": 3}, "If either start step or end step are specified, both must be specified."),
    ]:
        r = http.get(url, params={**q, **extra})
        assert r.status_code == 400 and message in r.json()["message"], r.text
    r = http.get(url, params={"metric_key": "m"})
    assert r.json()["message"].startswith("Missing value for required parameter 'run_ids'.")


def test_log_model_appends_to_the_run_history_tag(client: MlflowClient, http: httpx.Client) -> None:
    from mlflow.models import Model

    run_id = client.create_run(client.create_experiment("parity-log-model")).info.run_id
    model = Model(artifact_path="model", run_id=run_id, flavors={"python_function": {"loader_module": "x",
                                                                                     "config": {"a": 1}}})
    client._record_logged_model(run_id, model)  # what the client sends after log_model: runs/log-model
    client._record_logged_model(run_id, model)
    history = json.loads(client.get_run(run_id).data.tags["mlflow.log-model.history"])
    assert history == [model.get_tags_dict()] * 2  # config left out, as mlflow server's get_tags_dict does
    assert "config" not in history[0]["flavors"]["python_function"]
    body = {"run_id": run_id, "model_json": model.to_json()}
    assert "Missing value for required parameter 'model_json'" in bad(http, "/runs/log-model", {"run_id": run_id})
    assert "Invalid value 5 for parameter 'model_json' supplied" in bad(http, "/runs/log-model",
                                                                        {**body, "model_json": 5})
    assert "Malformed model info. \n not json \n is not a valid JSON." in bad(
        http, "/runs/log-model", {**body, "model_json": "not json"})
    assert "Model json is missing mandatory fields: {" in bad(
        http, "/runs/log-model", {**body, "model_json": '{"artifact_path": "m"}'})
    assert "is not a JSON object" in bad(http, "/runs/log-model", {**body, "model_json": "[1]"})  # stock: 500
    r = http.post(API + "/runs/log-model", json={**body, "run_id": "nope"})
    assert (r.status_code, r.json()["message"]) == (404, "Run with id=nope not found")


def test_experiment_artifact_location_resolved_and_checked_like_mlflow(client: MlflowClient, http: httpx.Client,
                                                                       shared_server: ServerProcess) -> None:
    assert shared_server.proc is not None
    cwd = Path(os.readlink(f"/proc/{shared_server.proc.pid}/cwd"))  # mlflow server resolves against its own
    for given, stored in [("my_location", f"{cwd}/my_location"), ("./a/b", f"{cwd}/a/b"),
                          ("file:rel", f"file://{cwd}/rel"), ("/abs/y", "/abs/y"), ("s3://b/k", "s3://b/k"),
                          ("file:///abs/x", "file:///abs/x")]:
        eid = client.create_experiment(f"parity-loc-{time.time_ns()}", artifact_location=given)
        assert client.get_experiment(eid).artifact_location == stored, given
    body = {"name": f"parity-loc-{time.time_ns()}"}
    assert "'artifact_location' URL can't include fragments or params." in bad(
        http, "/experiments/create", {**body, "artifact_location": "a#f"})
    assert "'artifact_location' cannot use the 'http' scheme" in bad(
        http, "/experiments/create", {**body, "artifact_location": "http://h/x"})
    assert "file://otherhost/x is not a valid remote uri" in bad(  # mlflow server: the same words, but a 500
        http, "/experiments/create", {**body, "artifact_location": "file://otherhost/x"})


def test_history_of_an_unknown_run_is_empty_as_in_mlflow(client: MlflowClient, http: httpx.Client) -> None:
    url = API + "/metrics/get-history"
    assert http.get(url, params={"run_id": "no-such-run", "metric_key": "m"}).json() == {}
    assert http.get(url, params={"run_id": "no-such-run", "metric_key": "m", "max_results": 2}).json() == {}
    assert client.get_metric_history("no-such-run", "m") == []
    run_id = client.create_run(client.create_experiment("parity-history")).info.run_id
    client.log_batch(run_id, metrics=[Metric("m", float(s), 100 + s, s) for s in range(5)])
    assert http.get(url, params={"run_id": run_id, "metric_key": "other"}).json() == {}
    assert len(http.get(url, params={"run_id": run_id, "metric_key": "m", "max_results": 30_000}).json()["metrics"]) == 5
    r = http.get(url, params={"run_id": run_id, "metric_key": "m", "max_results": 0})
    assert r.status_code == 400
    assert r.json()["message"] == "Invalid value 0 for parameter 'max_results' supplied. It must be a positive integer."
    assert "Missing value for required parameter 'metric_key'" in http.get(url, params={"run_id": run_id}).text


def test_the_default_experiment_can_be_deleted_as_in_mlflows_sql_store(client: MlflowClient,
                                                                        http: httpx.Client) -> None:
    run_id = client.create_run("0").info.run_id
    try:
        assert http.post(API + "/experiments/delete", json={"experiment_id": "0"}).json() == {}
        assert client.get_experiment("0").lifecycle_stage == "deleted"
        assert client.get_run(run_id).info.lifecycle_stage == "deleted"  # its runs with it
        assert "The experiment 0 must be in the 'active' state. Current state is deleted." in bad(
            http, "/runs/create", {"experiment_id": "0"})
        r = http.post(API + "/experiments/delete", json={"experiment_id": "0"})
        assert (r.status_code, r.json()["message"]) == (404, "No Experiment with id=0 exists")
    finally:
        client.restore_experiment("0")
    assert client.get_run(run_id).info.lifecycle_stage == "active"


def test_download_uri_of_a_runs_source_is_the_source_as_in_mlflow(client: MlflowClient, http: httpx.Client) -> None:
    run_id = client.create_run(client.create_experiment("parity-download-uri")).info.run_id
    client.create_registered_model("parity-dl")
    client.create_model_version("parity-dl", f"runs:/{run_id}/model", run_id)
    client.create_model_version("parity-dl", "models:/parity-dl/1")
    client.create_model_version("parity-dl", "s3://bucket/model", run_id)
    assert [client.get_model_version_download_uri("parity-dl", v) for v in ("1", "2", "3")] == [
        f"runs:/{run_id}/model", f"runs:/{run_id}/model", "s3://bucket/model"]
    r = http.get(API + "/model-versions/get-download-uri", params={"name": "parity-dl", "version": "9"})
    assert (r.status_code, r.json()["message"]) == (404, "Model Version (name=parity-dl, version=9) not found")


def test_param_conflicts_worded_as_mlflow_words_them(client: MlflowClient, http: httpx.Client) -> None:
    run_id = client.create_run(client.create_experiment("parity-param-conflict")).info.run_id
    ok = {"run_id": run_id, "params": [{"key": "a", "value": "1"}, {"key": "b", "value": "1"}]}
    assert http.post(API + "/runs/log-batch", json=ok).status_code == 200
    one = bad(http, "/runs/log-batch", {"run_id": run_id, "params": [{"key": "a", "value": "1"},
                                                                       {"key": "b", "value": "3"}]})
    assert one == ("Changing param values is not allowed. Params were already logged="
                   f"'[{{'key': 'b', 'old_value': '1', 'new_value': '3'}}]' for run ID='{run_id}'.")
    two = bad(http, "/runs/log-batch", {"run_id": run_id, "params": [{"key": "a", "value": "2"},
                                                                       {"key": "b", "value": "3"}]})
    assert "'new_value': '2'}, {'key': 'b'" in two
    single = bad(http, "/runs/log-parameter", {"run_id": run_id, "key": "a", "value": "9"})
    assert single == ("Changing param values is not allowed. Param with key='a' was already logged with value='1' "
                      f"for run ID='{run_id}'. Attempted logging new value '9'.")


PROMPTLAB = "/ajax-api/2.0/mlflow/runs/create-promptlab-run"


def test_create_promptlab_run_refuses_what_mlflow_refuses(http: httpx.Client) -> None:
    body: dict[str, object] = {}
    for name, value in [("experiment_id", "123"), ("prompt_template", "t"),
                        ("prompt_parameters", [{"key": "k", "value": "v"}]), ("model_route", "r"),
                        ("model_input", "i"), ("mlflow_version", "1.0.0")]:
        r = http.post(PROMPTLAB, json=body)
        assert (r.status_code, r.json()["message"]) == (400, f"CreatePromptlabRun request must specify {name}.")
        body[name] = value
    r = http.post(PROMPTLAB, json=body)
    assert (r.status_code, r.json()["message"]) == (404, "No Experiment with id=123 exists")
    r = http.post(PROMPTLAB, json={**body, "prompt_parameters": []})
    assert r.json()["message"] == "CreatePromptlabRun request must specify prompt_parameters."
    r = http.post(PROMPTLAB, content=b"{}", headers={"content-type": "text/plain"})
    assert (r.status_code, r.json()["message"]) == (
        400, "Bad Request. Content-Type must be one of ['application/json'].")
    r = http.post(PROMPTLAB, content=b"{}")
    assert (r.status_code, r.json()["message"]) == (400, "Bad Request. Content-Type header is missing.")
    r = http.post(PROMPTLAB, json={**body, "experiment_id": "0", "prompt_parameters": ["x"]})  # stock: 500
    assert r.status_code == 400 and "prompt_parameters" in r.json()["message"]
    assert http.post(API + "/runs/create-promptlab-run", json=body).status_code == 404  # ajax-api/2.0 only


def test_create_promptlab_run_logs_the_run_and_mlflows_model(client: MlflowClient, http: httpx.Client,
                                                           tmp_path: Path) -> None:
    import yaml

    exp = client.create_experiment("parity-promptlab")
    r = http.post(PROMPTLAB, json={
        "experiment_id": exp, "run_name": "my_run_name", "prompt_template": "say {{my_key}}",
        "prompt_parameters": [{"key": "my_key", "value": "my_value"}], "model_route": "my_route",
        "model_parameters": [{"key": "temperature", "value": 0.1}], "model_input": "my_input",
        "model_output": "my_output", "model_output_parameters": [{"key": "latency", "value": "100"}],
        "mlflow_version": "1.0.0", "user_id": "username", "start_time": 456})
    assert r.status_code == 200, r.text
    info, data = r.json()["run"]["info"], r.json()["run"]["data"]
    assert (info["run_name"], info["experiment_id"], info["user_id"], info["status"], info["start_time"]) == (
        "my_run_name", exp, "username", "FINISHED", 456)
    assert {"key": "temperature", "value": "0.1"} in data["params"]
    assert {"key": "model_route", "value": "my_route"} in data["params"]
    assert {"key": "prompt_template", "value": "say {{my_key}}"} in data["params"]
    tags = {t["key"]: t["value"] for t in data["tags"]}
    assert tags["mlflow.loggedArtifacts"] == '[{"path": "eval_results_table.json", "type": "table"}]'
    assert tags["mlflow.runSourceType"] == "PROMPT_ENGINEERING"
    [logged] = json.loads(tags["mlflow.log-model.history"])
    assert (logged["run_id"], logged["artifact_path"], logged["flavors"]) == (info["run_id"], "model", {})
    run_id = info["run_id"]
    assert sorted(a.path for a in client.list_artifacts(run_id, "model")) == [
        "model/MLmodel", "model/conda.yaml", "model/input_example.json", "model/parameters.yaml",
        "model/python_env.yaml", "model/requirements.txt", "model/serving_input_example.json"]
    table = json.loads(Path(client.download_artifacts(run_id, "eval_results_table.json", str(tmp_path))).read_text())
    assert table == {"columns": ["my_key", "prompt", "output", "latency"],
                     "data": [["my_value", "my_input", "my_output", "100"]]}
    mlmodel = yaml.safe_load(Path(client.download_artifacts(run_id, "model/MLmodel", str(tmp_path))).read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.prompt.promptlab_model"
    assert (mlmodel["run_id"], mlmodel["model_uuid"]) == (run_id, logged["model_uuid"])
    assert mlmodel["signature"]["inputs"] == '[{"type": "string", "name": "my_key", "required": true}]'
    parameters = yaml.safe_load(Path(client.download_artifacts(run_id, "model/parameters.yaml",
                                                               str(tmp_path))).read_text())
    assert parameters == {"model_parameters": {"temperature": "0.1"}, "model_route": "my_route",
                          "prompt_parameters": {"my_key": "my_value"}, "prompt_template": "say {{my_key}}"}
    failing = http.post(PROMPTLAB, json={  # a param named twice: MLflow ends the run FAILED and answers it
        "experiment_id": exp, "prompt_template": "t", "prompt_parameters": [{"key": "k", "value": "v"}],
        "model_route": "r", "model_parameters": [{"key": "model_route", "value": "other"}], "model_input": "i",
        "mlflow_version": "1"}).json()["run"]
    assert (failing["info"]["status"], failing["data"]["params"]) == ("FAILED", [])
