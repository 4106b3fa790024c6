"""The ClickHouse port and its one adapter (clickhouse-connect: chDB or an HTTP server).

Only this module imports clickhouse_connect. ClickHouse errors are mapped at
this boundary: connection trouble becomes :class:`TransientError` (retry),
anything else :class:`StorageError`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlparse

from producer.errors import ContractError, RunledgerError, TransientError

__all__ = ["Store", "ClickHouseStore", "StorageError", "open_store"]


class StorageError(RunledgerError):
    """ClickHouse refused a statement (bad SQL, limits, schema mismatch)."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class Store(Protocol):
    """What the writer and the readers need from ClickHouse."""

    def insert_columns(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None: ...
    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None,
                   settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]: ...
    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None: ...


def _map_error(exc: Exception) -> RunledgerError:
    import clickhouse_connect.driver.exceptions as chx

    if isinstance(exc, (chx.OperationalError, ConnectionError, TimeoutError)):
        return TransientError(f"ClickHouse unreachable: {exc}")
    code = getattr(exc, "code", None)
    msg = str(exc)
    if code is None and "Code: " in msg:
        try:
            code = int(msg.split("Code: ", 1)[1].split(".", 1)[0])
        except ValueError:
            code = None
    return StorageError(msg, code)


class ClickHouseStore:
    """A clickhouse-connect client bound to runledger's database.

    ``dsn`` is ``chdb:///path/to/folder`` (embedded, in-process) or
    ``http://user:password@host:8123`` (a ClickHouse server). One instance is
    shared by threads; chDB serialises statements internally.
    """

    def __init__(self, dsn: str, database: str = "runledger", *, readonly: bool = False) -> None:
        import clickhouse_connect

        if not dsn.startswith(("chdb:", "http://", "https://")):
            shown = dsn.split("://", 1)[0] + "://..." if "://" in dsn else dsn  # never echo a password
            raise ContractError(f"ClickHouse DSN must be chdb:///path or http(s)://user:password@host:8123, got {shown!r}")
        self.dsn = dsn
        self.database = database
        self.embedded = dsn.startswith("chdb:")
        self._local = threading.local()
        try:
            if self.embedded:
                path = urlparse(dsn).path or dsn[len("chdb://"):]
                os.makedirs(path, exist_ok=True)
                boot = clickhouse_connect.get_client(dsn=f"chdb://{path}")
                boot.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
                self._client = clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database)
            else:
                boot = clickhouse_connect.get_client(dsn=dsn)
                boot.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
                boot.close()
                self._client = clickhouse_connect.get_client(dsn=dsn, database=database)
        except Exception as exc:
            raise _map_error(exc) from exc

    def insert_columns(self, table: str, columns: Mapping[str, Sequence[Any]]) -> None:
        names = list(columns)
        try:
            self._client.insert(table, [columns[n] for n in names], column_names=names, column_oriented=True)
        except Exception as exc:
            raise _map_error(exc) from exc

    def query_rows(self, sql: str, parameters: dict[str, Any] | None = None,
                   settings: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        try:
            return [tuple(r) for r in self._client.query(sql, parameters=parameters, settings=settings).result_rows]
        except Exception as exc:
            raise _map_error(exc) from exc

    def query_columns(self, sql: str, parameters: dict[str, Any] | None = None,
                      settings: dict[str, Any] | None = None) -> tuple[list[str], list[Sequence[Any]]]:
        """Column names and column-oriented results (fast path for long series)."""
        try:
            r = self._client.query(sql, parameters=parameters, settings=settings)
            return list(r.column_names), list(r.result_columns)
        except Exception as exc:
            raise _map_error(exc) from exc

    def raw_query(self, sql: str, parameters: dict[str, Any] | None = None, fmt: str = "JSON",
                  settings: dict[str, Any] | None = None) -> bytes:
        """The engine's own serialisation of a result (JSON, CSV, Arrow, Parquet ...)."""
        try:
            return self._client.raw_query(sql, parameters=parameters, fmt=fmt, settings=settings)
        except Exception as exc:
            raise _map_error(exc) from exc

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> None:
        try:
            self._client.command(sql, parameters=parameters)
        except Exception as exc:
            raise _map_error(exc) from exc

    def close(self) -> None:
        self._client.close()


def open_store(dsn: str, database: str = "runledger") -> ClickHouseStore:
    return ClickHouseStore(dsn, database)
