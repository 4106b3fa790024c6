"""MLflow's own web UI, served from the React build inside the installed ``mlflow`` wheel (never copied
into this repository), at the paths the stock ``mlflow server`` uses:

* ``GET /`` -> ``index.html`` (the SPA routes with ``#/experiments/...``, so no other page path exists);
* ``GET /static-files/<path>`` -> the build's files (hashed names: cached for 28 days, as the stock server);
* ``GET /version`` -> the mlflow version whose UI is served (plain text);
* ``GET|POST /ajax-api/3.0/mlflow/ui-telemetry`` -> what the stock server answers with telemetry off.

Without a build (mlflow not installed: ``pip install 'runledger[server]'``) ``/`` is an HTML page that
says how to get it, and ``/static-files/...`` answers 404.
"""

from __future__ import annotations

import html
import importlib.metadata
import importlib.util
import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from ..settings import Settings

__all__ = ["router", "build_dir", "STATIC_MAX_AGE_S"]

router = APIRouter()

STATIC_MAX_AGE_S = 2_419_200
RUNLEDGER_VERSION = "0.1.0"


def build_dir(settings: Settings) -> Path | None:
    """The folder holding ``index.html`` of MLflow's UI, or None when there is none."""
    if settings.ui_build_dir:
        folder = Path(settings.ui_build_dir)
    else:
        spec = importlib.util.find_spec("mlflow")  # finds the package without importing it (seconds)
        if spec is None or spec.origin is None:
            return None
        folder = Path(spec.origin).parent / "server" / "js" / "build"
    return folder.resolve() if (folder / "index.html").is_file() else None


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


_MISSING = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>runledger: web UI not installed</title></head>
<body style="font-family: sans-serif; max-width: 44em; margin: 3em auto; line-height: 1.5">
<h1>runledger is running; MLflow's web UI is not installed</h1>
<p>runledger serves MLflow's own web UI from the React build inside the <code>mlflow</code> Python
package, and found none{where}.</p>
<p>Install it into the environment that runs <code>runledger serve</code>, then restart the server:</p>
<pre>pip install 'runledger[server]'      # or: pip install 'mlflow>=3.1,&lt;3.18'</pre>
<p>(<code>./scripts/serve</code> installs it for you.) The MLflow REST API works without the UI:
point the client at this server with <code>MLFLOW_TRACKING_URI={uri}</code>.</p>
</body></html>
"""


@router.get("/", summary="MLflow's web UI (index.html of the React build)", response_class=HTMLResponse)
def index(request: Request) -> Response:
    settings = _settings(request)
    folder = build_dir(settings)
    if folder is None:
        where = f" in {html.escape(settings.ui_build_dir)}" if settings.ui_build_dir else ""
        uri = html.escape(str(request.base_url).rstrip("/"))
        return HTMLResponse(_MISSING.format(where=where, uri=uri), status_code=404)
    return FileResponse(folder / "index.html", media_type="text/html")


@router.get("/static-files/{path:path}", summary="Files of MLflow's web UI build", include_in_schema=False)
def static_file(path: str, request: Request) -> Response:
    folder = build_dir(_settings(request))
    if folder is None:
        raise HTTPException(404, "MLflow's web UI is not installed: pip install 'runledger[server]'")
    target = (folder / path).resolve()
    if not target.is_relative_to(folder) or not target.is_file():
        raise HTTPException(404, f"no file {path!r} in MLflow's web UI build")
    media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    return FileResponse(target, media_type=media, headers={"Cache-Control": f"public, max-age={STATIC_MAX_AGE_S}"})


@router.get("/version", summary="The version of the MLflow web UI served (plain text, as the stock server)")
def version() -> PlainTextResponse:
    try:
        return PlainTextResponse(importlib.metadata.version("mlflow"))
    except importlib.metadata.PackageNotFoundError:
        return PlainTextResponse(RUNLEDGER_VERSION)


@router.get("/ajax-api/3.0/mlflow/ui-telemetry", include_in_schema=False)
def ui_telemetry_config() -> JSONResponse:
    """Telemetry is off: the stock server's answer when it is disabled (``FALLBACK_UI_CONFIG``)."""
    return JSONResponse({"disable_ui_telemetry": True, "disable_ui_events": [], "ui_rollout_percentage": 0})


@router.post("/ajax-api/3.0/mlflow/ui-telemetry", include_in_schema=False)
def ui_telemetry_records() -> JSONResponse:
    """Records are dropped: the stock server's answer with telemetry disabled."""
    return JSONResponse({"status": "disabled"})
