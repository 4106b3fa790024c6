"""Run one user query: check it twice, run it in the sandbox, hand back the encoded result.

``SqlService.run(sql, fmt)`` is the whole pipeline:

1. :func:`query.sql.lexer.precheck` — one SELECT, no SETTINGS / FORMAT / INTO OUTFILE (pure);
2. the engine parses it (``parseQueryToJSON``) and formats the same tree back
   to one line of SQL;
3. :func:`query.sql.policy.check_ast` walks that tree — documented views and
   allowlisted functions only (pure);
4. the *formatted* SQL (what was checked, byte for byte; wrapped in
   ``SELECT * FROM (...)`` when it reads no table, so the row limit counts
   it) runs on a read-only, limited session inside the sandbox database
   (:class:`query.sql.engine.SqlEngine`);
5. the engine's own encoding (JSON, CSV, Arrow IPC stream, Parquet) is read
   into a spool — memory up to 8 MiB, then a temporary file — counting
   bytes against ``sql_max_result_bytes``, so every error and every limit is
   known before the first byte of the answer is sent; the answer then
   streams from the spool.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from producer.errors import ContractError

from ..errors_http import ApiError
from .engine import READ_CHUNK_BYTES, Limits, Session, SqlEngine, sandbox_name
from .errors import SqlLimitExceeded
from .lexer import precheck
from .policy import Policy, check_ast, sourceless
from .rowfilter import RowScope, sandbox_for, view_sql

if TYPE_CHECKING:
    from ingest.sink import ClickHouseStore

    from ..settings import Settings

__all__ = ["FORMATS", "PUBLIC_VIEWS", "OutputFormat", "SqlResult", "SqlService", "install_sandbox"]

log = logging.getLogger("runledger.sql")

#: The views user SQL can reach (docs/SQL.md documents each one).
PUBLIC_VIEWS = ("metrics", "runs", "params", "tags", "latest_metrics", "experiments",
                "registry_events", "model_versions")

MAX_FILTERED_SANDBOXES = 64
"""Filtered sandboxes (one per distinct row filter) kept at once; the least recently used is dropped."""

SPOOL_MEMORY_BYTES = 8 << 20
"""Results up to this size stay in memory while spooled; larger ones go to a temporary file."""


@dataclass(frozen=True, slots=True)
class OutputFormat:
    engine_format: str
    """The ClickHouse output format that encodes the result."""
    media_type: str


#: API format name -> how the engine encodes it.
FORMATS = {
    "json": OutputFormat("JSON", "application/json"),
    "csv": OutputFormat("CSVWithNames", "text/csv; charset=utf-8"),
    "arrow": OutputFormat("ArrowStream", "application/vnd.apache.arrow.stream"),
    "parquet": OutputFormat("Parquet", "application/vnd.apache.parquet"),
}


class SqlResult:
    """An encoded result, complete and within limits, ready to stream; read it once, then it is gone."""

    def __init__(self, spool: IO[bytes], media_type: str, size_bytes: int) -> None:
        self._spool = spool
        self.media_type = media_type
        self.size_bytes = size_bytes

    def chunks(self) -> Iterator[bytes]:
        """The encoded bytes in pieces; closes the spool at the end."""
        try:
            while chunk := self._spool.read(READ_CHUNK_BYTES):
                yield chunk
        finally:
            self.close()

    def read_all(self) -> bytes:
        return b"".join(self.chunks())

    def close(self) -> None:
        self._spool.close()


def install_sandbox(store: ClickHouseStore, database: str, views: tuple[str, ...] = PUBLIC_VIEWS) -> str:
    """(Re)create the sandbox database: one pass-through view per public view, nothing else. Returns its name."""
    sandbox = sandbox_name(database)
    store.command(f"CREATE DATABASE IF NOT EXISTS `{sandbox}`")
    stale = store.query_rows("SELECT name FROM system.tables WHERE database = {d:String}", {"d": sandbox})
    for (name,) in stale:
        if name not in views:
            store.command(f"DROP TABLE IF EXISTS `{sandbox}`.`{name}`")
    for name in views:
        store.command(f"CREATE OR REPLACE VIEW `{sandbox}`.`{name}` AS SELECT * FROM `{database}`.`{name}`")
    return sandbox


class SqlService:
    """Guarded, limited SQL over the documented views (see the module docstring)."""

    def __init__(self, engine: SqlEngine, policy: Policy, *, unavailable: str | None = None,
                 store: ClickHouseStore | None = None, settings: Settings | None = None) -> None:
        self.engine = engine
        self.policy = policy
        self.unavailable = unavailable
        """Why the endpoint cannot serve on this engine (None when it can)."""
        self._store = store
        self._settings = settings
        self._filtered: OrderedDict[str, tuple[SqlEngine, Policy]] = OrderedDict()
        self._filtered_lock = threading.Lock()

    @classmethod
    def open(cls, settings: Settings, store: ClickHouseStore) -> SqlService:
        sandbox = install_sandbox(store, settings.database)
        limits = Limits(max_execution_time_s=settings.sql_max_execution_time_s,
                        max_result_rows=settings.sql_max_result_rows,
                        max_result_bytes=settings.sql_max_result_bytes)
        engine = SqlEngine(settings.dsn, sandbox, limits)
        unavailable = None
        with engine.session() as session:
            if not session.has_function("parseQueryToJSON"):
                unavailable = "the SQL endpoint needs ClickHouse 26.8 or newer (for parseQueryToJSON)"
                log.warning("SQL endpoint disabled: %s", unavailable)
        policy = Policy(views=frozenset(PUBLIC_VIEWS), databases=frozenset({settings.database, sandbox}))
        for (name,) in store.query_rows("SELECT name FROM system.databases WHERE startsWith(name, {p:String})",
                                        {"p": f"{settings.database}_sqlf_"}):
            store.command(f"DROP DATABASE IF EXISTS `{name}`")  # filtered sandboxes of an earlier run
        return cls(engine, policy, unavailable=unavailable, store=store, settings=settings)

    def _scoped(self, scope: RowScope | None) -> tuple[SqlEngine, Policy]:
        """The engine and policy for a query under ``scope`` (None: the unfiltered sandbox)."""
        if scope is None or self._store is None or self._settings is None:
            return self.engine, self.policy
        database = self._settings.database
        name = sandbox_for(database, PUBLIC_VIEWS, scope)
        with self._filtered_lock:
            found = self._filtered.get(name)
            if found is not None:
                self._filtered.move_to_end(name)
                return found
            self._store.command(f"CREATE DATABASE IF NOT EXISTS `{name}`")
            for view in PUBLIC_VIEWS:
                self._store.command(f"CREATE OR REPLACE VIEW `{name}`.`{view}` AS {view_sql(view, database, scope)}")
            engine = SqlEngine(self._settings.dsn, name, self.engine.limits, max_sessions=2)
            found = (engine, Policy(views=frozenset(PUBLIC_VIEWS), databases=frozenset({name})))
            self._filtered[name] = found
            while len(self._filtered) > MAX_FILTERED_SANDBOXES:
                old, (old_engine, _) = self._filtered.popitem(last=False)
                old_engine.close()
                self._store.command(f"DROP DATABASE IF EXISTS `{old}`")
            return found

    def _checked(self, session: Session, sql: str, policy: Policy | None = None) -> str:
        if self.unavailable:
            raise ApiError(503, "UNAVAILABLE", self.unavailable)
        parsed = session.parse(precheck(sql))
        check_ast(parsed.tree, policy or self.policy)
        return f"SELECT * FROM ({parsed.sql})" if sourceless(parsed.tree) else parsed.sql

    def check(self, sql: str) -> str:
        """The SQL that will run for ``sql`` (the engine's formatting of its parse); SqlRefused / SqlEngineError if none."""
        with self.engine.session() as session:
            return self._checked(session, sql)

    def run(self, sql: str, fmt: str = "json", scope: RowScope | None = None) -> SqlResult:
        """Check and run ``sql``; the whole result encoded as ``fmt`` (a key of FORMATS), within the limits;
        with ``scope``, over views that hold only the rows it lets the caller read (:mod:`.rowfilter`)."""
        engine, policy = self._scoped(scope)
        output = FORMATS.get(fmt)
        if output is None:
            raise ContractError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        limit = self.engine.limits.max_result_bytes
        spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MEMORY_BYTES)  # noqa: SIM115 - the handle outlives this block
        try:
            with engine.session() as session:
                pieces = session.stream(self._checked(session, sql, policy), output.engine_format)
                size = 0
                try:
                    for chunk in pieces:
                        size += len(chunk)
                        if size > limit:
                            raise SqlLimitExceeded(
                                f"the encoded result is larger than {limit} bytes [limit: sql_max_result_bytes]")
                        spool.write(chunk)
                finally:
                    pieces.close()
        except BaseException:
            spool.close()
            raise
        spool.seek(0)
        return SqlResult(spool, output.media_type, size)

    def close(self) -> None:
        self.engine.close()
        with self._filtered_lock:
            for engine, _ in self._filtered.values():
                engine.close()
            self._filtered.clear()
