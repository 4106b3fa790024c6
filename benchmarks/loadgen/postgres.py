"""A throwaway PostgreSQL cluster for the stock MLflow server's backend store.

DESIGN.md's MLflow reference numbers were taken on PostgreSQL, so the benchmark uses it where the
machine has PostgreSQL's programs (``initdb``, ``pg_ctl``; Debian's ``postgresql`` package) and the
``psycopg`` driver: :func:`unavailable_reason` says why not otherwise, and the benchmark falls back
to SQLite and says so in its results. PostgreSQL refuses to run as root, so as root the cluster runs
as the ``postgres`` user (``runuser``) in a folder it owns; it listens on a free loopback port only.
"""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from servers import free_port

__all__ = ["Postgres", "unavailable_reason"]

_PG_USER = "postgres"


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return versions[-1] if versions else None


def _as_root() -> bool:
    return os.geteuid() == 0


def unavailable_reason() -> str | None:
    """None when a PostgreSQL cluster can be started here, else why not (one line)."""
    missing = [n for n in ("initdb", "pg_ctl") if _bin(n) is None]
    if missing:
        return f"PostgreSQL is not installed ({', '.join(missing)} not found; apt-get install postgresql)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "the psycopg driver is missing (pip install 'psycopg[binary]')"
    if _as_root():
        try:
            import pwd

            pwd.getpwnam(_PG_USER)
        except KeyError:
            return "running as root and there is no 'postgres' user to run PostgreSQL as"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    return None


class Postgres:
    """``initdb`` + ``pg_ctl start`` on a free port with trust auth on loopback; :meth:`stop` removes it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="rl-bench-pg-"))
        self.user = _PG_USER if _as_root() else getpass.getuser()
        self.started = False

    @property
    def sqlalchemy_uri(self) -> str:
        """The MLflow backend store URI (SQLAlchemy with the psycopg 3 driver)."""
        return f"postgresql+psycopg://{self.user}@127.0.0.1:{self.port}/mlflow"

    def _run(self, *args: str, timeout_s: float = 120.0) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if _as_root() else []
        out = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=timeout_s, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{Path(args[0]).name} failed ({out.returncode}): {out.stderr.strip()[-500:]}")

    def start(self) -> Postgres:
        data = self.dir / "data"
        if _as_root():
            shutil.chown(self.dir, _PG_USER, _PG_USER)
        self._run(str(_bin("initdb")), "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8",
                  "--no-sync")
        opts = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200 "
                "-c fsync=on")
        self._run(str(_bin("pg_ctl")), "-D", str(data), "-o", opts, "-l", str(self.dir / "server.log"),
                  "-w", "-t", "60", "start")
        self.started = True
        import psycopg

        with psycopg.connect(f"host=127.0.0.1 port={self.port} user={self.user} dbname=postgres",
                             autocommit=True, connect_timeout=30) as conn:
            conn.execute("CREATE DATABASE mlflow")
        return self

    def stop(self) -> None:
        if self.started:
            self._run(str(_bin("pg_ctl")), "-D", str(self.dir / "data"), "-m", "fast", "-w", "-t", "60", "stop")
            self.started = False
        shutil.rmtree(self.dir, ignore_errors=True)
