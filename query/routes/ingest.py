"""``POST /api/v1/ingest``: the producer's HTTP gateway.

The body is a JSON array of events (the wire contract). Good events are
appended; bad ones are dead-lettered with their reason and listed in the
answer — one bad event never costs the others.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from auth import Principal
from ingest.writer import DeadLetter
from producer.codec import decode_batch
from producer.errors import ContractError

from ..auth.guard import require
from ..auth.ingest_check import screen
from ..auth.service import AuthService
from ..errors_http import native_error
from ..services import Services, get_services

router = APIRouter(tags=["ingest"])

MAX_BODY_BYTES = 64 * 1024 * 1024


@router.post("/api/v1/ingest", summary="Append a batch of events (JSON array, the wire contract)")
async def ingest(request: Request, services: Services = Depends(get_services)) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise native_error(413, "TOO_LARGE", f"batch of {len(raw)} bytes exceeds {MAX_BODY_BYTES}")
    found = require(request)
    return await run_in_threadpool(_ingest, services, raw, *(found or (None, None)))


def _ingest(services: Services, raw: bytes, service: AuthService | None = None,
            principal: Principal | None = None) -> dict[str, Any]:
    try:
        events, rejections = decode_batch(raw)
    except ContractError as exc:
        services.writer.dead_letter([DeadLetter("", str(exc), raw[:1_000_000], "decode")], origin="http")
        raise native_error(400, "INVALID_ARGUMENT", str(exc)) from exc
    services.writer.dead_letter(rejections, origin="http")
    decoded = events
    events, refused = screen(decoded, service, principal)
    result = services.log.append(events)
    index_of = {e.id: i for i, e in enumerate(decoded)}
    bad_positions = {r.position for r in rejections}
    good_positions = [p for p in range(len(decoded) + len(rejections)) if p not in bad_positions]
    rejected = [{"index": r.position, "event_id": r.event_id, "reason": r.reason} for r in rejections]
    rejected += [{"index": good_positions[i], "event_id": decoded[i].id, "reason": reason} for i, reason in refused]
    rejected += [{"index": good_positions[index_of[d.event_id]], "event_id": d.event_id, "reason": d.reason}
                 for d in result.rejected if d.event_id in index_of]
    rejected.sort(key=lambda r: int(r["index"] or 0))
    return {"accepted": len(events) - len(result.rejected), "rejected": rejected}
