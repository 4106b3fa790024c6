"""pytest plugin: run MLflow's own server tests against ``runledger serve``, the tests themselves unchanged.

Loaded by ``scripts/mlflow-server-tests`` (``-p runledger_mlflow_plugin``) inside a copy of MLflow's
``tests/`` tree. It replaces only what starts the server:

* ``_init_server(backend_uri, root_artifact_uri, ...)`` (``tests/tracking/integration_test_utils``, and
  the name as imported into each test module): starts ``runledger serve`` on a free port with a fresh data
  folder and ``--default-artifact-root root_artifact_uri`` (as MLflow's own starts ``mlflow server``). The
  returned object works both ways MLflow's modules have used it: as a context manager yielding the URL,
  and unpacked as ``(url, process)``.
* ``ServerThread(app, port)`` (the same module; MLflow 3's ``mlflow_client`` fixtures serve the app in a
  thread): ``runledger serve`` on ``port`` instead, the app ignored; a context manager yielding the URL.
* ``_launch_server(host, port, backend_store_uri, default_artifact_root, artifacts_destination)``
  (``test_mlflow_artifacts.py``): ``runledger serve`` on that port, storing artifacts in
  ``artifacts_destination`` so the tests' checks on the folder hold.

With ``RUNLEDGER_MLFLOW_SERVER=stock`` nothing is replaced (the baseline run against ``mlflow server``).
Either way, tests of areas runledger does not serve (traces, gateway, GenAI datasets, issues, scorers)
are deselected and counted by category in the terminal summary; tests of the web UI's endpoints
(implemented on another branch) are counted apart as ``ui``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: runledger's checkout (this file is tests/mlflow_server/runledger_mlflow_plugin.py).
REPO = Path(__file__).resolve().parents[2]
#: Areas out of scope: a test whose id matches is deselected and counted under that name.
EXCLUDED: dict[str, re.Pattern[str]] = {
    "traces": re.compile(r"trace|span|assessment|otel", re.I),
    "gateway": re.compile(r"gateway|secret|endpoint|model_def|budget", re.I),
    "genai_datasets": re.compile(r"evaluation_dataset|dataset_record|upsert_records|genai_dataset|"
                                 r"dataset_(to|from)_experiments|dataset_experiment|experiments_at_once|"
                                 r"idempotent_(add|remove)_experiments|add_remove_experiments", re.I),
    "issues": re.compile(r"issue", re.I),
    "scorers": re.compile(r"scorer|judge", re.I),
}
#: Tests of the web UI's endpoints (implemented on the ``ui`` branch): run, but counted apart.
UI = re.compile(r"graphql|list_artifacts|artifacts_list|get_artifact|upload_artifact|history_bulk|nosniff|"
                r"server_version|test_version", re.I)

_started: list[subprocess.Popen[bytes]] = []


def _server_kind() -> str:
    return os.environ.get("RUNLEDGER_MLFLOW_SERVER", "runledger")


def _wait(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"runledger serve exited with {proc.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"runledger serve did not answer at {url} within {timeout_s} s")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_runledger(port: int | None = None, artifacts_dir: str | None = None,
                    default_artifact_root: str | None = None) -> tuple[str, subprocess.Popen[bytes]]:
    """``runledger serve`` on ``port`` (a free one if None) with a fresh data folder, the proxy's files in
    ``artifacts_dir`` and new experiments' in ``default_artifact_root`` (if given); answers (url, process)."""
    port = port or _free_port()
    data_dir = Path(tempfile.mkdtemp(prefix="runledger-mlflow-tests-"))
    args = [sys.executable, "-m", "query", "serve", "--data-dir", str(data_dir), "--port", str(port),
            "--no-access-log"]
    if artifacts_dir:
        args += ["--artifacts-uri", str(artifacts_dir)]
    if default_artifact_root:
        args += ["--default-artifact-root", default_artifact_root]
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - the server process holds it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    # in the test process's working directory, as MLflow's own fixture runs its server: a relative
    # artifact_location is resolved against it (test_create_get_search_experiment compares the two)
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd(), env=env)
    _started.append(proc)
    url = f"http://127.0.0.1:{port}"
    _wait(url, proc)
    return url, proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Started:
    """What the replacement ``_init_server`` returns: a context manager yielding the URL, or ``(url, proc)``."""

    def __init__(self, root_artifact_uri: str = "") -> None:
        self.url, self.proc = start_runledger(default_artifact_root=root_artifact_uri or None)

    def __enter__(self) -> str:
        return self.url

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)

    def __iter__(self) -> Iterator[Any]:
        return iter((self.url, self.proc))


def init_server(backend_uri: str = "", root_artifact_uri: str = "", *args: Any, **kwargs: Any) -> _Started:
    """Stands in for MLflow's ``_init_server``: the backend URI is ignored (runledger keeps its events in its
    data folder); new experiments' artifacts go to ``root_artifact_uri``, written by the client itself."""
    return _Started(root_artifact_uri)


def launch_server(host: str, port: int, backend_store_uri: str = "", default_artifact_root: str = "",
                  artifacts_destination: str = "", *args: Any, **kwargs: Any) -> subprocess.Popen[bytes]:
    """Stands in for ``test_mlflow_artifacts._launch_server``: runledger on ``port``, artifacts in
    ``artifacts_destination``."""
    destination = artifacts_destination.removeprefix("file://")
    return start_runledger(int(port), destination or None)[1]


class ServerThread:
    """Stands in for MLflow's ``ServerThread(app, port)``: ``runledger serve`` on ``port`` (the app, and the
    stores MLflow's fixture initialised for it, are not used)."""

    def __init__(self, app: object = None, port: int | None = None, *args: Any, **kwargs: Any) -> None:
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        url, self.proc = start_runledger(self.port)
        return url

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            stop(self.proc)


REPLACEMENTS = {"_init_server": init_server, "_launch_server": launch_server, "ServerThread": ServerThread}


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_counts] = Counter()
    if _server_kind() == "runledger":
        try:
            import tests.tracking.integration_test_utils as utils
        except ImportError:
            return
        for name, replacement in REPLACEMENTS.items():
            if hasattr(utils, name):
                setattr(utils, name, replacement)


_counts = pytest.StashKey[Counter[str]]()


def category(nodeid: str) -> str | None:
    """The excluded area a test id belongs to, else None."""
    name = nodeid.split("::", 1)[-1]
    for area, pattern in EXCLUDED.items():
        if pattern.search(name):
            return area
    return None


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    keep, drop = [], []
    counts = config.stash[_counts]
    for item in items:
        area = category(item.nodeid)
        if area is None:
            keep.append(item)
        else:
            counts[f"excluded:{area}"] += 1
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep
    if _server_kind() == "runledger":
        for module in {getattr(i, "module", None) for i in keep} - {None}:
            for name, replacement in REPLACEMENTS.items():
                if hasattr(module, name):
                    setattr(module, name, replacement)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" or report.outcome != "passed":
        outcome = "skipped" if report.skipped else report.outcome
        ui = "ui:" if UI.search(report.nodeid.split("::", 1)[-1]) else ""
        _record(f"{ui}{outcome}", report)


_reports: Counter[str] = Counter()
_seen: set[str] = set()


def _record(key: str, report: pytest.TestReport) -> None:
    if report.nodeid in _seen:
        return
    _seen.add(report.nodeid)
    _reports[key] += 1


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    tr = terminalreporter
    tr.section(f"runledger: MLflow server tests against {_server_kind()}")
    for key, n in sorted({**config.stash[_counts], **_reports}.items()):
        tr.write_line(f"{key}: {n}")


def pytest_unconfigure(config: pytest.Config) -> None:
    for proc in _started:
        stop(proc)
