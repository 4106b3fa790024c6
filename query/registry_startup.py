"""Wiring of the registry into the server: :func:`start_registry` (a start-up hook in ``query.services``)
builds the :class:`~registry.service.RegistryService` over the server's event log, folds the log, and puts
the service in ``services.extras["registry"]`` (see :func:`registry_service`). The registry's projections
are wired in :mod:`ingest` itself (``ingest.rows.PROJECTORS``, ``ingest.schema``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from producer.errors import RunledgerError
from registry.service import RegistryService

from .registry_log import ClickHouseRegistryLog

if TYPE_CHECKING:
    from .services import Services

__all__ = ["start_registry", "registry_service", "EXTRA_KEY"]

log = logging.getLogger("runledger.registry")

EXTRA_KEY = "registry"


def start_registry(services: Services) -> None:
    """Start-up hook: the registry service, its state folded from the log."""
    service = RegistryService(services.log, ClickHouseRegistryLog(services.store), clock_ms=services.clock_ms,
                              source=services.source, distributed=services.log.mode != "embedded")
    t0 = time.perf_counter()
    n = service.reload()
    log.info("registry: folded %d events in %.3f s (%s mode)", n, time.perf_counter() - t0, services.log.mode)
    services.extras[EXTRA_KEY] = service


def registry_service(services: Services) -> RegistryService:
    """The server's registry service (built by :func:`start_registry`)."""
    service = services.extras.get(EXTRA_KEY)
    if not isinstance(service, RegistryService):
        raise RunledgerError("the registry service is not running (start-up hook missing)")
    return service
