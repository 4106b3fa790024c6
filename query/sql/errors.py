"""What the SQL endpoint answers when it will not, or cannot, run a query.

Every one is a 400 with ``{"error": {"code", "message"}}`` — the caller's SQL
is the cause, never the server::

    ApiError (query.errors_http)
    ├── SqlRefused         SQL_REFUSED   the guard refused it (not a SELECT, a raw table, file(), SETTINGS ...)
    ├── SqlEngineError     SQL_ERROR     the engine refused it (syntax, unknown column, type mismatch ...)
    └── SqlLimitExceeded   SQL_LIMIT     a limit stopped it (time, rows, bytes, memory)
"""

from __future__ import annotations

from ..errors_http import ApiError

__all__ = ["SqlEngineError", "SqlLimitExceeded", "SqlRefused"]


class SqlRefused(ApiError):
    """The guard refused the statement before it ran; the message says what and why."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "SQL_REFUSED", message)


class SqlEngineError(ApiError):
    """ClickHouse rejected the statement; the message is the engine's own."""

    def __init__(self, message: str, engine_code: int | None = None) -> None:
        super().__init__(400, "SQL_ERROR", message)
        self.engine_code = engine_code


class SqlLimitExceeded(ApiError):
    """A limit (``sql_max_execution_time_s``, ``sql_max_result_rows``, ``sql_max_result_bytes``) was hit."""

    def __init__(self, message: str) -> None:
        super().__init__(400, "SQL_LIMIT", message)
