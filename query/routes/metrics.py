"""``GET /metrics``: Prometheus text for the server's writer and, in Kafka mode with ``--ingest``, its ingest worker."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from ingest.kafka_metrics import render_prometheus

from ..services import Services, get_services

router = APIRouter(tags=["metrics"])

_WRITER = (
    ("events_written", "runledger_writer_events_total", "Events this process wrote to ClickHouse"),
    ("points_written", "runledger_writer_points_total", "Metric points this process wrote to ClickHouse"),
    ("dead_letters", "runledger_writer_dead_letters_total", "Events this process sent to the dead_letter table"),
    ("batches", "runledger_writer_batches_total", "Write calls (group commits or ingest batches)"),
)


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics (text format 0.0.4)")
def metrics(services: Services = Depends(get_services)) -> PlainTextResponse:
    st = services.writer.stats
    mode = services.log.mode
    lines: list[str] = []
    for attr, name, help_text in _WRITER:
        sample = f'{name}{{mode="{mode}"}} {getattr(st, attr)}'
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} counter", sample]
    snapshots = getattr(services.log, "ingest_snapshots", None)
    text = "\n".join(lines) + "\n" + "".join(render_prometheus(s) for s in (snapshots() if callable(snapshots) else ()))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")
