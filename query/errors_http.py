"""runledger errors -> HTTP answers for the native API: ``{"error": {"code", "message"}}``."""

from __future__ import annotations

from datetime import UTC, datetime

from producer.errors import (
    ConflictError,
    ContractError,
    NotFoundError,
    PermissionDeniedError,
    RunledgerError,
    TransientError,
    UnauthenticatedError,
)

__all__ = ["http_status", "parse_time_ms", "native_error", "ApiError"]


class ApiError(RunledgerError):
    """An error with an explicit HTTP status and code (e.g. 413 for an over-large body)."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def http_status(exc: RunledgerError) -> tuple[int, str]:
    if isinstance(exc, ApiError):
        return exc.status, exc.code
    if isinstance(exc, PermissionDeniedError):
        return 403, "PERMISSION_DENIED"
    if isinstance(exc, UnauthenticatedError):
        return 401, "UNAUTHENTICATED"
    if isinstance(exc, NotFoundError):
        return 404, "NOT_FOUND"
    if isinstance(exc, ConflictError):
        return 409, "CONFLICT"
    if isinstance(exc, ContractError):
        return 400, "INVALID_ARGUMENT"
    if isinstance(exc, TransientError):
        return 503, "UNAVAILABLE"
    return 500, "INTERNAL"


def native_error(status: int, code: str, message: str) -> ApiError:
    return ApiError(status, code, message)


def parse_time_ms(value: str | None) -> int | None:
    """``as_of`` accepts ISO 8601 (``2026-11-20T10:00:00Z``) or integer milliseconds since the epoch."""
    if value is None or value == "":
        return None
    v = value.strip()
    if v.lstrip("-").isdigit():
        return int(v)
    try:
        dt = datetime.fromisoformat(v.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError as exc:
        raise ContractError(f"as_of {value!r} is neither ISO 8601 nor milliseconds since the epoch") from exc
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)
