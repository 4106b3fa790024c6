"""The ``mlflow-artifacts`` proxy: PUT upload, GET download, GET list, DELETE — files in the data folder
(embedded) or MinIO / S3 (distributed). The stock client reaches it through ``mlflow-artifacts:/`` URIs.

Downloads are attachments, as MLflow's server sends them: a content type guessed from the name (text types
as ``text/plain``, never rendered as HTML), ``Content-Disposition: attachment`` and
``X-Content-Type-Options: nosniff``, so a browser never runs an uploaded file as a page.

:func:`artifacts_at` picks where an artifact URI's files are for the other artifact endpoints (runs, model
versions, logged models): this proxy's store, or a folder on this host (``--default-artifact-root``)."""

from __future__ import annotations

import mimetypes
import posixpath
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from ..artifact_roots import local_folder
from ..artifacts import ArtifactStore, LocalArtifacts, artifact_store, clean_path
from ..services import Services, get_services
from .convert import ARTIFACTS_SCHEME
from .errors import MlflowError, invalid
from .routing import json_response

router = APIRouter()

_KEY = "artifacts"


def store_of(services: Services) -> ArtifactStore:
    store = services.extras.get(_KEY)
    if store is None:
        store = services.extras[_KEY] = artifact_store(services.settings)
    return store


def store_path(uri: str, relative: str) -> str:
    """The artifact-store path of ``relative`` under ``uri`` (an ``mlflow-artifacts:/`` root)."""
    if not uri.startswith(ARTIFACTS_SCHEME + "/"):
        raise _outside(uri)
    base = uri[len(ARTIFACTS_SCHEME) + 1:].strip("/")
    rel = clean_path(relative, allow_root=True)
    return f"{base}/{rel}" if rel and base else base or rel


def _outside(uri: str) -> MlflowError:
    return invalid(f"The artifacts live at {uri}, outside this server's artifact store; read them there")


def artifacts_at(services: Services, uri: str, relative: str) -> tuple[ArtifactStore, str]:
    """The store holding the files of artifact root ``uri`` and the path of ``relative`` in it: the proxy's
    store for ``mlflow-artifacts:/``, the folder itself for a local one (:func:`local_folder`) inside the
    local ``--default-artifact-root``, as mlflow server uses a run's own artifact repository. Not any local
    folder: an experiment's own ``artifact_location`` may name any folder of the host (``/``, say), and
    whoever may create an experiment would read (or write) the server's files through it."""
    if uri.startswith(ARTIFACTS_SCHEME + "/"):
        return store_of(services), store_path(uri, relative)
    folder = local_folder(uri)
    if folder is None:
        raise _outside(uri)
    if not _inside(folder, local_folder(services.settings.default_artifact_root)):
        raise invalid(f"The artifacts live at {uri}, outside this server's artifact store and its default artifact "
                      "root; read and write them there")
    return LocalArtifacts(folder), clean_path(relative, allow_root=True)


def _inside(folder: Path, root: Path | None) -> bool:
    if root is None:
        return False
    folder, root = folder.resolve(), root.resolve()
    return folder == root or root in folder.parents


@router.get("/artifacts", summary="List artifacts under ?path=")
async def list_artifacts(request: Request, services: Services = Depends(get_services)) -> Response:
    path = request.query_params.get("path", "")
    files = await run_in_threadpool(store_of(services).list, path)
    out: dict[str, Any] = {"files": [{"path": f.path, "is_dir": f.is_dir, **({} if f.size is None else
                                                                              {"file_size": f.size})}
                                     for f in files]}
    return json_response(out)


@router.put("/artifacts/{path:path}", summary="Upload an artifact (the request body is the file)")
async def upload_artifact(path: str, request: Request, services: Services = Depends(get_services)) -> Response:
    chunks: list[bytes] = [chunk async for chunk in request.stream()]
    await run_in_threadpool(store_of(services).put, path, iter(chunks))
    return json_response({})


#: Served as ``text/plain`` whatever ``mimetypes`` says (MLflow's list: configs, code, tables, MLmodel, ...).
TEXT_EXTENSIONS = frozenset({
    "txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon", "toml", "yaml", "yml",
    "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst", "ipynb", "MLmodel", "MLproject"})


def media_type_of(path: str) -> str:
    """The content type MLflow's server sends for a file name."""
    name = posixpath.basename(path)
    extension = posixpath.splitext(name)[1].lstrip(".") or name
    if extension in TEXT_EXTENSIONS:
        return "text/plain"
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


def attachment_headers(path: str) -> dict[str, str]:
    """``Content-Disposition: attachment`` (RFC 6266, an ASCII fallback for other names) and ``nosniff``."""
    name = posixpath.basename(path) or "download"
    try:
        name.encode("ascii")
        disposition = f'attachment; filename="{name}"' if any(c in name for c in ' ";,') else \
            f"attachment; filename={name}"
    except UnicodeEncodeError:
        fallback = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii") or "download"
        disposition = f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='!#$&+-.^_`|~')}"
    return {"Content-Disposition": disposition, "X-Content-Type-Options": "nosniff"}


@router.get("/artifacts/{path:path}", summary="Download an artifact")
async def download_artifact(path: str, services: Services = Depends(get_services)) -> Response:
    chunks: Iterator[bytes] = await run_in_threadpool(store_of(services).open, path)
    headers = {"Content-Type": media_type_of(path), **attachment_headers(path)}  # exactly MLflow's, no charset
    return StreamingResponse(iterate_in_threadpool(chunks), headers=headers)


@router.delete("/artifacts/{path:path}", summary="Delete an artifact (or a folder)")
async def delete_artifact(path: str, services: Services = Depends(get_services)) -> Response:
    await run_in_threadpool(store_of(services).delete, path)
    return json_response({})


