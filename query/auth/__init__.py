"""The server's side of authentication and permissions (the domain itself is the top-level :mod:`auth`).

* :mod:`.service` — :class:`AuthService`: the folded state, commands, credential checks and caches;
* :mod:`.rules` — the access rule of every route (``RULES``);
* :mod:`.guard` — the middleware (401) and the per-route dependency (403);
* :func:`start_auth` — the start-up hook (``query.app.STARTUP_HOOKS``).
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from .service import EXTRA_KEY, AuthService, auth_service, parse_default_permission

if TYPE_CHECKING:
    from ..services import Services

__all__ = ["start_auth", "AuthService", "auth_service"]

log = logging.getLogger("runledger.auth")


def start_auth(services: Services) -> None:
    """Start-up hook: fold the auth events; with auth on, create the first admin if there is no user yet."""
    settings = services.settings
    service = AuthService(services, enabled=settings.auth,
                          default_permission=parse_default_permission(settings.auth_default_permission))
    t0 = time.perf_counter()
    n = service.reload()
    log.info("auth: %s; folded %d events in %.3f s (%d users)", "on" if settings.auth else "off", n,
             time.perf_counter() - t0, len(service.state().users))
    if settings.auth:
        service.bootstrap(settings.admin_username, settings.admin_password)
    services.extras[EXTRA_KEY] = service


