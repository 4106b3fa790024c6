"""Configuration: defaults < environment (RUNLEDGER_*) < command-line flags.

With nothing set, ``runledger serve`` runs embedded: data in ./runledger-data,
chDB in-process, listening on 127.0.0.1:5000.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from producer.errors import ContractError  # a ValueError too: one line from the CLI

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    data_dir: Path = Path("./runledger-data")
    """Embedded mode's folder: chDB data, artifacts, producer spill (env RUNLEDGER_DATA_DIR)."""
    host: str = "127.0.0.1"
    port: int = 5000
    clickhouse_dsn: str = ""
    """'' = chDB in data_dir/clickhouse; or http://user:pass@host:8123 for a ClickHouse server."""
    database: str = "runledger"
    artifacts_uri: str = ""
    """'' = data_dir/artifacts; or s3://bucket/prefix (with s3_endpoint / keys) for MinIO / S3: what the
    ``mlflow-artifacts:/`` proxy stores."""
    default_artifact_root: str = ""
    """'' = new experiments keep artifacts behind the proxy (``<artifact_root>/<id>``, shown as
    ``mlflow-artifacts:/<id>``); else ``<default_artifact_root>/<id>`` shown as is, so clients write there
    themselves, as ``mlflow server --default-artifact-root`` (a folder, ``file:`` or ``s3://`` URI; a relative
    path is made absolute at start-up)."""
    s3_endpoint: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_secure: bool = False
    kafka_bootstrap: str = ""
    """'' = embedded log; else host:port[,host:port]: the gateway produces to Kafka."""
    kafka_topic: str = "runledger.events"
    kafka_partitions: int = 12
    kafka_idempotence: bool = True
    kafka_group: str = "runledger-ingest"
    """Consumer group of the ingest workers; the gateway waits on its offsets for read-your-writes."""
    kafka_session_timeout_ms: int = 10_000
    """How long the ingest group waits for a silent (crashed) worker before reassigning its partitions."""
    ingest_in_process: bool = False
    """Kafka mode: run the ingest consumer inside the server process (required with chDB)."""
    read_your_writes_timeout_s: float = 10.0
    sql_max_execution_time_s: float = 10.0
    sql_max_result_rows: int = 1_000_000
    sql_max_result_bytes: int = 256 * 1024 * 1024
    ui_build_dir: str = ""
    """MLflow's web UI (a React build): '' = ``mlflow/server/js/build`` inside the installed mlflow wheel."""
    auth: bool = False
    """Require a login (HTTP Basic or an API token) on every request, and permissions per experiment and
    registered model (``serve --auth``; docs/AUTH.md)."""
    auth_default_permission: str = "READ"
    """What a user may do where they have no explicit grant: READ, EDIT, MANAGE or NO_PERMISSIONS."""
    admin_username: str = "admin"
    """The first admin, created at the first start with auth on when no user exists (RUNLEDGER_ADMIN_USERNAME)."""
    admin_password: str = ""
    """Its password (RUNLEDGER_ADMIN_PASSWORD); no default: with auth on and no user, the server refuses to start."""
    log_level: str = "info"
    access_log: bool = True
    """One line per request on the ``runledger.access`` logger: method, path, status, ms, client (env
    RUNLEDGER_ACCESS_LOG=false or ``serve --no-access-log`` to turn off)."""

    @property
    def dsn(self) -> str:
        return self.clickhouse_dsn or f"chdb://{(self.data_dir / 'clickhouse').resolve()}"

    @property
    def artifact_root(self) -> str:
        """Read per experiment and run shown (each a ``realpath``, 7 % of a search's time): resolved once."""
        return self.artifacts_uri or _artifacts_folder(self.data_dir, "" if self.data_dir.is_absolute() else os.getcwd())

    @property
    def experiments_root(self) -> str:
        """Where a new experiment's location goes (``<this>/<id>``)."""
        return self.default_artifact_root or self.artifact_root

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Read RUNLEDGER_<FIELD> variables, then apply non-None ``overrides``."""
        env = dict(os.environ if env is None else env)
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"RUNLEDGER_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, raw, cls.__dataclass_fields__[f.name].default)
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


@functools.lru_cache(maxsize=64)
def _artifacts_folder(data_dir: Path, cwd: str) -> str:
    return str((Path(cwd) / data_dir / "artifacts").resolve())


def _coerce(name: str, raw: str, default: Any) -> Any:
    try:
        if isinstance(default, bool):
            return raw.strip().lower() in ("1", "true", "yes", "on")
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
        if isinstance(default, Path):
            return Path(raw)
    except ValueError as exc:
        raise ContractError(f"RUNLEDGER_{name.upper()}={raw!r} is not a valid {type(default).__name__}") from exc
    return raw
