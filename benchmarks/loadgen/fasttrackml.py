"""A stock FastTrackML server (``fml server``, from the ``fasttrackml`` wheel of the ``bench`` extra) with its
own SQLite database in a temporary folder, on a free loopback port; it speaks MLflow's REST API.

The wheel pinned in pyproject (0.5.0) is the last one that does not require ``mlflow<3``: 0.5.1 and 0.6.0 pin
the client below 3, which cannot be installed next to the test extra's ``mlflow>=3.1``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from servers import free_port, wait_http

__all__ = ["FastTrackMLServer", "fml_binary", "fml_version"]


def fml_binary() -> str | None:
    """The ``fml`` executable next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).with_name("fml")
    return str(beside) if beside.exists() else shutil.which("fml")


def fml_version() -> str:
    binary = fml_binary()
    if binary is None:
        return "not installed"
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30, check=False)
    return (out.stdout or out.stderr).strip().removeprefix("FastTrackML version ").strip()


class FastTrackMLServer:
    """``fml server -d sqlite:///<dir>/fasttrackml.db -a 127.0.0.1:<port>``; defaults otherwise (migrations on,
    pool of 20 connections, info-level request log to ``server.log``)."""

    name, kind = "fasttrackml", "fasttrackml"

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "fasttrackml"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    query_url = tracking_uri

    def start(self, timeout_s: float = 60.0) -> FastTrackMLServer:
        binary = fml_binary()
        if binary is None:
            raise RuntimeError("the fml binary is missing (pip install 'fasttrackml>=0.5.0,<0.5.1')")
        self.dir.mkdir(parents=True, exist_ok=True)
        log = open(self.dir / "server.log", "ab")  # noqa: SIM115 - the handle outlives this block
        self.proc = subprocess.Popen(
            [binary, "server", "--database-uri", f"sqlite://{self.dir / 'fasttrackml.db'}",
             "--listen-address", f"127.0.0.1:{self.port}", "--default-artifact-root", str(self.dir / "artifacts")],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir)
        wait_http(self.tracking_uri + "/health", timeout_s, self.proc)
        return self

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def server_pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid
