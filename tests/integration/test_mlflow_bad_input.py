"""Malformed input on every MLflow endpoint: a clear MLflow error (4xx, ``error_code``), never a 500.

Each endpoint gets a non-JSON body, a JSON array, an empty object (missing
required fields) and wrong types; unknown routes and methods answer
``ENDPOINT_NOT_FOUND``. Afterwards the server still serves a normal call.
"""

from __future__ import annotations

import httpx
import pytest
from servers import ServerProcess

pytestmark = pytest.mark.integration

P = "/api/2.0/mlflow"
ENDPOINTS = [
    ("POST", "/experiments/create"), ("GET", "/experiments/get"), ("GET", "/experiments/get-by-name"),
    ("POST", "/experiments/search"), ("POST", "/experiments/update"), ("POST", "/experiments/delete"),
    ("POST", "/experiments/restore"), ("POST", "/experiments/set-experiment-tag"),
    ("POST", "/runs/create"), ("GET", "/runs/get"), ("POST", "/runs/update"), ("POST", "/runs/delete"),
    ("POST", "/runs/restore"), ("POST", "/runs/search"), ("POST", "/runs/log-batch"), ("POST", "/runs/log-metric"),
    ("POST", "/runs/log-parameter"), ("POST", "/runs/set-tag"), ("POST", "/runs/delete-tag"),
    ("POST", "/runs/log-inputs"), ("POST", "/runs/outputs"),
    ("GET", "/metrics/get-history"), ("GET", "/metrics/get-history-bulk-interval"),
    ("POST", "/logged-models"), ("GET", "/logged-models/m-nope"), ("PATCH", "/logged-models/m-nope"),
    ("DELETE", "/logged-models/m-nope"), ("POST", "/logged-models/search"), ("PATCH", "/logged-models/m-nope/tags"),
    ("DELETE", "/logged-models/m-nope/tags/k"), ("POST", "/logged-models/m-nope/params"),
    ("POST", "/registered-models/create"), ("GET", "/registered-models/get"), ("POST", "/registered-models/rename"),
    ("PATCH", "/registered-models/update"), ("DELETE", "/registered-models/delete"),
    ("GET", "/registered-models/search"), ("POST", "/registered-models/set-tag"),
    ("DELETE", "/registered-models/delete-tag"), ("POST", "/registered-models/alias"),
    ("DELETE", "/registered-models/alias"), ("GET", "/registered-models/alias"),
    ("POST", "/registered-models/get-latest-versions"),
    ("POST", "/model-versions/create"), ("GET", "/model-versions/get"), ("PATCH", "/model-versions/update"),
    ("DELETE", "/model-versions/delete"), ("GET", "/model-versions/search"),
    ("POST", "/model-versions/transition-stage"), ("POST", "/model-versions/set-tag"),
    ("DELETE", "/model-versions/delete-tag"), ("GET", "/model-versions/get-download-uri"),
]
BODIES = [b"{not json", b"[1, 2]", b"{}", b'{"name": 5, "run_id": [], "experiment_id": {}, "version": "x", '
                                             b'"metrics": "m", "params": 3, "tags": [1], "stage": 7, "key": null, '
                                             b'"max_results": "lots", "page_token": "%%%", "filter": "a b c"}']
#: Endpoints whose every field is optional: an empty request is a valid one there.
ALL_OPTIONAL = {"/experiments/search", "/runs/create", "/runs/search", "/logged-models/search",
                "/logged-models/m-nope/params", "/registered-models/search", "/model-versions/search"}
QUERIES = [{}, {"name": "", "run_id": "", "experiment_id": "nope", "version": "-1", "max_results": "x",
                "page_token": "garbage", "metric_key": "", "run_ids": "", "filter": "metrics.x <"}]


@pytest.mark.parametrize("method,path", ENDPOINTS, ids=[f"{m} {p}" for m, p in ENDPOINTS])
def test_malformed_requests_get_a_clear_mlflow_error(shared_server: ServerProcess, method: str, path: str) -> None:
    with httpx.Client(base_url=shared_server.url, timeout=30) as http:
        bodies = [b for b in BODIES if not (b == b"{}" and path in ALL_OPTIONAL)]
        queries = QUERIES[1:] if path in ALL_OPTIONAL else QUERIES
        attempts = ([http.request(method, P + path, content=b, headers={"content-type": "application/json"})
                     for b in bodies] if method != "GET" else [])
        attempts += [http.request(method, P + path, params=q) for q in queries]
        for r in attempts:
            assert 400 <= r.status_code < 500, (r.request.url, r.request.content[:80], r.status_code, r.text)
            body = r.json()
            assert body["error_code"] in ("INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST", "BAD_REQUEST",
                                          "RESOURCE_ALREADY_EXISTS"), body
            assert body["message"]
        assert http.get(P + "/experiments/get", params={"experiment_id": "0"}).status_code == 200


def test_artifact_paths_that_escape_the_root_are_refused(shared_server: ServerProcess) -> None:
    with httpx.Client(base_url=shared_server.url, timeout=30) as http:
        for path in ("../../etc/passwd", "a/../../b", "%2e%2e/x", "a/%2e%2e/%2e%2e/%2e%2e/x"):
            r = http.put(f"/api/2.0/mlflow-artifacts/artifacts/{path}", content=b"x")
            assert r.status_code in (400, 404), (path, r.status_code, r.text)
        r = http.get("/api/2.0/mlflow-artifacts/artifacts/0/does/not/exist.txt")
        assert r.status_code == 404 and r.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        refused = http.get("/api/2.0/mlflow-artifacts/artifacts", params={"path": "../.."})
        assert refused.status_code == 400 and refused.json()["message"] == "Invalid path"  # mlflow server's words
        # checked before the model is looked up, and a doubled slash is one (as mlflow server; MLflow's
        # test_path_validation joins a tracking URI ending in '/')
        for path in ("/model-versions/get-artifact", "//model-versions/get-artifact"):  # absolute URLs: httpx
            r = httpx.get(shared_server.url + path,  # would read a base-relative "//x" as a host
                          params={"name": "no-such-model", "version": "1", "path": "../path"}, timeout=30)
            assert (r.status_code, r.json()["message"]) == (400, "Invalid path"), (path, r.text)
        doubled = httpx.post(shared_server.url + "//api/2.0/mlflow/experiments/search", json={"max_results": 1})
        assert doubled.status_code == 200 and "experiments" in doubled.json(), doubled.text


@pytest.mark.parametrize("method,path", [("GET", f"{P}/no/such/route"), ("POST", f"{P}/runs/get"),
                                         ("GET", "/ajax-api/2.0/mlflow/traces/xyz"),
                                         ("PUT", f"{P}/experiments/create"),
                                         ("POST", "/api/3.0/mlflow/gateway/endpoints/create")])
def test_unknown_endpoints_answer_endpoint_not_found(shared_server: ServerProcess, method: str, path: str) -> None:
    r = httpx.request(method, shared_server.url + path, timeout=10)
    assert r.status_code == 404 and r.json()["error_code"] == "ENDPOINT_NOT_FOUND"
