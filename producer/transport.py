"""How batches leave the process: the Transport port and its HTTP adapter.

``send`` delivers a batch or raises: :class:`TransientError` (retry later:
unreachable, timeout, 408/429/5xx) or :class:`ContractError` (the server
refused the whole batch; retrying cannot help). Per-event refusals (a param
conflict, a malformed event) come back as a list; the rest were accepted.
The Kafka adapter lives in :mod:`producer.kafka_transport`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple, Protocol

import httpx
import orjson

from .codec import encode_batch
from .credentials import auth_headers
from .errors import ContractError, TransientError
from .events import Event

__all__ = ["Transport", "Refusal", "HttpTransport", "transport_for"]


class Refusal(NamedTuple):
    """One event the backend refused."""

    event_id: str | None
    """The refused event's id (None if it could not be read)."""
    reason: str
    """Why, naming the field or the conflicting value."""


class Transport(Protocol):
    def send(self, events: Sequence[Event]) -> list[Refusal]: ...
    def close(self) -> None: ...


class HttpTransport:
    """POSTs batches to ``{base_url}/api/v1/ingest`` (a runledger server's gateway), with the credentials of
    :func:`producer.credentials.auth_headers` when set."""

    def __init__(self, base_url: str, *, timeout_s: float = 30.0) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/ingest"
        self._client = httpx.Client(timeout=timeout_s, headers={"content-type": "application/json", **auth_headers()})

    def send(self, events: Sequence[Event]) -> list[Refusal]:
        try:
            resp = self._client.post(self.url, content=encode_batch(events))
        except httpx.HTTPError as exc:
            raise TransientError(f"{self.url} unreachable: {exc!r}") from exc
        if resp.status_code in (408, 429) or resp.status_code >= 500:
            raise TransientError(f"{self.url} answered {resp.status_code}: {resp.text[:200]}")
        if resp.status_code != 200:
            raise ContractError(f"{self.url} refused the batch ({resp.status_code}): {resp.text[:500]}")
        body = orjson.loads(resp.content)
        return [Refusal(r.get("event_id"), r.get("reason", "")) for r in body.get("rejected", ())]

    def close(self) -> None:
        self._client.close()


def transport_for(tracking_uri: str, **kafka_settings: object) -> Transport:
    """``http(s)://host:port`` -> HttpTransport; ``kafka://host:9092,host2:9092`` -> KafkaTransport."""
    if tracking_uri.startswith(("http://", "https://")):
        return HttpTransport(tracking_uri)
    if tracking_uri.startswith("kafka://"):
        from .kafka_transport import KafkaTransport  # needs the 'kafka' extra

        return KafkaTransport(tracking_uri[len("kafka://"):], **kafka_settings)
    raise ContractError(f"tracking_uri must start with http://, https:// or kafka://, got {tracking_uri!r}")
