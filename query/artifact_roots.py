"""Where new experiments keep their artifacts, and which artifact URIs this server can read itself.

By default every experiment's location is ``<artifact_root>/<id>``, shown to MLflow clients as
``mlflow-artifacts:/<id>`` (the proxy). With ``default_artifact_root`` set (``serve
--default-artifact-root``, as ``mlflow server --default-artifact-root``) new experiments get
``<default_artifact_root>/<id>`` instead, shown as is: the stock client writes there itself, and the
server reads the ones on its own disk (:func:`local_folder`) for the web UI's artifact endpoints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlparse

import registry as reg
from producer.errors import ContractError

from .settings import Settings

__all__ = ["resolve_default_artifact_root", "with_resolved_roots", "local_folder"]

#: Schemes whose URIs are nothing without a bucket or host (``s3://`` alone names no place to write).
NEEDS_HOST = frozenset({"s3", "gs", "wasbs", "wasb", "abfss", "abfs", "oss", "r2", "b2", "hdfs", "viewfs", "http",
                        "https", "ftp", "sftp"})
#: Schemes that name artifacts of one run or model, never a root for experiments.
NOT_A_ROOT = frozenset({"runs", "models", "mlflow-artifacts"})


def resolve_default_artifact_root(raw: str) -> str:
    """``raw`` as the root of new experiments' locations: '' stays '' (the proxy); a trailing ``/`` dropped;
    a relative path or ``file:`` URI made absolute against the working directory, a path kept a path and a
    ``file:`` URI kept a URI (MLflow's ``resolve_uri_if_local``); another scheme kept as given once it names
    a bucket or host. Refused (:class:`ContractError`): fragments or query parameters, ``s3://`` and the like
    without a bucket, ``runs:`` / ``models:`` / ``mlflow-artifacts:`` URIs, a ``file:`` URI of another host."""
    root = raw.strip()
    if not root:
        return ""
    parsed = urlparse(root)
    what = f"default artifact root {raw!r}"
    if parsed.fragment or parsed.query or parsed.params:
        raise ContractError(f"{what} must not hold a fragment or query parameters")
    scheme = parsed.scheme.lower()
    if scheme in NOT_A_ROOT:
        raise ContractError(f"{what}: a {scheme}: URI cannot be an artifact root")
    if scheme in NEEDS_HOST and not parsed.netloc:
        raise ContractError(f"{what} names no bucket or host (expected {scheme}://<bucket or host>[/prefix])")
    try:
        local = reg.is_local(root)
    except ContractError as exc:
        raise ContractError(f"{what}: {exc}") from exc
    if local:
        from mlflow.utils import uri

        resolve: Callable[[str], str] = uri.resolve_uri_if_local
        root = resolve(root)
    return root.rstrip("/") or "/"


def with_resolved_roots(settings: Settings) -> Settings:
    """``settings`` with :attr:`Settings.default_artifact_root` resolved (:func:`resolve_default_artifact_root`)
    once, at start-up: later reads of the working directory cannot move it."""
    resolved = resolve_default_artifact_root(settings.default_artifact_root)
    return settings if resolved == settings.default_artifact_root else replace(settings, default_artifact_root=resolved)


def local_folder(uri: str) -> Path | None:
    """The folder on this host that ``uri`` names: an absolute path, or a ``file:`` URI without a host (or
    ``localhost``); None for anything else (another scheme, a relative path, another host's ``file:``)."""
    parsed = urlparse(uri)
    if parsed.scheme == "" and uri.startswith("/"):
        return Path(uri)
    if parsed.scheme != "file" or parsed.netloc not in ("", "localhost") or not parsed.path.startswith("/"):
        return None
    return Path(unquote(parsed.path))
