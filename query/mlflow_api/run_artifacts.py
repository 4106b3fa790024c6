"""A run's (and a model version's) artifacts as MLflow's web UI reads and writes them.

* ``artifacts/list`` (REST and ``/ajax-api``): the files under ``?path=`` of a run's artifact root;
* ``GET /get-artifact?run_uuid=&path=`` and ``GET /model-versions/get-artifact?name=&version=&path=``:
  one file, as the stock server sends it — an attachment, ``X-Content-Type-Options: nosniff`` and a
  content type guessed from the name (text files as ``text/plain``), so the browser never renders
  an artifact as a page of this server;
* ``POST /ajax-api/2.0/mlflow/upload-artifact?run_uuid=&path=``: the request body (at most 10 MB) as
  one file of the run (the UI's "upload" of evaluation tables).

Artifact roots this server proxies (``mlflow-artifacts:/...``) are read and written in its store; roots
on its own disk (an absolute path or ``file:`` URI, e.g. under ``serve --default-artifact-root``) in
that folder, as the stock server uses a run's own artifact repository (written only inside the default
artifact root). A root elsewhere (``s3://`` not
the server's, ...) is answered with an error that says where. Either way the relative path is checked
by :func:`query.artifacts.clean_path`.
"""

from __future__ import annotations

import mimetypes
import posixpath
import urllib.parse
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import Response, StreamingResponse

import registry as reg

from ..artifacts import clean_path
from ..registry_startup import registry_service
from ..services import Services, get_services
from .artifacts import artifacts_at
from .common_registry import model_named, version_number
from .errors import invalid
from .model_versions import download_uri
from .request import optional_str
from .routing import json_response, mlflow_route
from .runs import get_run_json, run_id_of

__all__ = ["router", "top_router", "mime_type", "MAX_UPLOAD_BYTES"]

router = APIRouter()
top_router = APIRouter()

MAX_UPLOAD_BYTES = 10 * 1024 * 1024

#: Extensions MLflow's UI previews as text (``mlflow.utils.mime_type_utils.get_text_extensions``).
TEXT_EXTENSIONS = frozenset({
    "txt", "log", "err", "cfg", "conf", "cnf", "cf", "ini", "properties", "prop", "hocon", "toml", "yaml", "yml",
    "xml", "json", "js", "py", "py3", "csv", "tsv", "md", "rst", "MLmodel", "MLproject",
})


def mime_type(name: str) -> str:
    """The content type the stock server sends for an artifact called ``name``."""
    base = posixpath.basename(name)
    ext = posixpath.splitext(base)[1].lstrip(".") or base
    if ext in TEXT_EXTENSIONS:
        return "text/plain"
    return mimetypes.guess_type(base)[0] or "application/octet-stream"


def _artifact_uri(services: Services, run_id: str) -> str:
    return str(get_run_json(services, run_id)["info"]["artifact_uri"])


@mlflow_route(router, "/artifacts/list", "GET")
def list_run_artifacts(services: Services, params: dict[str, Any], request: Request) -> dict[str, Any]:
    """The files directly under ``path`` of a run's artifacts (paths relative to the run's artifact root)."""
    root = _artifact_uri(services, run_id_of(params))
    relative = clean_path(optional_str(params, "path") or "", allow_root=True)
    store, at = artifacts_at(services, root, relative)
    files = store.list(at)
    out: dict[str, Any] = {"root_uri": root}
    if files:
        out["files"] = [{"path": posixpath.join(relative, f.path), "is_dir": f.is_dir,
                         **({} if f.size is None else {"file_size": f.size})} for f in files]
    return out


def _required_query(request: Request, name: str, *alternatives: str) -> str:
    for key in (name, *alternatives):
        value = request.query_params.get(key, "")
        if value:
            return value
    raise invalid(f"Missing value for required parameter '{name}'.")


def _attachment(chunks: Iterator[bytes], path: str) -> StreamingResponse:
    name = posixpath.basename(path.rstrip("/")) or "download"
    if name.isascii() and name.isprintable() and not any(c in name for c in '"\\;'):
        disposition = f'attachment; filename="{name}"'
    else:
        disposition = f"attachment; filename=download; filename*=UTF-8''{urllib.parse.quote(name, safe='')}"
    media = mime_type(name)
    return StreamingResponse(iterate_in_threadpool(chunks), media_type=media, headers={
        "Content-Disposition": disposition, "X-Content-Type-Options": "nosniff", "Content-Type": media})


def _open_file(services: Services, uri: str, relative: str) -> Iterator[bytes]:
    if not relative.strip("/"):
        raise invalid("Missing value for required parameter 'path'.")
    store, at = artifacts_at(services, uri, relative)
    return store.open(at)


@top_router.get("/get-artifact", summary="Download one file of a run's artifacts (what the web UI previews)")
async def get_artifact(request: Request, services: Services = Depends(get_services)) -> Response:
    run_id = _required_query(request, "run_id", "run_uuid")
    path = _required_query(request, "path")
    uri = await run_in_threadpool(_artifact_uri, services, run_id)
    return _attachment(await run_in_threadpool(_open_file, services, uri, path), path)


def _version_uri(services: Services, name: str, version: str) -> str:
    """Where a version's files are read from: its download URI, a ``runs:/<run>/<path>`` one resolved to the
    run's artifacts (as the stock server's ``RunsArtifactRepository`` does)."""
    v = reg.version_in(model_named(services, name), version_number({"version": version}))
    uri = download_uri(services, registry_service(services), v)
    if uri.startswith("runs:/"):
        run_id, _, path = uri[len("runs:/"):].partition("/")
        return f"{_artifact_uri(services, run_id).rstrip('/')}/{path}".rstrip("/")
    return uri


@top_router.get("/model-versions/get-artifact", summary="Download one file of a model version")
async def get_model_version_artifact(request: Request, services: Services = Depends(get_services)) -> Response:
    name = _required_query(request, "name")
    version = _required_query(request, "version")
    path = _required_query(request, "path")
    clean_path(path)  # an unsafe path is refused before the model is looked up, as mlflow server does
    uri = await run_in_threadpool(_version_uri, services, name, version)
    return _attachment(await run_in_threadpool(_open_file, services, uri, path), path)


@router.post("/upload-artifact", summary="Upload one file (the body, at most 10 MB) into a run's artifacts")
async def upload_artifact(request: Request, services: Services = Depends(get_services)) -> Response:
    run_id = request.query_params.get("run_uuid") or request.query_params.get("run_id")
    if not run_id:
        raise invalid("Request must specify run_uuid.")
    path = request.query_params.get("path", "")
    if not path:
        raise invalid("Request must specify path.")
    relative = clean_path(path)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_UPLOAD_BYTES:
        raise invalid("Artifact size is too large. Max size is 10MB.")
    data = bytearray()
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_UPLOAD_BYTES:
            raise invalid("Artifact size is too large. Max size is 10MB.")
    if not data:
        raise invalid("Request must specify data.")
    uri = await run_in_threadpool(_artifact_uri, services, run_id)
    store, target = artifacts_at(services, uri, relative)
    await run_in_threadpool(store.put, target, iter([bytes(data)]))
    return json_response({})
