"""The objects a running server holds, built once by ``create_app`` and injected with Depends."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from ingest.schema import apply_schema
from ingest.sink import ClickHouseStore
from ingest.writer import Writer, WriteResult
from producer.codec import validated
from producer.events import Body, Event, ExperimentCreated, Source
from producer.ids import DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, new_id

from .log import EmbeddedLog, EventLog
from .read_model import ReadModel
from .reads import Reads
from .settings import Settings

__all__ = ["Services", "get_services", "build_services", "StartupHook"]

log = logging.getLogger("runledger.server")


@dataclass(slots=True)
class Services:
    settings: Settings
    store: ClickHouseStore
    reads: Reads
    writer: Writer
    log: EventLog
    clock_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)
    source: Source = field(default_factory=lambda: Source(host=socket.gethostname(), pid=os.getpid(), rank=0))
    extras: dict[str, Any] = field(default_factory=dict)
    """Per-area state (registry service, artifact store, ...), keyed by area name."""

    def event(self, entity: str, body: Body, *, actor: str = "", ts_ms: int | None = None) -> Event:
        """A server-minted event (for commands that arrive over the API rather than from a producer)."""
        return Event(id=new_id(), type=body.TYPE, entity=entity, ts_ms=self.clock_ms() if ts_ms is None else ts_ms,
                     body=body, source=self.source, actor=actor)

    def append(self, events: list[Event]) -> WriteResult:
        """Append server-built events: each first passes the contract's own decoder (a body the
        decoder would refuse — too long, a bad value — is a ContractError here, a 400 to the caller,
        instead of a log row that a rebuild could not read back)."""
        return self.log.append([validated(e) for e in events])

    def close(self) -> None:
        self.log.close()
        for extra in self.extras.values():
            close = getattr(extra, "close", None)
            if callable(close):
                close()
        self.store.close()


StartupHook = Callable[[Services], None]


def build_services(settings: Settings, hooks: Sequence[StartupHook] = ()) -> Services:
    """The server's objects; then each start-up hook (``query.app.STARTUP_HOOKS``) adds its area's state."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = ClickHouseStore(settings.dsn, settings.database)
    apply_schema(store)
    writer = Writer(store)
    event_log: EventLog
    if settings.kafka_bootstrap:
        from .kafka_log import KafkaLog  # imported only in distributed mode

        event_log = KafkaLog(settings, store, writer)
    else:
        event_log = EmbeddedLog(writer)
    model = None
    if not settings.kafka_bootstrap:
        # embedded: this process is the only writer, so a model fed by its writer is complete
        model = ReadModel.load(store)
        writer.listeners.append(model.apply)
        writer.failure_listeners.append(model.failed)
    services = Services(settings=settings, store=store, reads=Reads(store, model), writer=writer, log=event_log)
    if services.reads.experiment(DEFAULT_EXPERIMENT_ID) is None:
        services.append([services.event(DEFAULT_EXPERIMENT_ID, ExperimentCreated(
            name=DEFAULT_EXPERIMENT_NAME, artifact_location=f"{settings.experiments_root.rstrip('/')}/0"))])
    for hook in hooks:
        hook(services)
    return services


def get_services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]
