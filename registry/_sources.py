"""MLflow 3's server rules for a model version's source, as pure functions.

A new version names where its files are (``source``) and, optionally, the run
(``run_id``) or logged model (``model_id``) that holds them. MLflow's server
refuses a source that escapes with ``..``, a local path outside the local
artifact folder of the run (or logged model) given (the server's disk is not
the client's), a ``runs:/`` source whose run is not the ``run_id`` given,
and an ``mlflow-artifacts`` source outside the given run's artifacts (an unknown
run included). Other schemes (``s3://``, ``gs://``, ...) are taken as given.
Every refusal is a :class:`ContractError` worded as MLflow's.

Run lookups are injected (``run_artifact_uri(run_id) -> uri | None``), so the
rules stay pure and testable without a store.
"""

from __future__ import annotations

import os
import pathlib
import re
from collections.abc import Callable
from urllib.parse import unquote, unquote_plus, urlparse, urlsplit
from urllib.request import url2pathname

from producer.errors import ContractError

__all__ = ["check_run_source", "check_model_source", "check_source_host", "has_relative_path", "is_local",
           "mismatch", "RemoteFileUriError", "HOST_ADDRESSED_SCHEMES", "ALLOWED_SCHEMES_ENV"]

#: Schemes whose URIs name a host to connect to (``mlflow-artifacts`` only with a host): MLflow 3.17's server
#: refuses them as a version source unless the operator allows the scheme (GHSA-mr9f-g8qf-4w4j).
HOST_ADDRESSED_SCHEMES = frozenset({"ftp", "sftp", "hdfs", "viewfs", "http", "https", "mlflow-artifacts", "r2",
                                    "b2", "abfss"})
#: The environment variable (MLflow's name) listing schemes the operator allows anyway, comma-separated.
ALLOWED_SCHEMES_ENV = "MLFLOW_ALLOWED_HOST_ADDRESSED_ARTIFACT_SCHEMES"

_ARTIFACTS_ROUTE = ("api", "2.0", "mlflow-artifacts", "artifacts")


class RemoteFileUriError(ContractError):
    """A ``file:`` URI naming another host. MLflow's ``is_local_uri`` raises an ``MlflowException`` without
    an error code for it, so mlflow server answers INTERNAL_ERROR (500); its tests check that status."""


def mismatch(source: str, field: str) -> ContractError:
    """MLflow's refusal of a source the ``run_id`` / ``model_id`` parameter does not contain."""
    return ContractError(f"Invalid model version source: '{source}'. The {field} request parameter must identify "
                         "the resource that contains the source.")


def is_local(source: str) -> bool:
    """A path or ``file:`` URI on this host (MLflow's ``is_local_uri``); a ``file:`` URI naming another
    host is refused as MLflow refuses it."""
    parsed = urlparse(source)
    if parsed.scheme == "":
        return True
    if parsed.scheme != "file":
        return False
    host = parsed.hostname
    if host and host != "." and not host.startswith(("localhost", "127.0.0.1")):
        raise RemoteFileUriError(f"{source} is not a valid remote uri. For remote access on windows, please consider "
                            "using a different scheme such as SMB (e.g. smb://<hostname>/<path>).")
    return True


def check_source_host(source: str, allowed: frozenset[str] = frozenset(), field: str = "source") -> None:
    """Refuse a source whose scheme names a host to connect to (see :data:`HOST_ADDRESSED_SCHEMES`), unless
    its scheme is in ``allowed``; MLflow's wording."""
    parsed = urlparse(source)
    scheme = parsed.scheme
    if scheme not in HOST_ADDRESSED_SCHEMES or scheme in allowed or (scheme == "mlflow-artifacts" and not parsed.netloc):
        return
    raise ContractError(
        f"'{field}' cannot use the '{scheme}' scheme: the '{scheme}' scheme addresses a host other than the tracking "
        "server's configured artifact storage, so the server would connect to the host named in the URI. Set the "
        f"{ALLOWED_SCHEMES_ENV} environment variable on the server to allow it.")


def has_relative_path(source: str) -> bool:
    """Whether ``source`` climbs out of its root: a ``..`` segment (however often percent-encoded), a NUL,
    or a path that normalising would change."""
    while (unquoted := unquote_plus(source)) != source:
        source = unquoted
    path = re.sub(r"/+", "/", urlparse(source).path.rstrip("/"))
    if "\x00" in path or any(p == ".." for p in source.replace("\\", "/").split("/")):
        return True
    _, resolved = os.path.splitdrive(pathlib.PurePosixPath(os.path.normpath(path or "/")).as_posix())
    return bool(path) and resolved != path


def _relative_refused(source: str) -> ContractError:
    return ContractError(
        f"Invalid model version source: '{source}'. If supplying a source as an http, https, local file path, "
        "ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path "
        "references present. Please provide an absolute path.")


def _unquoted(part: str) -> str:
    while (u := unquote(part)) != part:
        part = u
    return part


def _parts(uri: str) -> tuple[str, str, tuple[str, ...]]:
    parsed = urlsplit(uri)
    parts = tuple(_unquoted(p) for p in parsed.path.split("/") if p)
    return parsed.scheme.lower(), parsed.netloc.lower(), parts


def _within(source: str, root: str) -> bool:
    s_scheme, s_host, s_parts = _parts(source)
    r_scheme, r_host, r_parts = _parts(root)
    return s_scheme == r_scheme and s_host == r_host and bool(r_parts) and s_parts[:len(r_parts)] == r_parts


def _is_artifacts_source(source: str) -> bool:
    scheme, _, parts = _parts(source)
    if scheme == "mlflow-artifacts":
        return True
    n = len(_ARTIFACTS_ROUTE)
    return scheme in ("http", "https") and any(parts[i:i + n] == _ARTIFACTS_ROUTE for i in range(len(parts) - n + 1))


def _local_path(uri: str) -> pathlib.Path:
    """The absolute path a local ``uri`` names (MLflow's ``local_file_uri_to_path``, then ``resolve()``)."""
    return pathlib.Path(url2pathname(urlparse(uri).path if uri.startswith("file:") else uri)).resolve()


def _local_within(source: str, root: str | None) -> tuple[bool, str]:
    """Whether local ``source`` lies in (or is) ``root``, a local artifact folder (False for another scheme or
    None); and ``source`` as MLflow's refusal then names it (resolved once the owner was found)."""
    if root is None:
        return False, source
    path = _local_path(source)
    try:
        local_root = is_local(root)
    except ContractError:
        local_root = False
    return local_root and (_local_path(root) == path or _local_path(root) in path.parents), str(path)


def _local_refused(source: str, field: str, owner: str) -> ContractError:
    return ContractError(
        f"Invalid model version source: '{source}'. To use a local path as a model version source, the {field} "
        "request parameter has to be specified and the local path has to be contained within the artifact "
        f"directory of the {owner} specified by the {field}.")


def check_run_source(source: str, run_id: str | None, run_artifact_uri: Callable[[str], str | None]) -> None:
    """MLflow's ``_validate_source_run``: the checks of a source registered without a logged model.

    ``run_artifact_uri(run_id) -> uri | None`` is the run's artifact URI as the API shows it (None: no such
    run). A local source (path or ``file:`` URI) is accepted only inside the local artifact folder of the
    run ``run_id`` names (under ``serve --default-artifact-root``); never inside a proxied
    (``mlflow-artifacts:/``) run's, nor without ``run_id``.
    """
    if is_local(source):
        _check_local(source, run_id, run_artifact_uri, "run_id")
        return
    if has_relative_path(source):
        raise _relative_refused(source)
    parsed = urlparse(source)
    if parsed.scheme == "runs":
        source_run = parsed.path.lstrip("/").split("/")[0]
        if parsed.netloc or not run_id or source_run != run_id:
            raise mismatch(source, "run_id")
        return
    if parsed.scheme == "models":
        ref = parsed.path.lstrip("/")
        if parsed.netloc or (ref and "/" not in ref.rstrip("/") and "@" not in ref):
            raise mismatch(source, "model_id")
    if _is_artifacts_source(source):
        root = run_artifact_uri(run_id) if run_id else None
        if root is None or not _within(source, root):
            raise mismatch(source, "run_id")


def _check_local(source: str, owner: str | None, artifact_uri: Callable[[str], str | None] | None, param: str) -> None:
    """A local source (path or ``file:`` URI): accepted only inside the local artifact folder of the run or
    logged model ``owner`` (given as ``param``) names; refused otherwise, and without ``owner``."""
    if owner and artifact_uri is not None:
        root = artifact_uri(owner)
        if root is None:
            raise mismatch(source, param)
        inside, source = _local_within(source, root)
        if inside:
            return
    raise _local_refused(source, param, "run")


def check_model_source(source: str, model_id: str,
                       model_artifact_uri: Callable[[str], str | None] | None = None) -> None:
    """MLflow's ``_validate_source_model``: the checks of a source registered from a logged model.
    ``model_artifact_uri(model_id) -> uri | None`` is the logged model's artifact URI as the API shows it
    (None: no such model); a local source must lie in it, as for a run (:func:`check_run_source`). Without
    the lookup every local source is refused."""
    if is_local(source):
        _check_local(source, model_id, model_artifact_uri, "model_id")
        return
    if has_relative_path(source):
        raise _relative_refused(source)
    parsed = urlparse(source)
    if parsed.scheme == "models":
        ref = parsed.path.lstrip("/").rstrip("/")
        if parsed.netloc or ("/" not in ref and "@" not in ref and ref != model_id):
            raise mismatch(source, "model_id")
