"""The plugin that points MLflow's own server tests at runledger (scripts/mlflow-server-tests), on a small
tree of our own shaped like MLflow's: ``tests/tracking/integration_test_utils._init_server`` used both as a
context manager and unpacked (its ``root_artifact_uri`` the server's ``--default-artifact-root``), its
``ServerThread(app, port)``, a module-level ``_launch_server`` for the artifacts server, and an
out-of-scope test that must be deselected and counted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

PLUGIN_DIR = Path(__file__).resolve().parents[1] / "mlflow_server"

UTILS = '''
def _init_server(backend_uri, root_artifact_uri, extra_env=None):
    raise AssertionError("the stock server must not start under the runledger plugin")


class ServerThread:
    def __init__(self, app, port):
        raise AssertionError("the stock app must not be served under the runledger plugin")
'''

TESTS = '''
import os
import httpx
from mlflow import MlflowClient
from tests.helper import free_port
from tests.tracking.integration_test_utils import ServerThread, _init_server


def _launch_server(host, port, backend_store_uri, default_artifact_root, artifacts_destination):
    raise AssertionError("replaced by the plugin")


def test_context_manager(tmp_path):
    with _init_server("sqlite:///x.db", root_artifact_uri=tmp_path.as_uri()) as url:
        client = MlflowClient(url)
        exp = client.create_experiment("plugin")
        assert client.get_experiment(exp).name == "plugin"


def test_root_artifact_uri_is_the_default_artifact_root(tmp_path):
    # MLflow's test_artifacts and test_create_model_version_with_path_source, in short
    root = tmp_path / "root"
    with _init_server("sqlite:///x.db", root_artifact_uri=root.as_uri()) as url:
        client = MlflowClient(url)
        exp = client.get_experiment(client.create_experiment("art"))
        assert exp.artifact_location == root.as_uri() + "/" + exp.experiment_id
        run = client.create_run(exp.experiment_id)
        assert run.info.artifact_uri.startswith(exp.artifact_location + "/")
        (tmp_path / "my.file").write_text("Hello, World!")
        client.log_artifact(run.info.run_id, str(tmp_path / "my.file"))
        assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["my.file"]
        client.create_registered_model("m")
        create = url + "/api/2.0/mlflow/model-versions/create"
        source = run.info.artifact_uri[len("file://"):]
        assert httpx.post(create, json={"name": "m", "source": source, "run_id": run.info.run_id}).status_code == 200
        assert httpx.post(create, json={"name": "m", "source": source}).status_code == 400


def test_server_thread():
    with ServerThread(object(), free_port()) as url:
        assert MlflowClient(url).get_experiment("0").name == "Default"


def test_unpacked(tmp_path):
    url, process = _init_server(backend_uri="sqlite:///x.db", root_artifact_uri=tmp_path.as_uri())
    assert httpx.get(url + "/health").status_code == 200
    process.terminate()
    process.wait()


def test_artifacts_destination(tmp_path):
    port = free_port()
    dest = tmp_path / "mlartifacts"
    process = _launch_server("127.0.0.1", port, "sqlite:///x.db", "", str(dest))
    try:
        url = f"http://127.0.0.1:{port}/api/2.0/mlflow-artifacts/artifacts/a/b.txt"
        assert httpx.put(url, content=b"hi").status_code == 200
        assert (dest / "a" / "b.txt").read_bytes() == b"hi"
    finally:
        process.terminate()
        process.wait()


def test_start_trace_is_out_of_scope():
    raise AssertionError("deselected")
'''

HELPER = '''
import socket


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
'''


def test_plugin_replaces_the_server_and_counts_exclusions(tmp_path: Path) -> None:
    tree = tmp_path / "mlflow-tree"
    (tree / "tests" / "tracking").mkdir(parents=True)
    (tree / "tests" / "__init__.py").write_text("")
    (tree / "tests" / "helper.py").write_text(HELPER)
    (tree / "tests" / "tracking" / "__init__.py").write_text("")
    (tree / "tests" / "tracking" / "integration_test_utils.py").write_text(UTILS)
    (tree / "tests" / "tracking" / "test_server.py").write_text(TESTS)
    (tree / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    env = {**os.environ, "RUNLEDGER_MLFLOW_SERVER": "runledger", "PYTHONPATH": str(PLUGIN_DIR),
           "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "runledger_mlflow_plugin", "-p", "no:cacheprovider",
         "--rootdir", str(tree), "tests/tracking/test_server.py"],
        cwd=tree, env=env, capture_output=True, text=True, timeout=600, check=False)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "5 passed, 1 deselected" in out, out
    assert "excluded:traces: 1" in out, out
    assert "passed: 5" in out, out
