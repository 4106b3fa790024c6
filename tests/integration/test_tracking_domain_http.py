"""The issue-12 scenarios end to end, against ``runledger serve``: one tracking domain, one set of limits,
a rebuild that loses nothing, the registry read as of a time by its current name, dataset filters, model
metrics on logged models, the access log.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric
from mlflow.exceptions import MlflowException
from servers import ServerProcess

import producer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(shared_server: ServerProcess) -> Iterator[MlflowClient]:
    mlflow.set_tracking_uri(shared_server.url)
    yield MlflowClient(shared_server.url)
    mlflow.set_tracking_uri(None)


def _rebuild(server: ServerProcess) -> dict[str, object]:
    with server.client() as http:
        resp = http.post("/api/v1/admin/rebuild", timeout=300)
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_a_9000_character_experiment_tag_survives_a_rebuild(client: MlflowClient, shared_server: ServerProcess) -> None:
    long_value = "x" * 9000  # over the old contract limit (8,000), under MLflow's API limit (20,000)
    eid = client.create_experiment("long-tag", tags={"notes": long_value})
    run = client.create_run(eid)
    client.log_metric(run.info.run_id, "loss", 0.5, step=1)
    report = _rebuild(shared_server)
    assert report["dead_letters"] == 0
    assert client.get_experiment(eid).tags["notes"] == long_value
    assert client.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
    assert [r.info.run_id for r in client.search_runs([eid])] == [run.info.run_id]
    with pytest.raises(MlflowException, match=r"exceeds the maximum length of 20000"):
        client.set_experiment_tag(eid, "too-long", "y" * 20_001)


def test_renamed_experiment_frees_its_old_name_for_every_door(client: MlflowClient, shared_server: ServerProcess,
                                                              tmp_path: Path) -> None:
    a = client.create_experiment("rename-a")
    client.rename_experiment(a, "rename-b")
    run = producer.start_run(experiment="rename-a", tracking_uri=shared_server.url, spill_dir=str(tmp_path))
    run.log_metric("m", 1.0)
    assert run.finish(timeout_s=30)
    assert run.experiment_id != a
    assert client.get_experiment(run.experiment_id).name == "rename-a"
    assert client.get_experiment(a).name == "rename-b"
    assert client.search_runs([a]) == []
    with shared_server.client() as http:
        native = http.post("/api/v1/experiments", json={"name": "rename-a"})
        assert native.status_code == 200, native.text
        assert native.json()["experiment_id"] == run.experiment_id
        bad = http.post("/api/v1/experiments", json={"name": ""})
        assert bad.status_code in (400, 422), bad.text


def test_create_experiment_with_a_taken_name_is_already_exists(client: MlflowClient) -> None:
    client.create_experiment("taken-name")
    with pytest.raises(MlflowException) as err:
        client.create_experiment("taken-name")
    assert err.value.error_code == "RESOURCE_ALREADY_EXISTS"


def test_delete_experiment_tag(client: MlflowClient) -> None:
    eid = client.create_experiment("tags-to-delete", tags={"keep": "1", "drop": "2"})
    client.delete_experiment_tag(eid, "drop")
    assert client.get_experiment(eid).tags == {"keep": "1"}
    with pytest.raises(MlflowException) as err:
        client.delete_experiment_tag(eid, "never-set")
    assert err.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_runs_by_dataset_name_digest_and_context(client: MlflowClient) -> None:
    eid = client.create_experiment("datasets-filter")
    with_ds, without = client.create_run(eid), client.create_run(eid)
    ds = Dataset(name="wiki-train", digest="abc123", source_type="local", source="/data/wiki")
    client.log_inputs(with_ds.info.run_id, [DatasetInput(ds, tags=[InputTag("mlflow.data.context", "training")])])
    ids = lambda f: [r.info.run_id for r in client.search_runs([eid], filter_string=f)]  # noqa: E731
    assert ids("datasets.name = 'wiki-train'") == [with_ds.info.run_id]
    assert ids("datasets.digest IN ('abc123', 'zzz')") == [with_ds.info.run_id]
    assert ids("datasets.context = 'training' AND datasets.name LIKE 'wiki%'") == [with_ds.info.run_id]
    assert ids("datasets.name = 'other'") == []
    assert without.info.run_id not in ids("datasets.name != 'x'")
    with pytest.raises(MlflowException, match="dataset"):
        client.search_runs([eid], filter_string="datasets.size = '3'")
    with pytest.raises(MlflowException, match="order by datasets"):
        client.search_runs([eid], order_by=["datasets.name"])


def test_metrics_logged_with_a_model_id_are_on_the_logged_model(client: MlflowClient) -> None:
    eid = client.create_experiment("model-metrics")
    run = client.create_run(eid)
    model = client.create_logged_model(eid, source_run_id=run.info.run_id, name="clf")
    client.log_batch(run.info.run_id, metrics=[
        Metric("accuracy", 0.9, 1000, 0, model_id=model.model_id, dataset_name="eval", dataset_digest="d1"),
        Metric("plain", 1.0, 1000, 0)])
    got = client.get_logged_model(model.model_id)
    assert [(m.key, m.value, m.dataset_name, m.run_id) for m in got.metrics] == [
        ("accuracy", 0.9, "eval", run.info.run_id)]
    assert client.get_run(run.info.run_id).data.metrics == {"accuracy": 0.9, "plain": 1.0}
    found = client.search_logged_models([eid])
    assert [m.key for m in found[0].metrics] == ["accuracy"]


def test_registry_as_of_by_current_name_resolves_the_stable_id(client: MlflowClient,
                                                                shared_server: ServerProcess) -> None:
    client.create_registered_model("old-name")
    run = client.create_run("0")
    client.create_model_version("old-name", f"runs:/{run.info.run_id}/model", run.info.run_id)
    time.sleep(0.05)
    before_rename = int(time.time() * 1000)
    time.sleep(0.05)
    client.rename_registered_model("old-name", "new-name")
    with shared_server.client() as http:
        then = http.get("/api/v1/registry/models/new-name", params={"as_of": before_rename})
        assert then.status_code == 200, then.text
        assert then.json()["name"] == "old-name" and len(then.json()["versions"]) == 1
        by_old = http.get("/api/v1/registry/models/old-name", params={"as_of": before_rename})
        assert by_old.status_code == 200 and by_old.json()["name"] == "old-name"
        missing = http.get("/api/v1/registry/models/never-existed", params={"as_of": before_rename})
        assert missing.status_code == 404


def test_access_log_has_one_line_per_request(shared_server: ServerProcess) -> None:
    with shared_server.client() as http:
        assert http.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "0"}).status_code == 200
        assert http.get("/api/2.0/mlflow/experiments/get", params={"experiment_id": "404404404"}).status_code == 404
    deadline = time.time() + 10
    while time.time() < deadline:
        lines = [ln for ln in shared_server.logs().splitlines() if "runledger.access" in ln]
        if any('"GET /api/2.0/mlflow/experiments/get" 404' in ln for ln in lines):
            break
        time.sleep(0.2)
    assert any('"GET /api/2.0/mlflow/experiments/get" 200' in ln for ln in lines), lines[-5:]
    assert any('"GET /api/2.0/mlflow/experiments/get" 404' in ln for ln in lines), lines[-5:]
