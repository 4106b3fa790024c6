"""The SQL endpoint's own ClickHouse session: read-only, limited, inside the sandbox database.

This is the engine half of the guard. Each session (a clickhouse-connect
client, chDB or HTTP, from a small pool separate from the server's main
client) carries, on every statement:

* ``readonly = 1`` (``2`` if the server refuses to let a request lower its own
  level): no writes, no DDL, no ``SET``, no table functions, no per-query
  ``SETTINGS`` overrides;
* ``max_execution_time``, ``max_result_rows``, ``max_result_bytes`` with
  ``result_overflow_mode = 'throw'``, and ``max_memory_usage``;
* the *sandbox* database as its current database: it holds nothing but
  pass-through views of the documented views, so a bare table name that is
  not one of them cannot resolve to a raw table.

Only this module (and :mod:`ingest.sink`) imports clickhouse_connect; its
exceptions are mapped here to :mod:`query.sql.errors` (the caller's SQL) or
:class:`TransientError` (the engine is unreachable).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import urlparse

import orjson

from producer.errors import RunledgerError, TransientError

from .errors import SqlEngineError, SqlLimitExceeded, SqlRefused

__all__ = ["READ_CHUNK_BYTES", "Limits", "Parsed", "Session", "SqlEngine", "sandbox_name"]

READ_CHUNK_BYTES = 1 << 20
"""Size of the pieces a result is read from the engine in."""

_MIN_MEMORY_BYTES = 1 << 30
_READONLY = 164
_PARSE_ECHO = "In scope SELECT parseQueryToJSON("
_ERROR_NAME = re.compile(r"\(([A-Z_]+)\)\s*$")
_LIMIT_HINTS = {
    159: "sql_max_execution_time_s",  # TIMEOUT_EXCEEDED
    160: "sql_max_execution_time_s",  # TOO_SLOW
    158: "sql_max_result_rows",  # TOO_MANY_ROWS
    307: "sql_max_result_bytes",  # TOO_MANY_BYTES
    396: "sql_max_result_rows / sql_max_result_bytes",  # TOO_MANY_ROWS_OR_BYTES
    241: "the query's memory limit (4 x sql_max_result_bytes, at least 1 GiB)",  # MEMORY_LIMIT_EXCEEDED
}


def sandbox_name(database: str) -> str:
    """The database that holds only the pass-through views user SQL runs against."""
    return f"{database}_sql"


@dataclass(frozen=True, slots=True)
class Limits:
    """What one user query may consume (from ``Settings.sql_*``)."""

    max_execution_time_s: float
    max_result_rows: int
    max_result_bytes: int

    @property
    def max_memory_bytes(self) -> int:
        """The engine's memory cap per query: room for the result four times over, at least 1 GiB."""
        return max(_MIN_MEMORY_BYTES, 4 * self.max_result_bytes)

    def engine_settings(self, readonly: int) -> dict[str, Any]:
        """Session settings, in the order they must be applied (``readonly`` last: it freezes the rest)."""
        return {
            "max_execution_time": self.max_execution_time_s,
            "max_result_rows": self.max_result_rows,
            "max_result_bytes": self.max_result_bytes,
            "result_overflow_mode": "throw",
            "max_memory_usage": self.max_memory_bytes,
            "output_format_json_quote_64bit_integers": 0,
            "output_format_arrow_string_as_string": 1,
            "output_format_parquet_string_as_string": 1,
            "readonly": readonly,
        }


class Parsed(NamedTuple):
    """The engine's reading of one SQL text."""

    tree: dict[str, Any]
    """The parse tree as JSON (``parseQueryToJSON``)."""
    sql: str
    """The same tree formatted back to one line of SQL: what actually runs, so what was checked is what runs."""


def _engine_message(exc: Exception) -> tuple[str, int | None]:
    message = str(exc)
    start = message.find("Code: ")
    if start > 0:
        message = message[start:]
    code = getattr(exc, "code", None)
    if not isinstance(code, int) and message.startswith("Code: "):
        digits = message[len("Code: "):].split(".", 1)[0]
        code = int(digits) if digits.isdigit() else None
    return message.strip()[:4000], code if isinstance(code, int) else None


def _map_error(exc: Exception) -> RunledgerError:
    """A clickhouse-connect exception as the runledger error the caller should see."""
    import clickhouse_connect.driver.exceptions as chx

    message, code = _engine_message(exc)
    if code is None:
        if isinstance(exc, (chx.OperationalError, ConnectionError, TimeoutError)):
            return TransientError(f"ClickHouse unreachable: {message}")
        return SqlEngineError(message)
    if code in _LIMIT_HINTS:
        return SqlLimitExceeded(f"{message} [limit: {_LIMIT_HINTS[code]}]")
    if code == _READONLY:
        return SqlRefused(message)
    return SqlEngineError(message, code)


def _without_wrapper(err: RunledgerError) -> RunledgerError:
    """``err`` without the engine's echo of the parsing statement (the user's SQL is all they need to see)."""
    message = str(err)
    cut = message.find(_PARSE_ECHO)
    if not isinstance(err, SqlEngineError) or cut < 0:
        return err
    name = _ERROR_NAME.search(message)
    return SqlEngineError(message[:cut].rstrip(" :") + (f" ({name.group(1)})" if name else ""), err.engine_code)


class Session:
    """One connection of the SQL session pool, lent to one request (see :meth:`SqlEngine.session`)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def has_function(self, name: str) -> bool:
        """Whether the engine knows the function ``name`` (``parseQueryToJSON`` needs ClickHouse >= 26.8)."""
        try:
            raw = self._client.raw_query("SELECT count() FROM system.functions WHERE name = {n:String}",
                                         parameters={"n": name}, fmt="TabSeparated")
        except Exception as exc:
            raise _map_error(exc) from exc
        return bool(raw.strip() == b"1")

    def parse(self, sql: str) -> Parsed:
        """The engine's parse tree of ``sql`` and its canonical one-line text; SqlEngineError if it does not parse."""
        try:
            raw = self._client.raw_query(
                "SELECT parseQueryToJSON({q:String}) AS tree, formatQuerySingleLine({q:String}) AS sql",
                parameters={"q": sql}, fmt="JSONEachRow")
        except Exception as exc:
            raise _without_wrapper(_map_error(exc)) from exc
        row = orjson.loads(raw)
        return Parsed(tree=orjson.loads(row["tree"]), sql=row["sql"])

    def stream(self, sql: str, engine_format: str) -> Generator[bytes, None, None]:
        """The result of ``sql`` in ``engine_format``, in pieces; errors (even mid-way) as runledger errors.

        Closing the iterator early (``.close()``, or dropping it) stops the query.
        """
        try:
            source = self._client.raw_stream(sql, fmt=engine_format)
        except Exception as exc:
            raise _map_error(exc) from exc
        try:
            while True:
                try:
                    chunk = source.read(READ_CHUNK_BYTES)
                except Exception as exc:
                    raise _map_error(exc) from exc
                if not chunk:
                    return
                yield chunk
        finally:
            source.close()


class SqlEngine:
    """Read-only, limited sessions on ``database`` (the sandbox) of the engine at ``dsn``.

    ``dsn`` is the server's own (``chdb:///path`` or ``http://...``); chDB
    clients on one path share the engine, each connection with its own
    session. Requests borrow a connection from a small pool
    (:meth:`session`), so up to ``max_sessions`` queries run at once and a
    further request waits for a free one. A connection that saw any error is
    closed, never reused: chDB hands the unread output of a query that failed
    half-way to the *next* query on the same connection, which would put one
    request's partial rows into another's answer.
    """

    def __init__(self, dsn: str, database: str, limits: Limits, *, max_sessions: int = 4) -> None:
        self.limits = limits
        self.readonly = 1
        self._dsn = dsn
        self._database = database
        self._idle: list[Any] = []
        self._idle_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_sessions)
        try:
            first = self._connect()
        except SqlRefused:
            # The server would not let a request lower its own access level to 1.
            self.readonly = 2
            first = self._connect()
        self._idle.append(first)

    def _connect(self) -> Any:
        import clickhouse_connect

        dsn = self._dsn
        if dsn.startswith("chdb:"):
            dsn = f"chdb://{urlparse(dsn).path or dsn[len('chdb://'):]}"
        try:
            client = clickhouse_connect.get_client(
                dsn=dsn, database=self._database, settings=self.limits.engine_settings(self.readonly))
            client.raw_query("SELECT 1", fmt="TabSeparated")
        except Exception as exc:
            raise _map_error(exc) from exc
        return client

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A connection for one request; back to the pool if the block ends normally, closed if it raises."""
        self._slots.acquire()
        try:
            with self._idle_lock:
                client = self._idle.pop() if self._idle else None
            if client is None:
                client = self._connect()
            try:
                yield Session(client)
            except BaseException:
                client.close()
                raise
            with self._idle_lock:
                self._idle.append(client)
        finally:
            self._slots.release()

    def close(self) -> None:
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for client in idle:
            client.close()
