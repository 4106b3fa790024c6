"""``GET /health`` and ``GET /api/3.0/mlflow/server-info``: what the stock client probes first."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

router = APIRouter()


@router.get("/health", summary="MLflow's liveness probe")
def health() -> PlainTextResponse:
    return PlainTextResponse("OK")


@router.get("/api/3.0/mlflow/server-info", summary="MLflow server capabilities")
@router.get("/ajax-api/3.0/mlflow/server-info", include_in_schema=False)
@router.get("/api/2.0/mlflow/server-info", include_in_schema=False)
def server_info() -> JSONResponse:
    return JSONResponse({
        "store_type": None, "workspaces_enabled": False, "trace_archival_enabled": False,
        "multipart_uploads_enabled": False, "multipart_downloads_enabled": False,
        "presigned_upload_run_id_supported": False, "presigned_upload_model_id_supported": False,
        "features_enabled": {"gateway": False},
    })
