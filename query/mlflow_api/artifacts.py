"""The ``mlflow-artifacts`` proxy: PUT upload, GET download, GET list, DELETE — files in the data folder
(embedded) or MinIO / S3 (distributed). The stock client reaches it through ``mlflow-artifacts:/`` URIs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import iterate_in_threadpool, run_in_threadpool
from fastapi.responses import Response, StreamingResponse

from ..artifacts import ArtifactStore, artifact_store
from ..services import Services, get_services
from .routing import json_response

router = APIRouter()

_KEY = "artifacts"


def store_of(services: Services) -> ArtifactStore:
    store = services.extras.get(_KEY)
    if store is None:
        store = services.extras[_KEY] = artifact_store(services.settings)
    return store


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


@router.get("/artifacts/{path:path}", summary="Download an artifact")
async def download_artifact(path: str, services: Services = Depends(get_services)) -> Response:
    chunks: Iterator[bytes] = await run_in_threadpool(store_of(services).open, path)
    return StreamingResponse(iterate_in_threadpool(chunks), media_type="application/octet-stream")


@router.delete("/artifacts/{path:path}", summary="Delete an artifact (or a folder)")
async def delete_artifact(path: str, services: Services = Depends(get_services)) -> Response:
    await run_in_threadpool(store_of(services).delete, path)
    return json_response({})


