"""``runledger serve --default-artifact-root``: new experiments' artifacts where the operator says, written
by the stock mlflow client itself (as with ``mlflow server --default-artifact-root``), read back through
the client and through runledger's own artifact endpoints; model versions registered from those folders.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # a server error must fail the test, not retry

import mlflow
from mlflow import MlflowClient
from servers import REPO, RUNLEDGER, ServerProcess

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rooted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One server whose default artifact root is a ``file://`` URI (how MLflow's own tests start theirs)."""
    base = tmp_path_factory.mktemp("rooted")
    folder = base / "roots"
    root_uri = folder.as_uri() + "/"  # a trailing slash is dropped, as MLflow drops it
    server = ServerProcess(base / "data", extra_args=["--default-artifact-root", root_uri]).start()
    mlflow.set_tracking_uri(server.url)
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            yield {"server": server, "client": MlflowClient(server.url), "folder": folder,
                   "root": folder.as_uri(), "http": http}
    finally:
        mlflow.set_tracking_uri(None)
        server.stop()


def _error(r: httpx.Response, status: int, code: str) -> str:
    assert r.status_code == status, r.text
    assert r.json()["error_code"] == code, r.text
    return str(r.json()["message"])


def _run_with_files(tmp_path: Path, experiment: str) -> Any:
    (tmp_path / "notes.txt").write_text("hello local")
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "a.bin").write_bytes(bytes(range(256)) * 10)
    mlflow.set_experiment(experiment)
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "notes.txt"))
        mlflow.log_artifacts(str(tmp_path / "data"), artifact_path="data")
    return run


def test_new_experiments_and_the_default_one_live_under_the_root(rooted: dict[str, Any]) -> None:
    client: MlflowClient = rooted["client"]
    assert client.get_experiment("0").artifact_location == f"{rooted['root']}/0"
    eid = client.create_experiment("rooted-exp")
    assert client.get_experiment(eid).artifact_location == f"{rooted['root']}/{eid}"
    run = client.create_run(eid)
    assert run.info.artifact_uri == f"{rooted['root']}/{eid}/{run.info.run_id}/artifacts"
    elsewhere = client.create_experiment("own-location", artifact_location="s3://bucket/own")
    assert client.get_experiment(elsewhere).artifact_location == "s3://bucket/own"  # as given, still


def test_the_client_writes_into_the_folder_and_reads_it_back(rooted: dict[str, Any], tmp_path: Path) -> None:
    client: MlflowClient = rooted["client"]
    run = _run_with_files(tmp_path, "client-writes")
    rid, eid = run.info.run_id, run.info.experiment_id
    on_disk = rooted["folder"] / eid / rid / "artifacts"
    assert (on_disk / "notes.txt").read_text() == "hello local"  # written by the client, not through the server
    assert sorted(a.path for a in client.list_artifacts(rid)) == ["data", "notes.txt"]
    assert [(a.path, a.file_size) for a in client.list_artifacts(rid, "data")] == [("data/a.bin", 2560)]
    out = Path(mlflow.artifacts.download_artifacts(run_id=rid, dst_path=str(tmp_path / "down")))
    assert (out / "notes.txt").read_text() == "hello local"
    assert (out / "data" / "a.bin").read_bytes() == bytes(range(256)) * 10


def test_runledger_reads_the_local_folder_for_the_web_ui(rooted: dict[str, Any], tmp_path: Path) -> None:
    http: httpx.Client = rooted["http"]
    rid = _run_with_files(tmp_path, "server-reads").info.run_id
    for prefix in ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow"):
        top = http.get(f"{prefix}/artifacts/list", params={"run_id": rid}).json()
        assert top["root_uri"].startswith(rooted["root"]) and top["root_uri"].endswith(f"/{rid}/artifacts")
        assert [(f["path"], f["is_dir"]) for f in top["files"]] == [("data", True), ("notes.txt", False)]
        sub = http.get(f"{prefix}/artifacts/list", params={"run_id": rid, "path": "data"}).json()
        assert sub["files"] == [{"path": "data/a.bin", "is_dir": False, "file_size": 2560}]
    r = http.get("/get-artifact", params={"run_uuid": rid, "path": "notes.txt"})
    assert (r.status_code, r.text, r.headers["x-content-type-options"]) == (200, "hello local", "nosniff")
    assert http.get("/get-artifact", params={"run_id": rid, "path": "data/a.bin"}).content == bytes(range(256)) * 10
    _error(http.get("/get-artifact", params={"run_id": rid, "path": "missing.txt"}), 404, "RESOURCE_DOES_NOT_EXIST")
    up = http.post("/ajax-api/2.0/mlflow/upload-artifact", params={"run_uuid": rid, "path": "tables/t.json"},
                   content=b"{}")
    assert up.status_code == 200, up.text
    run = rooted["client"].get_run(rid)
    assert (rooted["folder"] / run.info.experiment_id / rid / "artifacts" / "tables" / "t.json").read_bytes() == b"{}"


@pytest.mark.parametrize("path", ["../../../etc/passwd", "..", "data/../../x", "../secret.txt", "a\\..\\b"])
def test_unsafe_paths_are_refused_in_a_local_folder_too(rooted: dict[str, Any], tmp_path: Path, path: str) -> None:
    http: httpx.Client = rooted["http"]
    rid = _run_with_files(tmp_path, "unsafe").info.run_id
    (rooted["folder"] / "secret.txt").write_text("outside the run")
    assert _error(http.get("/get-artifact", params={"run_id": rid, "path": path}), 400,
                  "INVALID_PARAMETER_VALUE") == "Invalid path"
    assert _error(http.get("/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": rid, "path": path}), 400,
                  "INVALID_PARAMETER_VALUE") == "Invalid path"


def test_a_leading_slash_stays_inside_the_run_folder(rooted: dict[str, Any], tmp_path: Path) -> None:
    rid = _run_with_files(tmp_path, "unsafe").info.run_id
    http: httpx.Client = rooted["http"]
    assert http.get("/get-artifact", params={"run_id": rid, "path": "/notes.txt"}).text == "hello local"
    _error(http.get("/get-artifact", params={"run_id": rid, "path": "/etc/passwd"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_a_local_folder_outside_the_root_is_neither_read_nor_written(rooted: dict[str, Any], tmp_path: Path) -> None:
    """An experiment's own artifact_location may name any folder (``/``): the server serves none of it."""
    client: MlflowClient = rooted["client"]
    http: httpx.Client = rooted["http"]
    own = tmp_path / "own"
    rid = client.create_run(client.create_experiment("own-folder", artifact_location=str(own))).info.run_id
    client.log_text(rid, "mine", "m.txt")  # the client writes it itself
    assert (own / rid / "artifacts" / "m.txt").read_text() == "mine"
    outside = "outside this server's artifact store and its default artifact root"
    assert outside in _error(http.get("/get-artifact", params={"run_id": rid, "path": "m.txt"}), 400,
                             "INVALID_PARAMETER_VALUE")
    assert outside in _error(http.get("/ajax-api/2.0/mlflow/artifacts/list", params={"run_id": rid}), 400,
                             "INVALID_PARAMETER_VALUE")
    up = http.post("/ajax-api/2.0/mlflow/upload-artifact", params={"run_uuid": rid, "path": "x.json"}, content=b"{}")
    assert outside in _error(up, 400, "INVALID_PARAMETER_VALUE")
    assert not (own / rid / "artifacts" / "x.json").exists()
    root = client.create_run(client.create_experiment("at-root", artifact_location="/")).info.run_id
    assert outside in _error(http.get("/get-artifact", params={"run_id": root, "path": "etc/passwd"}), 400,
                             "INVALID_PARAMETER_VALUE")


def test_artifacts_of_a_foreign_scheme_are_a_clear_error(rooted: dict[str, Any]) -> None:
    client: MlflowClient = rooted["client"]
    http: httpx.Client = rooted["http"]
    rid = client.create_run(client.create_experiment("on-s3", artifact_location="s3://bucket/p")).info.run_id
    message = _error(http.get("/get-artifact", params={"run_id": rid, "path": "a.txt"}), 400, "INVALID_PARAMETER_VALUE")
    assert "s3://bucket/p/" in message and "outside this server's artifact store" in message


def test_a_model_version_from_the_runs_local_folder(rooted: dict[str, Any], tmp_path: Path) -> None:
    client: MlflowClient = rooted["client"]
    http: httpx.Client = rooted["http"]
    mlflow.set_experiment("local-models")
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    with mlflow.start_run() as run:
        mlflow.log_artifact(str(tmp_path / "MLmodel"), artifact_path="model")
    rid, uri = run.info.run_id, run.info.artifact_uri
    assert uri.startswith("file://")
    client.create_registered_model("local-src")
    as_uri = client.create_model_version("local-src", f"{uri}/model", run_id=rid)
    assert as_uri.source == f"{uri}/model"
    plain = uri.removeprefix("file://")
    ok = http.post("/api/2.0/mlflow/model-versions/create", json={"name": "local-src", "source": plain, "run_id": rid})
    assert ok.status_code == 200, ok.text
    assert "To use a local path as a model version source" in _error(
        http.post("/api/2.0/mlflow/model-versions/create", json={"name": "local-src", "source": plain}), 400,
        "INVALID_PARAMETER_VALUE")
    other = client.create_run(run.info.experiment_id).info.run_id  # the folder is not this run's
    _error(http.post("/api/2.0/mlflow/model-versions/create", json={"name": "local-src", "source": plain,
                                                                    "run_id": other}), 400, "INVALID_PARAMETER_VALUE")
    _error(http.post("/api/2.0/mlflow/model-versions/create", json={"name": "local-src", "source": f"{plain}/../..",
                                                                    "run_id": rid}), 400, "INVALID_PARAMETER_VALUE")
    remote = http.post("/api/2.0/mlflow/model-versions/create", json={
        "name": "local-src", "source": "file://10.1.2.3/path/to/source", "run_id": rid})
    assert "is not a valid remote uri" in _error(remote, 500, "INTERNAL_ERROR")  # mlflow server's status too
    r = http.get("/model-versions/get-artifact", params={"name": "local-src", "version": as_uri.version,
                                                         "path": "MLmodel"})
    assert (r.status_code, r.text) == (200, "flavors: {}\n")
    assert _error(http.get("/model-versions/get-artifact", params={"name": "local-src", "version": "1",
                                                                   "path": "../../x"}), 400,
                  "INVALID_PARAMETER_VALUE") == "Invalid path"


def test_a_sklearn_model_logged_to_a_local_folder_loads_back(rooted: dict[str, Any]) -> None:
    from sklearn.linear_model import LinearRegression

    mlflow.set_experiment("sklearn-local")
    model = LinearRegression().fit([[0.0], [1.0], [2.0]], [0.0, 2.0, 4.0])
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(model, name="model", registered_model_name="sk-local")
    assert run.info.artifact_uri.startswith(rooted["root"])
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    assert [round(float(x), 6) for x in loaded.predict([[3.0]])] == [6.0]
    assert mlflow.pyfunc.load_model("models:/sk-local/1").predict([[1.0]])[0] == pytest.approx(2.0)
    logged = rooted["client"].get_logged_model(info.model_id)
    assert logged.artifact_location.startswith(rooted["root"])
    http: httpx.Client = rooted["http"]
    ui = f"/ajax-api/2.0/mlflow/logged-models/{info.model_id}/artifacts"  # what MLflow's UI reads
    listed = http.get(f"{ui}/directories").json()
    assert listed["root_uri"] == logged.artifact_location and "MLmodel" in {f["path"] for f in listed["files"]}
    mlmodel = http.get(f"{ui}/files", params={"artifact_file_path": "MLmodel"})
    assert mlmodel.status_code == 200 and f"model_id: {info.model_id}" in mlmodel.text
    r = http.get("/model-versions/get-artifact", params={"name": "sk-local", "version": "1", "path": "MLmodel"})
    assert r.status_code == 200 and "sklearn" in r.text


def test_a_plain_path_root_is_shown_as_a_path(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    server = ServerProcess(tmp_path / "data", extra_args=["--default-artifact-root", str(folder)]).start()
    try:
        client = MlflowClient(server.url)
        eid = client.create_experiment("plain")
        assert client.get_experiment(eid).artifact_location == f"{folder}/{eid}"
        run = client.create_run(eid)
        client.log_text(run.info.run_id, "plain text", "t.txt")
        assert (folder / eid / run.info.run_id / "artifacts" / "t.txt").read_text() == "plain text"
        r = httpx.get(f"{server.url}/get-artifact", params={"run_id": run.info.run_id, "path": "t.txt"})
        assert r.text == "plain text"
    finally:
        server.stop()


def test_a_relative_root_is_resolved_against_the_servers_working_directory(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data", extra_args=["--default-artifact-root", "./rel-root/"]).start()
    try:  # ServerProcess runs the server in the repository; nothing is written there (no artifact is logged)
        client = MlflowClient(server.url)
        assert client.get_experiment("0").artifact_location == f"{REPO}/rel-root/0"
        eid = client.create_experiment("relative")
        assert client.get_experiment(eid).artifact_location == f"{REPO}/rel-root/{eid}"
    finally:
        server.stop()
    assert not (REPO / "rel-root").exists()


def test_without_the_setting_experiments_stay_behind_the_proxy(shared_server: ServerProcess) -> None:
    client = MlflowClient(shared_server.url)
    assert client.get_experiment("0").artifact_location == "mlflow-artifacts:/0"
    eid = client.create_experiment("proxied-still")
    assert client.get_experiment(eid).artifact_location == f"mlflow-artifacts:/{eid}"


@pytest.mark.parametrize(("root", "why"), [
    ("s3://", "names no bucket"),
    ("runs:/abc/artifacts", "cannot be an artifact root"),
    ("file://elsewhere/srv", "is not a valid remote uri"),
])
def test_a_bad_root_is_refused_at_start_in_one_line(tmp_path: Path, root: str, why: str) -> None:
    done = subprocess.run([*RUNLEDGER, "serve", "--data-dir", str(tmp_path / "d"), "--default-artifact-root", root],
                          cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("runledger: error: default artifact root")
    assert why in done.stderr and "Traceback" not in done.stderr


def test_a_bad_root_from_the_environment_is_refused_too(tmp_path: Path) -> None:
    done = subprocess.run([*RUNLEDGER, "serve", "--data-dir", str(tmp_path / "d")], cwd=REPO, capture_output=True,
                          text=True, timeout=120, check=False,
                          env={**os.environ, "RUNLEDGER_DEFAULT_ARTIFACT_ROOT": "gs://"})
    assert done.returncode == 2 and "names no bucket" in done.stderr, done.stderr
