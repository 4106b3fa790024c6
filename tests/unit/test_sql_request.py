"""Pure pieces around the SQL endpoint: request parsing, error mapping, limits, the CLI table, a light producer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ingest.schema import VIEWS
from producer.errors import ContractError, TransientError
from query.cli_sql import render_table
from query.routes.sql import SqlRequest, parse_request
from query.sql import FORMATS, PUBLIC_VIEWS
from query.sql.engine import Limits, _map_error, sandbox_name
from query.sql.errors import SqlEngineError, SqlLimitExceeded, SqlRefused


@pytest.mark.parametrize("raw, expected", [
    (b'{"sql": "SELECT 1"}', SqlRequest("SELECT 1", "json")),
    (b'{"sql": "SELECT 1", "format": "CSV"}', SqlRequest("SELECT 1", "csv")),
    (b'{"sql": "SELECT 1", "format": "arrow"}', SqlRequest("SELECT 1", "arrow")),
    (b'{"sql": "SELECT 1", "format": "parquet"}', SqlRequest("SELECT 1", "parquet")),
])
def test_parse_request(raw: bytes, expected: SqlRequest) -> None:
    assert parse_request(raw) == expected


@pytest.mark.parametrize("raw, reason", [
    (b"", "JSON object"),
    (b"SELECT 1", "JSON object"),
    (b'"SELECT 1"', "JSON object"),
    (b"[1, 2]", "JSON object"),
    (b"{}", "'sql' must be a non-empty string"),
    (b'{"sql": ""}', "'sql' must be a non-empty string"),
    (b'{"sql": "   "}', "'sql' must be a non-empty string"),
    (b'{"sql": 42}', "'sql' must be a non-empty string"),
    (b'{"sql": ["SELECT 1"]}', "'sql' must be a non-empty string"),
    (b'{"sql": "SELECT 1", "format": "xml"}', "'format' must be one of"),
    (b'{"sql": "SELECT 1", "format": null}', "'format' must be one of"),
    (b'{"sql": "SELECT 1", "fromat": "csv"}', "unknown field"),
    (b'{"sql": "SELECT 1", "settings": {"readonly": 0}}', "unknown field"),
    (b"\xff\xfe", "JSON object"),
])
def test_malformed_requests_are_contract_errors(raw: bytes, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        parse_request(raw)


class _FakeEngineError(Exception):
    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


@pytest.mark.parametrize("exc, kind, text", [
    (_FakeEngineError("HTTPDriver received ClickHouse error\nCode: 159. DB::Exception: Timeout exceeded"),
     SqlLimitExceeded, "sql_max_execution_time_s"),
    (_FakeEngineError("Code: 396. DB::Exception: Limit for result exceeded, max rows: 10"), SqlLimitExceeded,
     "sql_max_result_rows"),
    (_FakeEngineError("memory", code=241), SqlLimitExceeded, "memory limit"),
    (_FakeEngineError("Code: 164. DB::Exception: Cannot execute query in readonly mode"), SqlRefused, "readonly"),
    (_FakeEngineError("Code: 62. DB::Exception: Syntax error"), SqlEngineError, "Code: 62"),
    (_FakeEngineError("something odd"), SqlEngineError, "something odd"),
    (ConnectionError("refused"), TransientError, "unreachable"),
])
def test_engine_errors_map_to_what_the_caller_should_see(exc: Exception, kind: type, text: str) -> None:
    mapped = _map_error(exc)
    assert isinstance(mapped, kind) and text in str(mapped)


def test_engine_settings_put_readonly_last_and_carry_the_limits() -> None:
    limits = Limits(max_execution_time_s=2.5, max_result_rows=10, max_result_bytes=1 << 20)
    settings = limits.engine_settings(readonly=1)
    assert list(settings)[-1] == "readonly" and settings["readonly"] == 1
    assert (settings["max_execution_time"], settings["max_result_rows"], settings["max_result_bytes"]) == \
        (2.5, 10, 1 << 20)
    assert settings["result_overflow_mode"] == "throw"
    assert settings["max_memory_usage"] == 1 << 30
    assert Limits(1.0, 1, 1 << 30).max_memory_bytes == 4 << 30
    assert sandbox_name("runledger") == "runledger_sql"


def test_public_views_are_defined_and_formats_are_engine_formats() -> None:
    assert set(PUBLIC_VIEWS) <= set(VIEWS)
    assert {f.engine_format for f in FORMATS.values()} == {"JSON", "CSVWithNames", "ArrowStream", "Parquet"}


def test_render_table() -> None:
    text = render_table(["run", "loss", "note"], [["a", 0.5, None], ["bb", 1, "x\ny" * 40]])
    lines = text.splitlines()
    assert lines[0] == "run  loss  note"
    assert lines[2].split() == ["a", "0.5", "NULL"]
    assert lines[3].startswith("bb   1     x\\ny") and lines[3].endswith("…") and len(lines[3]) < 80
    assert lines[-1] == "(2 rows)"
    assert render_table(["x"], []).splitlines()[-1] == "(0 rows)"


def test_import_producer_stays_light() -> None:
    code = ("import sys, producer; assert callable(producer.query_df); "
            "print(sorted(m for m in ('pandas', 'pyarrow', 'fastapi', 'clickhouse_connect', 'chdb', 'numpy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"
