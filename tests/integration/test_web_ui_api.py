"""What MLflow's web UI calls besides the REST API, against a real embedded runledger, data logged with the
stock mlflow client: the UI's files, ``/graphql`` (mlflow's own schema), run and model-version artifacts,
upload, bulk metric histories, datasets, ``/version``, telemetry; each with malformed input too."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric
from servers import ServerProcess

from query.interval_sample import sample_positions
from query.mlflow_api.web_ui import build_dir
from query.settings import Settings

pytestmark = pytest.mark.integration

GET_RUN = """query GetRun($data: MlflowGetRunInput!) @component(name: "MLflow.ExperimentRunTracking") {
  mlflowGetRun(input: $data) { apiError { code message }
    run { info { runName status runUuid experimentId artifactUri endTime startTime userId lifecycleStage }
      experiment { experimentId name artifactLocation lifecycleStage }
      modelVersions { status version name source }
      data { metrics { key value step timestamp } params { key value } tags { key value } }
      inputs { datasetInputs { dataset { digest name } } modelInputs { modelId } }
      outputs { modelOutputs { modelId step } } } } }"""
SEARCH_RUNS = """query SearchRuns($data: MlflowSearchRunsInput!) { mlflowSearchRuns(input: $data) {
  runs { info { runName runUuid } data { metrics { key value } params { key value } } modelVersions { version } } } }"""
BULK = """query GetMetricHistoryBulkInterval($data: MlflowGetMetricHistoryBulkIntervalInput!) {
  mlflowGetMetricHistoryBulkInterval(input: $data) { __typename metrics { timestamp step runId key value }
  apiError { code message } } }"""


@pytest.fixture(scope="module")
def logged(shared_server: ServerProcess) -> Iterator[dict[str, Any]]:
    client = MlflowClient(tracking_uri=shared_server.url, registry_uri=shared_server.url)
    exp = client.create_experiment(f"web-ui-api-{time.time_ns()}")
    runs = []
    for i in range(3):
        run = client.create_run(exp, run_name=f"r{i}")
        rid = run.info.run_id
        client.log_param(rid, "lr", str(0.1 * (i + 1)))
        now = int(time.time() * 1000)
        values = [0.0 if s != 5_000 else 100.0 + i for s in range(10_000)]
        for lo in range(0, 10_000, 1000):
            client.log_batch(rid, metrics=[Metric("loss", values[s], now, s) for s in range(lo, lo + 1000)])
        client.log_text(rid, "hello artifact\n", "notes/readme.txt")
        client.log_dict(rid, {"a": 1}, "config.json")
        client.set_terminated(rid)
        runs.append(rid)
    model = f"ui-model-{time.time_ns()}"
    client.create_registered_model(model)
    client.create_model_version(model, f"runs:/{runs[0]}/notes", run_id=runs[0])
    with shared_server.client() as http:
        yield {"exp": exp, "runs": runs, "model": model, "http": http}


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error_code"] == code, body
    return str(body["message"])


# ------------------------------------------------------------------ the UI's files


def test_index_static_files_and_version(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    index = http.get("/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert '<div id="root"' in index.text
    script = index.text.split('src="', 1)[1].split('"', 1)[0]
    assert script.startswith("static-files/static/js/main.")
    js = http.get("/" + script)
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and len(js.content) > 100_000
    assert "max-age=2419200" in js.headers["cache-control"]
    assert http.get("/static-files/favicon.ico").status_code == 200
    folder = build_dir(Settings())
    assert folder is not None
    worker = next(p.name for p in folder.glob("*.worker.js"))
    assert http.get(f"/static-files/{worker}").status_code == 200  # the UI loads it in a web worker
    assert http.get("/static-files/nope.js").status_code == 404
    assert http.get("/static-files/../../../../etc/passwd").status_code == 404
    import mlflow

    assert http.get("/version").text == mlflow.__version__


def test_without_the_build_the_index_says_how_to_get_it(tmp_path: Path) -> None:
    s = ServerProcess(tmp_path / "data", env={"RUNLEDGER_UI_BUILD_DIR": str(tmp_path / "no-build")}).start()
    try:
        with s.client() as http:
            r = http.get("/")
            assert r.status_code == 404 and r.headers["content-type"].startswith("text/html")
            assert "pip install 'runledger[server]'" in r.text and "MLFLOW_TRACKING_URI" in r.text
            assert http.get("/static-files/static/js/main.js").status_code == 404
    finally:
        s.stop()


def test_ui_telemetry_answers_as_the_stock_server_with_telemetry_off(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    _error(http.get("/ajax-api/2.0/mlflow/users/current"), 404, "ENDPOINT_NOT_FOUND")  # no logins: as stock
    assert http.get("/ajax-api/3.0/mlflow/ui-telemetry").json() == {
        "disable_ui_telemetry": True, "disable_ui_events": [], "ui_rollout_percentage": 0}
    assert http.post("/ajax-api/3.0/mlflow/ui-telemetry", json={"records": [{"x": 1}]}).json() == {
        "status": "disabled"}


# ---------------------------------------------------------------------- artifacts


def test_artifacts_list_rest_and_ajax(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    rid = logged["runs"][0]
    for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow"):
        top = http.get(f"{prefix}/artifacts/list", params={"run_id": rid}).json()
        assert top["root_uri"].endswith(f"/{rid}/artifacts")
        assert [(f["path"], f["is_dir"]) for f in top["files"]] == [("config.json", False), ("notes", True)]
        notes = http.get(f"{prefix}/artifacts/list", params={"run_id": rid, "path": "notes"}).json()
        assert notes["files"] == [{"path": "notes/readme.txt", "is_dir": False, "file_size": 15}]
    assert http.get("/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": rid, "path": "empty"}).json() == {
        "root_uri": top["root_uri"]}
    _error(http.get("/ajax-api/2.0/mlflow/artifacts/list"), 400, "INVALID_PARAMETER_VALUE")
    _error(http.get("/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert _error(http.get("/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": rid, "path": "../x"}), 400,
                  "INVALID_PARAMETER_VALUE") == "Invalid path"  # mlflow server's exact words


def test_get_artifact_as_an_attachment_with_nosniff(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    rid = logged["runs"][0]
    r = http.get("/get-artifact", params={"path": "notes/readme.txt", "run_uuid": rid})
    assert r.status_code == 200 and r.text == "hello artifact\n"
    assert r.headers["content-type"] == "text/plain"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-disposition"] == 'attachment; filename="readme.txt"'
    assert http.get("/get-artifact", params={"path": "config.json", "run_id": rid}).json() == {"a": 1}
    _error(http.get("/get-artifact", params={"run_uuid": rid}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.get("/get-artifact", params={"path": "x"}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.get("/get-artifact", params={"path": "../../etc/passwd", "run_uuid": rid}), 400,
           "INVALID_PARAMETER_VALUE")
    _error(http.get("/get-artifact", params={"path": "missing.txt", "run_uuid": rid}), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(http.get("/get-artifact", params={"path": "a.txt", "run_uuid": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_model_version_get_artifact(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    r = http.get("/model-versions/get-artifact", params={"path": "readme.txt", "name": logged["model"], "version": "1"})
    assert r.status_code == 200 and r.text == "hello artifact\n"
    assert r.headers["x-content-type-options"] == "nosniff" and r.headers["content-type"] == "text/plain"
    assert r.headers["content-disposition"].startswith("attachment")
    _error(http.get("/model-versions/get-artifact", params={"path": "readme.txt", "name": logged["model"],
                                                           "version": "9"}), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(http.get("/model-versions/get-artifact", params={"path": "readme.txt", "name": logged["model"],
                                                           "version": "one"}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.get("/model-versions/get-artifact", params={"name": logged["model"], "version": "1"}), 400,
           "INVALID_PARAMETER_VALUE")


def test_upload_artifact(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    rid = logged["runs"][1]
    url = "/ajax-api/2.0/mlflow/upload-artifact"
    r = http.post(url, params={"run_uuid": rid, "path": "tables/eval.json"}, content=b'{"rows": []}')
    assert r.status_code == 200 and r.json() == {}
    assert http.get("/get-artifact", params={"path": "tables/eval.json", "run_uuid": rid}).content == b'{"rows": []}'
    bad = "INVALID_PARAMETER_VALUE"
    assert _error(http.post(url, params={"path": "a"}, content=b"x"), 400, bad) == "Request must specify run_uuid."
    assert _error(http.post(url, params={"run_uuid": rid}, content=b"x"), 400, bad) == "Request must specify path."
    assert _error(http.post(url, params={"run_uuid": rid, "path": "a"}), 400, bad) == "Request must specify data."
    _error(http.post(url, params={"run_uuid": rid, "path": "../a"}, content=b"x"), 400, "INVALID_PARAMETER_VALUE")
    assert "10MB" in _error(http.post(url, params={"run_uuid": rid, "path": "big"}, content=b"x" * (10 * 2**20 + 1)),
                            400, "INVALID_PARAMETER_VALUE")
    _error(http.post(url, params={"run_uuid": "nope", "path": "a"}, content=b"x"), 404, "RESOURCE_DOES_NOT_EXIST")


# ------------------------------------------------------------------------ metrics


def test_history_bulk_interval_many_runs_sampled_as_mlflow_samples(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    runs = logged["runs"]
    asked = [runs[1], runs[0], runs[2], runs[1]]  # MLflow answers in the order asked, repeats included
    r = http.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                 params={"run_ids": asked, "metric_key": "loss", "max_results": 2000})
    assert r.status_code == 200, r.text
    points = r.json()["metrics"]
    kept = sample_positions(10_000, 2000)  # steps 0..9,999: a step is its position
    assert [(p["run_id"], p["step"]) for p in points] == [(rid, s) for rid in asked for s in kept]
    for rid in runs:  # the spike at step 5,000 (between two sampled steps) survives runledger's own read
        native = http.get(f"/api/v1/runs/{rid}/metrics/loss", params={"max_points": 100}).json()
        assert 100.0 + runs.index(rid) in native["values"] and 5_000 in native["steps"]


def test_history_bulk_interval_keeps_spikes_of_series_ten_times_longer_than_asked(logged: dict[str, Any]) -> None:
    """10,000 points, 100 asked: MLflow's positions would keep 1 % of the points, whatever their values;
    each step bucket's minimum and maximum are answered instead, so the spike at step 5,000 is in."""
    http: httpx.Client = logged["http"]
    runs = logged["runs"]
    asked = [runs[2], runs[0]]
    r = http.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                 params={"run_ids": asked, "metric_key": "loss", "max_results": 100})
    assert r.status_code == 200, r.text
    points = r.json()["metrics"]
    assert list(dict.fromkeys(p["run_id"] for p in points)) == asked
    for rid in asked:
        mine = [p for p in points if p["run_id"] == rid]
        assert 2 <= len(mine) <= 100 and [p["step"] for p in mine] == sorted(p["step"] for p in mine)
        assert {"step": 5_000, "value": 100.0 + runs.index(rid)} in [{"step": p["step"], "value": p["value"]}
                                                                     for p in mine]


    window = http.get("/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval",
                      params={"run_ids": runs[0], "metric_key": "loss", "start_step": 10, "end_step": 19}).json()
    assert [p["step"] for p in window["metrics"]] == list(range(10, 20))


def test_history_bulk_interval_refuses_malformed_input(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    url = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
    rid = logged["runs"][0]
    _error(http.get(url, params={"metric_key": "loss"}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.get(url, params={"run_ids": rid}), 400, "INVALID_PARAMETER_VALUE")
    assert "at most 100" in _error(http.get(url, params={"run_ids": [f"r{i}" for i in range(101)],
                                                         "metric_key": "loss"}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.get(url, params={"run_ids": rid, "metric_key": "loss", "start_step": 3}), 400,
           "INVALID_PARAMETER_VALUE")
    _error(http.get(url, params={"run_ids": rid, "metric_key": "loss", "max_results": "many"}), 400,
           "INVALID_PARAMETER_VALUE")
    _error(http.get(url, params={"run_ids": rid, "metric_key": "loss", "max_results": 0}), 400,
           "INVALID_PARAMETER_VALUE")
    unknown = http.get(url, params={"run_ids": [rid, "nope"], "metric_key": "loss", "max_results": 2000})
    assert [(p["run_id"], p["step"]) for p in unknown.json()["metrics"]] == [
        (rid, s) for s in sample_positions(10_000, 2000)]  # as MLflow: the unknown run adds nothing
    assert http.get(url, params={"run_ids": "nope", "metric_key": "loss"}).json() == {}


def test_history_bulk(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    url = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    runs = sorted(logged["runs"][:2])
    points = http.get(url, params={"run_id": runs, "metric_key": "loss"}).json()["metrics"]
    assert len(points) == 20_000 and [p["run_id"] for p in points[::10_000]] == runs
    assert [p["step"] for p in points[:3]] == [0, 1, 2]
    assert len(http.get(url, params={"run_id": runs, "metric_key": "loss", "max_results": 5}).json()["metrics"]) == 5
    _error(http.get(url, params={"metric_key": "loss"}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.get(url, params={"run_id": runs}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.get(url, params={"run_id": [f"r{i}" for i in range(101)], "metric_key": "x"}), 400,
           "INVALID_PARAMETER_VALUE")
    _error(http.get(url, params={"run_id": runs, "metric_key": "loss", "max_results": "x"}), 400,
           "INVALID_PARAMETER_VALUE")


# ------------------------------------------------------------------------ GraphQL


def _gql(http: httpx.Client, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    r = http.post("/graphql", json={"query": query, "variables": variables})
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_graphql_get_run_as_the_run_page_asks(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    rid = logged["runs"][0]
    out = _gql(http, GET_RUN, {"data": {"runId": rid}})
    assert out["errors"] is None
    run = out["data"]["mlflowGetRun"]["run"]
    assert run["info"]["runName"] == "r0" and run["info"]["status"] == "FINISHED"
    assert run["info"]["experimentId"] == logged["exp"] and run["experiment"]["experimentId"] == logged["exp"]
    assert run["data"]["params"] == [{"key": "lr", "value": "0.1"}]
    assert run["data"]["metrics"] == [{"key": "loss", "value": 0.0, "step": "9999", "timestamp": run["data"][
        "metrics"][0]["timestamp"]}]
    assert run["modelVersions"] == [{"status": "READY", "version": "1", "name": logged["model"],
                                     "source": f"runs:/{rid}/notes"}]
    missing = _gql(http, GET_RUN, {"data": {"runId": "nope"}})
    assert missing["data"] == {"mlflowGetRun": None} and "not found" in missing["errors"][0]


def test_graphql_search_runs_and_bulk_interval(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    out = _gql(http, SEARCH_RUNS, {"data": {"experimentIds": [logged["exp"]], "runViewType": "ACTIVE_ONLY",
                                            "orderBy": ["attributes.run_name ASC"]}})
    assert out["errors"] is None
    assert [r["info"]["runName"] for r in out["data"]["mlflowSearchRuns"]["runs"]] == ["r0", "r1", "r2"]
    mutation = _gql(http, SEARCH_RUNS.replace("query SearchRuns", "mutation SearchRuns"),
                    {"data": {"experimentIds": [logged["exp"]], "filter": "params.lr = '0.2'"}})
    assert [r["info"]["runName"] for r in mutation["data"]["mlflowSearchRuns"]["runs"]] == ["r1"]
    bulk = _gql(http, BULK, {"data": {"runIds": logged["runs"], "metricKey": "loss", "maxResults": 2000}})
    metrics = bulk["data"]["mlflowGetMetricHistoryBulkInterval"]["metrics"]
    assert [(m["runId"], int(m["step"])) for m in metrics] == [
        (rid, s) for rid in logged["runs"] for s in sample_positions(10_000, 2000)]


GET_EXPERIMENT = """query MlflowGetExperimentQuery($input: MlflowGetExperimentInput!) {
  mlflowGetExperiment(input: $input) { apiError { code message }
    experiment { artifactLocation creationTime experimentId lastUpdateTime lifecycleStage name tags { key value } } } }"""


def test_graphql_schema_is_built_at_startup_not_by_the_first_request(tmp_path: Path) -> None:
    """The runs page's first request is ``MlflowGetExperimentQuery``; answered seconds late (the schema built
    by that request), the UI also fetched the experiment over REST, which it never does on the stock server
    (docs/UI.md). The server builds the schema at startup, before any ``/graphql`` request."""
    server = ServerProcess(tmp_path / "data").start()
    try:
        exp = MlflowClient(server.url).create_experiment("schema-at-startup")
        deadline = time.monotonic() + 120
        while "GraphQL schema built in" not in server.logs():
            assert time.monotonic() < deadline, server.logs()[-2000:]
            time.sleep(0.2)
        assert '"POST /graphql"' not in server.logs() and '"GET /graphql"' not in server.logs()
        with server.client() as http:
            out = _gql(http, GET_EXPERIMENT, {"input": {"experimentId": exp}})
        assert out["errors"] is None and out["data"]["mlflowGetExperiment"]["apiError"] is None
        got = out["data"]["mlflowGetExperiment"]["experiment"]
        assert (got["experimentId"], got["name"], got["lifecycleStage"]) == (exp, "schema-at-startup", "active")
    finally:
        server.stop()


def test_graphql_refuses_malformed_requests(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    _error(http.post("/graphql", content=b"{not json", headers={"content-type": "application/json"}), 400,
           "INVALID_PARAMETER_VALUE")
    _error(http.post("/graphql", json={"variables": {}}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.post("/graphql", json=[1, 2]), 400, "INVALID_PARAMETER_VALUE")
    _error(http.post("/graphql", json={"query": "{ test { output } }", "variables": [1]}), 400,
           "INVALID_PARAMETER_VALUE")
    assert _gql(http, "{ nope }")["errors"] == ["Cannot query field 'nope' on type 'Query'."]
    assert _gql(http, "{ mlflowGetRun(")["data"] is None
    wrong_type = _gql(http, GET_RUN, {"data": {"runId": 5}})
    assert wrong_type["data"] is None and wrong_type["errors"]
    echo = http.get("/graphql", params={"query": '{ test(inputString: "hi") { output } }'}).json()
    assert echo == {"data": {"test": {"output": "hi"}}, "errors": None}


# ----------------------------------------------------------------------- datasets


def test_search_datasets(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    url = "/ajax-api/2.0/mlflow/experiments/search-datasets"
    assert http.post(url, json={"experiment_ids": [logged["exp"]]}).json().get("dataset_summaries", []) == []
    _error(http.post(url, json={}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.post(url, json={"experiment_ids": [str(i) for i in range(21)]}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.post(url, json={"experiment_ids": 5}), 400, "INVALID_PARAMETER_VALUE")


def test_run_history_is_the_audit_trail(logged: dict[str, Any]) -> None:
    http: httpx.Client = logged["http"]
    rid = logged["runs"][2]
    r = http.post("/ajax-api/2.0/mlflow/runs/update", json={"run_id": rid, "run_name": "renamed"},
                  headers={"X-Runledger-Actor": "ana"})
    assert r.status_code == 200, r.text
    events = http.get(f"/api/v1/runs/{rid}/history").json()["events"]
    assert events[0]["type"] == "run_created"
    assert [(e["type"], e["actor"], e["body"].get("name")) for e in events if e["type"] == "run_renamed"] == [
        ("run_renamed", "ana", "renamed")]
    assert http.get("/api/v1/runs/nope/history").status_code == 404
