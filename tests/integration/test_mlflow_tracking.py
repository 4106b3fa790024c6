"""The stock mlflow client against ``runledger serve``: experiments, runs, metrics, artifacts, datasets.

Every test drives mlflow's own API (fluent and ``MlflowClient``) the way a
user's script does, against one embedded server for the module, and checks
the values that come back.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a server error must fail the test, not retry

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from servers import ServerProcess

from query.interval_sample import sample_positions

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(shared_server: ServerProcess) -> Iterator[MlflowClient]:
    mlflow.set_tracking_uri(shared_server.url)
    yield MlflowClient(shared_server.url)
    mlflow.set_tracking_uri(None)


def test_fluent_run_logs_params_metrics_tags_and_reads_them_back(client: MlflowClient) -> None:
    mlflow.set_experiment("fluent")
    with mlflow.start_run(run_name="first") as run:
        mlflow.log_param("lr", 0.01)
        mlflow.log_params({"layers": 4, "optimizer": "adam"})
        for step in range(50):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_metrics({"acc": 0.75, "bad": float("nan")}, step=7)
        mlflow.set_tags({"team": "nlp", "stage": "dev"})
    got = client.get_run(run.info.run_id)
    assert got.info.status == "FINISHED" and got.info.end_time is not None
    assert got.info.run_name == "first" and got.data.tags["mlflow.runName"] == "first"
    assert got.data.params == {"lr": "0.01", "layers": "4", "optimizer": "adam"}
    assert got.data.metrics["loss"] == pytest.approx(1 / 50) and got.data.metrics["acc"] == 0.75
    assert math.isnan(got.data.metrics["bad"])
    assert got.data.tags["team"] == "nlp" and got.data.tags["stage"] == "dev"
    history = client.get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == list(range(50))
    assert [m.value for m in history] == pytest.approx([1.0 / (s + 1) for s in range(50)])
    assert got.info.artifact_uri.startswith("mlflow-artifacts:/")


def test_nested_runs_log_text_and_the_missing_experiment_error(shared_server: ServerProcess,
                                                                 client: MlflowClient) -> None:
    mlflow.set_experiment("nested")  # get-by-name misses first: must be the JSON 404 the client expects
    with mlflow.start_run(run_name="outer") as outer:
        mlflow.log_text("epoch 1 ok\n", "logs/train.txt")
        with mlflow.start_run(run_name="inner", nested=True) as inner:
            mlflow.log_metric("score", 0.5, step=1)
    child = client.get_run(inner.info.run_id)
    assert child.data.tags["mlflow.parentRunId"] == outer.info.run_id and child.data.metrics == {"score": 0.5}
    assert child.data.tags["mlflow.user"] and child.data.tags["mlflow.source.type"] == "LOCAL"
    children = client.search_runs([outer.info.experiment_id],
                                  filter_string=f"tags.mlflow.parentRunId = '{outer.info.run_id}'")
    assert [r.info.run_id for r in children] == [inner.info.run_id]
    assert mlflow.artifacts.load_text(f"runs:/{outer.info.run_id}/logs/train.txt") == "epoch 1 ok\n"
    with httpx.Client(base_url=shared_server.url, timeout=10) as http:
        miss = http.get("/api/2.0/mlflow/experiments/get-by-name", params={"experiment_name": "never-made"})
        assert miss.status_code == 404 and miss.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        gone = http.post("/api/2.0/mlflow/runs/log-metric",
                         json={"run_id": "0" * 32, "key": "m", "value": 1, "timestamp": 0, "step": 0})
        assert gone.status_code == 404 and gone.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_experiments_create_get_search_rename_tag_delete_restore(client: MlflowClient) -> None:
    eid = client.create_experiment("exp-a", tags={"owner": "ana"})
    with pytest.raises(MlflowException) as dup:
        client.create_experiment("exp-a")
    assert dup.value.error_code == "RESOURCE_ALREADY_EXISTS"
    exp = client.get_experiment(eid)
    assert exp.name == "exp-a" and exp.tags["owner"] == "ana" and exp.lifecycle_stage == "active"
    assert client.get_experiment_by_name("exp-a").experiment_id == eid
    assert client.get_experiment_by_name("no-such-experiment") is None
    client.set_experiment_tag(eid, "phase", "2")
    client.rename_experiment(eid, "exp-b")
    assert client.get_experiment(eid).name == "exp-b" and client.get_experiment(eid).tags["phase"] == "2"
    names = [e.name for e in client.search_experiments(filter_string="name LIKE 'exp-%'")]
    assert names == ["exp-b"]
    assert [e.name for e in client.search_experiments(filter_string="tags.owner = 'ana'")] == ["exp-b"]
    client.delete_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "deleted"
    assert eid not in [e.experiment_id for e in client.search_experiments()]
    assert eid in [e.experiment_id for e in client.search_experiments(view_type=2)]  # DELETED_ONLY
    client.restore_experiment(eid)
    assert client.get_experiment(eid).lifecycle_stage == "active"
    with pytest.raises(MlflowException) as missing:
        client.get_experiment("424242")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_search_experiments_pages_with_tokens(client: MlflowClient) -> None:
    made = {client.create_experiment(f"paged-{i}") for i in range(5)}
    seen: list[str] = []
    page = client.search_experiments(max_results=2, filter_string="name LIKE 'paged-%'")
    while True:
        seen += [e.experiment_id for e in page]
        if not page.token:
            break
        page = client.search_experiments(max_results=2, filter_string="name LIKE 'paged-%'", page_token=page.token)
    assert sorted(seen) == sorted(made) and len(seen) == 5


def test_run_lifecycle_update_delete_restore_and_system_tags(client: MlflowClient) -> None:
    eid = client.create_experiment("lifecycle")
    parent = client.create_run(eid, run_name="parent")
    child = client.create_run(eid, tags={"mlflow.parentRunId": parent.info.run_id}, run_name="child")
    assert child.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert client.get_run(child.info.run_id).info.status == "RUNNING"
    client.update_run(child.info.run_id, status="KILLED", name="renamed")
    got = client.get_run(child.info.run_id)
    assert got.info.status == "KILLED" and got.info.run_name == "renamed" and got.info.end_time
    assert got.data.tags["mlflow.runName"] == "renamed"
    client.set_terminated(parent.info.run_id, status="FAILED")
    assert client.get_run(parent.info.run_id).info.status == "FAILED"
    client.delete_run(child.info.run_id)
    assert client.get_run(child.info.run_id).info.lifecycle_stage == "deleted"
    active = [r.info.run_id for r in client.search_runs([eid])]
    deleted = [r.info.run_id for r in client.search_runs([eid], run_view_type=2)]
    assert active == [parent.info.run_id] and deleted == [child.info.run_id]
    assert len(client.search_runs([eid], run_view_type=3)) == 2  # ALL
    with pytest.raises(MlflowException) as refused:
        client.log_param(child.info.run_id, "x", "1")
    assert refused.value.error_code == "INVALID_PARAMETER_VALUE"
    client.restore_run(child.info.run_id)
    client.log_param(child.info.run_id, "x", "1")
    assert client.get_run(child.info.run_id).data.params == {"x": "1"}


def test_tags_set_and_delete(client: MlflowClient) -> None:
    run = client.create_run(client.create_experiment("tags"))
    client.set_tag(run.info.run_id, "k", "v")
    client.delete_tag(run.info.run_id, "k")
    assert "k" not in client.get_run(run.info.run_id).data.tags
    with pytest.raises(MlflowException) as missing:
        client.delete_tag(run.info.run_id, "never-set")
    assert missing.value.error_code == "RESOURCE_DOES_NOT_EXIST"  # as mlflow server 3.17 answers
    assert "No tag with name: never-set" in missing.value.message


def test_params_are_immutable_but_relogging_the_same_value_is_fine(client: MlflowClient) -> None:
    run = client.create_run(client.create_experiment("params"))
    client.log_param(run.info.run_id, "lr", "0.1")
    client.log_param(run.info.run_id, "lr", "0.1")
    with pytest.raises(MlflowException) as changed:
        client.log_param(run.info.run_id, "lr", "0.2")
    assert changed.value.error_code == "INVALID_PARAMETER_VALUE" and "0.1" in changed.value.message
    assert client.get_run(run.info.run_id).data.params == {"lr": "0.1"}


def test_log_batch_limits_are_mlflows(shared_server: ServerProcess, client: MlflowClient) -> None:
    run = client.create_run(client.create_experiment("limits"))
    rid = run.info.run_id
    # the client splits big batches itself, so the server's limits are tried over raw HTTP
    with httpx.Client(base_url=shared_server.url, timeout=30) as http:
        def refused(body: dict) -> str:
            r = http.post("/api/2.0/mlflow/runs/log-batch", json={"run_id": rid, **body})
            assert r.status_code == 400 and r.json()["error_code"] == "INVALID_PARAMETER_VALUE", r.text
            return r.json()["message"]

        assert "1000" in refused({"metrics": [{"key": "m", "value": 1, "timestamp": 0, "step": i}
                                              for i in range(1001)]})
        assert "100" in refused({"params": [{"key": f"p{i}", "value": "v"} for i in range(101)]})
        assert "100" in refused({"tags": [{"key": f"t{i}", "value": "v"} for i in range(101)]})
        assert "250" in refused({"params": [{"key": "k" * 251, "value": "v"}]})
        refused({"metrics": [{"key": "m", "value": "not a number", "timestamp": 0, "step": 0}]})
    assert client.get_run(rid).data.params == {}  # nothing of a refused batch was logged
    client.log_batch(rid, metrics=[Metric("m", float(i), 0, i) for i in range(1000)],
                     params=[Param(f"p{i}", str(i)) for i in range(100)], tags=[RunTag("t", "v")])
    got = client.get_run(rid)
    assert len(got.data.params) == 100 and got.data.metrics["m"] == 999.0
    assert len(client.get_metric_history(rid, "m")) == 1000


def test_a_retried_log_batch_never_double_counts(shared_server: ServerProcess, client: MlflowClient) -> None:
    run = client.create_run(client.create_experiment("retries"))
    body = {"run_id": run.info.run_id, "params": [{"key": "p", "value": "1"}],
            "metrics": [{"key": "loss", "value": 1.0 / (s + 1), "timestamp": 1_700_000_000_000 + s, "step": s}
                        for s in range(100)]}
    with httpx.Client(base_url=shared_server.url, timeout=30) as http:
        for _ in range(3):  # what the client's retry of a timed-out POST sends
            assert http.post("/api/2.0/mlflow/runs/log-batch", json=body).status_code == 200
        state = http.get(f"/api/v1/runs/{run.info.run_id}").json()
    assert state["metrics"]["loss"]["count"] == 100
    history = client.get_metric_history(run.info.run_id, "loss")
    assert len(history) == 100 and [m.step for m in history] == list(range(100))


def test_async_logging_from_many_threads_loses_nothing(client: MlflowClient) -> None:
    eid = client.create_experiment("async")
    run = client.create_run(eid)
    rid = run.info.run_id
    futures = [client.log_batch(rid, metrics=[Metric(f"k{k}", float(s), 1_700_000_000_000 + s, s) for k in range(20)],
                                synchronous=False) for s in range(50)]
    for f in futures:
        f.wait()
    errors: list[BaseException] = []

    def log(thread: int) -> None:
        try:
            for s in range(20):
                client.log_metric(rid, f"t{thread}", float(s), step=s)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=log, args=(t,)) for t in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    got = client.get_run(rid)
    assert all(got.data.metrics[f"k{k}"] == 49.0 for k in range(20))
    assert sum(len(client.get_metric_history(rid, f"k{k}")) for k in range(20)) == 1000
    assert all(len(client.get_metric_history(rid, f"t{t}")) == 20 for t in range(5))


def test_search_runs_full_grammar_order_and_paging(client: MlflowClient) -> None:
    eid = client.create_experiment("search")
    ids = {}
    for i in range(6):
        r = client.create_run(eid, run_name=f"run-{i}", tags={"group": "a" if i % 2 else "b"})
        client.log_batch(r.info.run_id, metrics=[Metric("loss", 1.0 - i / 10, 0, 0)],
                         params=[Param("lr", f"0.{i}"), Param("arch", "CNN" if i < 3 else "transformer")])
        ids[i] = r.info.run_id

    def names(flt: str, **kw: object) -> list[str]:
        return [r.info.run_name for r in client.search_runs([eid], filter_string=flt, **kw)]  # type: ignore[arg-type]

    assert sorted(names("metrics.loss < 0.75")) == ["run-3", "run-4", "run-5"]
    assert sorted(names("metrics.loss >= 0.9 AND params.lr != '0.0'")) == ["run-1"]
    assert sorted(names("params.arch LIKE 'trans%'")) == ["run-3", "run-4", "run-5"]
    assert sorted(names("params.arch ILIKE 'cnn'")) == ["run-0", "run-1", "run-2"]
    assert sorted(names("tags.group = 'a' AND metrics.loss <= 0.8")) == ["run-3", "run-5"]
    assert sorted(names("attributes.run_name IN ('run-1', 'run-4')")) == ["run-1", "run-4"]
    assert sorted(names("attributes.status = 'RUNNING' AND params.lr = '0.2'")) == ["run-2"]
    assert names("", order_by=["metrics.loss ASC"]) == [f"run-{i}" for i in range(5, -1, -1)]
    pages, token = [], None
    while True:
        page = client.search_runs([eid], max_results=4, page_token=token, order_by=["params.lr DESC"])
        pages.append([r.info.run_name for r in page])
        token = page.token
        if not token:
            break
    assert pages == [["run-5", "run-4", "run-3", "run-2"], ["run-1", "run-0"]]
    df = mlflow.search_runs([eid], filter_string="metrics.loss > 0.85")
    assert sorted(df["tags.mlflow.runName"]) == ["run-0", "run-1"]


def test_metric_history_paging_bulk_interval_and_extremes(shared_server: ServerProcess,
                                                                client: MlflowClient) -> None:
    run = client.create_run(client.create_experiment("history"))
    rid = run.info.run_id
    values = [0.0] * 5000
    values[1234] = 100.0
    for start in range(0, 5000, 1000):
        client.log_batch(rid, metrics=[Metric("x", values[s], 1_700_000_000_000, s) for s in range(start, start + 1000)])
    with httpx.Client(base_url=shared_server.url, timeout=30) as http:
        first = http.get("/api/2.0/mlflow/metrics/get-history",
                         params={"run_id": rid, "metric_key": "x", "max_results": 3000}).json()
        assert len(first["metrics"]) == 3000 and first["next_page_token"]
        rest = http.get("/api/2.0/mlflow/metrics/get-history", params={
            "run_id": rid, "metric_key": "x", "max_results": 3000, "page_token": first["next_page_token"]}).json()
        assert len(rest["metrics"]) == 2000 and "next_page_token" not in rest
        bulk = http.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                        params={"run_ids": rid, "metric_key": "x", "max_results": 100}).json()["metrics"]
        native = http.get(f"/api/v1/runs/{rid}/metrics/x", params={"max_points": 100}).json()
    # 5,000 points, 100 asked (over 2,500 and 10x): each step bucket's min and max, so the spike is in
    assert 2 <= len(bulk) <= 100 and all(p["run_id"] == rid for p in bulk)
    assert {"step": 1234, "value": 100.0} in [{"step": p["step"], "value": p["value"]} for p in bulk]
    assert 1234 not in sample_positions(5000, 100)  # MLflow's positions would have missed it
    assert max(native["values"]) == 100.0  # the same on runledger's own read
    small = http_get_steps(shared_server.url, rid, max_results=1000)  # 5x: MLflow's positions
    assert small == sample_positions(5000, 1000)
    assert len(client.get_metric_history(rid, "x")) == 5000


def http_get_steps(url: str, run_id: str, max_results: int) -> list[int]:
    r = httpx.get(url + "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                  params={"run_ids": run_id, "metric_key": "x", "max_results": max_results}, timeout=30)
    assert r.status_code == 200, r.text
    return [p["step"] for p in r.json()["metrics"]]


def test_artifacts_upload_list_download_through_the_proxy(client: MlflowClient, tmp_path: Path) -> None:
    mlflow.set_experiment("artifacts")
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "a.bin").write_bytes(bytes(range(256)) * 1000)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        mlflow.log_artifacts(str(tmp_path / "dir"), artifact_path="data")
        mlflow.log_dict({"a": 1}, "config/params.json")
    rid = run.info.run_id
    assert sorted(a.path for a in client.list_artifacts(rid)) == ["config", "data", "notes.txt"]
    listed = client.list_artifacts(rid, "data")
    assert [(a.path, a.is_dir, a.file_size) for a in listed] == [("data/a.bin", False, 256_000)]
    out = Path(mlflow.artifacts.download_artifacts(run_id=rid, dst_path=str(tmp_path / "down")))
    assert (out / "notes.txt").read_text() == "hello"
    assert (out / "data" / "a.bin").read_bytes() == bytes(range(256)) * 1000
    assert mlflow.artifacts.load_dict(f"runs:/{rid}/config/params.json") == {"a": 1}


def test_log_input_dataset_shows_on_the_run(client: MlflowClient) -> None:
    import pandas as pd

    mlflow.set_experiment("datasets")
    dataset = mlflow.data.from_pandas(pd.DataFrame({"x": [1, 2, 3]}), source="s3://bucket/train.csv", name="train")
    with mlflow.start_run() as run:
        mlflow.log_input(dataset, context="training")
        mlflow.log_input(dataset, context="training")  # the same input again is recorded once
    inputs = client.get_run(run.info.run_id).inputs.dataset_inputs
    assert len(inputs) == 1 and inputs[0].dataset.name == "train"
    assert inputs[0].dataset.digest == dataset.digest
    assert {t.key: t.value for t in inputs[0].tags}["mlflow.data.context"] == "training"


def test_health_and_server_info(shared_server: ServerProcess) -> None:
    with httpx.Client(base_url=shared_server.url, timeout=10) as http:
        assert http.get("/health").text == "OK"
        info = http.get("/api/3.0/mlflow/server-info").json()
        assert info["workspaces_enabled"] is False
        assert http.get("/ajax-api/2.0/mlflow/experiments/get-by-name",
                        params={"experiment_name": "Default"}).json()["experiment"]["experiment_id"] == "0"
