"""``POST /api/v1/sql``: one read-only SELECT over the documented views.

Request: ``{"sql": "SELECT ...", "format": "json" | "csv" | "arrow" | "parquet"}``
(format optional, default ``json``). Answer: the result in that encoding —
ClickHouse's ``JSON`` object (``meta``, ``data``, ``rows``, ``statistics``),
``CSVWithNames``, an Arrow IPC stream, or a Parquet file — streamed. Every
refusal and every engine error is a 400 ``{"error": {"code", "message"}}``
(codes ``INVALID_ARGUMENT``, ``SQL_REFUSED``, ``SQL_ERROR``, ``SQL_LIMIT``);
see docs/SQL.md. With auth on, a user who is not an admin sees only the rows of experiments and
registered models they may read (:mod:`query.sql.rowfilter`).
"""

from __future__ import annotations

import logging
from typing import Any, NamedTuple

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from auth import ReadableSet
from producer.errors import ContractError, RunledgerError

from ..auth.guard import readable_for
from ..errors_http import ApiError, native_error
from ..registry_startup import registry_service
from ..services import Services, get_services
from ..sql import FORMATS, SqlService
from ..sql.rowfilter import RowScope

__all__ = ["SqlRequest", "parse_request", "router"]

log = logging.getLogger("runledger.sql")

router = APIRouter(prefix="/api/v1", tags=["sql"])

MAX_BODY_BYTES = 1 << 20
_FIELDS = frozenset({"sql", "format"})


class SqlRequest(NamedTuple):
    sql: str
    format: str
    """A key of ``query.sql.FORMATS``."""


def parse_request(raw: bytes) -> SqlRequest:
    """The request body as a SqlRequest; ContractError naming the problem if it is not one."""
    try:
        body: Any = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ContractError(f"the body must be a JSON object: {exc}") from exc
    if not isinstance(body, dict):
        raise ContractError('the body must be a JSON object like {"sql": "SELECT ...", "format": "json"}')
    unknown = set(body) - _FIELDS
    if unknown:
        raise ContractError(f"unknown field(s) {', '.join(sorted(unknown))}; expected 'sql' and optionally 'format'")
    sql = body.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise ContractError("field 'sql' must be a non-empty string")
    fmt = body.get("format", "json")
    if not isinstance(fmt, str) or fmt.lower() not in FORMATS:
        raise ContractError(f"field 'format' must be one of {', '.join(FORMATS)}, got {fmt!r}")
    return SqlRequest(sql, fmt.lower())


def _service(services: Services) -> SqlService:
    svc = services.extras.get("sql")
    if isinstance(svc, SqlService):
        return svc
    reason = services.extras.get("sql_error", "it did not start")
    raise ApiError(503, "UNAVAILABLE", f"the SQL endpoint is unavailable: {reason}")


@router.post("/sql", summary="Run one read-only SELECT over the documented views (docs/SQL.md)")
async def run_sql(request: Request, services: Services = Depends(get_services)) -> StreamingResponse:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise native_error(413, "TOO_LARGE", f"request body of {len(raw)} bytes exceeds {MAX_BODY_BYTES}")
    req = parse_request(raw)
    result = await run_in_threadpool(_service(services).run, req.sql, req.format, row_scope(request, services))
    return StreamingResponse(result.chunks(), media_type=result.media_type,
                             headers={"Content-Length": str(result.size_bytes)},
                             background=BackgroundTask(result.close))


def row_scope(request: Request, services: Services) -> RowScope | None:
    """What the caller may see (None: everything — auth off, or an admin)."""
    experiments = readable_for(request, "experiment")
    names = readable_for(request, "registered_model")
    if experiments is None or names is None:
        return None
    index = registry_service(services).state().names
    ids = frozenset(index[n] for n in names.ids if n in index)
    return RowScope(experiments, names, ReadableSet(names.everything_except, ids))


def start_sql(services: Services) -> None:
    """Start-up hook: build the SQL service; if it cannot start, the endpoint answers 503 with the reason."""
    try:
        services.extras["sql"] = SqlService.open(services.settings, services.store)
    except RunledgerError as exc:
        log.error("SQL endpoint unavailable: %s", exc)
        services.extras["sql_error"] = str(exc)

