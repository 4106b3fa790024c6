"""POST /api/v1/sql against real engines: every refused construct, the limits, the formats, fuzzing.

One suite, two backends: chDB (embedded ``runledger serve``) always; a
ClickHouse server (testcontainers) where a Docker engine runs, skipped with
the reason otherwise. A separate check opens the SQL session directly and
sends it forbidden statements the guard never lets through, to show the
engine-level layer holds on its own.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from servers import REPO, ServerProcess

from producer.codec import encode_batch
from producer.events import Event, ExperimentCreated, MetricsLogged, RunCreated, Source
from producer.ids import experiment_id_for, new_id

pytestmark = pytest.mark.integration

LIMITS_ENV = {
    "RUNLEDGER_SQL_MAX_RESULT_ROWS": "5000",
    "RUNLEDGER_SQL_MAX_RESULT_BYTES": "1000000",
    "RUNLEDGER_SQL_MAX_EXECUTION_TIME_S": "1",
}
CLICKHOUSE_IMAGE = os.environ.get("RUNLEDGER_TEST_CLICKHOUSE_IMAGE", "clickhouse/clickhouse-server:26.9")
RUN_ID = "5e1f" * 8
POINTS = [(step, 0.5 * step if step != 3 else float("nan")) for step in range(10)]


def docker_unavailable() -> str | None:
    """None when a Docker engine answers; else why the ClickHouse-server variant is skipped."""
    try:
        import docker

        docker.from_env(timeout=3).ping()
    except Exception as exc:
        return (f"no Docker engine reachable ({type(exc).__name__}: {str(exc)[:100]}); the ClickHouse-server "
                f"variant of the SQL guard tests needs one (testcontainers); the chDB variant covers this machine")
    return None


def _seed(server: ServerProcess) -> None:
    eid = experiment_id_for("guard")
    t0 = 1_790_000_000_000
    events = [
        Event(id=new_id(), type="experiment_created", entity=eid, ts_ms=t0, body=ExperimentCreated(name="guard")),
        Event(id=new_id(), type="run_created", entity=RUN_ID, ts_ms=t0,
              body=RunCreated(experiment_id=eid, name="g", start_time_ms=t0)),
        Event(id=new_id(), type="metrics_logged", entity=RUN_ID, ts_ms=t0, source=Source(rank=2), body=MetricsLogged(
            keys=("loss",) * len(POINTS), steps=tuple(s for s, _ in POINTS),
            timestamps_ms=tuple(t0 + s for s, _ in POINTS), values=tuple(v for _, v in POINTS))),
    ]
    with server.client() as client:
        assert client.post("/api/v1/ingest", content=encode_batch(events)).json()["accepted"] == 3


@pytest.fixture(scope="module", params=["chdb", "clickhouse-server"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    data = tmp_path_factory.mktemp(f"sql-guard-{request.param}") / "data"
    if request.param == "chdb":
        s = ServerProcess(data, env=LIMITS_ENV).start()
        try:
            _seed(s)
            yield s
        finally:
            s.stop()
        return
    reason = docker_unavailable()
    if reason:
        pytest.skip(reason)
    from testcontainers.community.clickhouse import ClickHouseContainer

    with ClickHouseContainer(CLICKHOUSE_IMAGE) as ch:
        dsn = f"http://{ch.username}:{ch.password}@{ch.get_container_host_ip()}:{ch.get_exposed_port(8123)}"
        s = ServerProcess(data, extra_args=["--clickhouse-dsn", dsn], env=LIMITS_ENV).start()
        try:
            _seed(s)
            yield s
        finally:
            s.stop()


def post(server: ServerProcess, body: Any, **kw: Any) -> httpx.Response:
    with server.client() as client:
        if isinstance(body, bytes):
            return client.post("/api/v1/sql", content=body, headers={"content-type": "application/json"}, **kw)
        return client.post("/api/v1/sql", json=body, **kw)


def error_of(resp: httpx.Response) -> tuple[int, str, str]:
    err = resp.json()["error"]
    return resp.status_code, err["code"], err["message"]


# ------------------------------------------------------------------ refusals

REFUSED = [
    # not a SELECT, or more than one statement
    ("INSERT INTO metrics VALUES ('r', 'k', 1, now(), 1, 0)", "only SELECT"),
    ("INSERT INTO metric_points SELECT * FROM metrics", "only SELECT"),
    ("ALTER TABLE metric_points DELETE WHERE 1", "only SELECT"),
    ("CREATE TABLE x (a Int8) ENGINE = Memory", "only SELECT"),
    ("CREATE VIEW v AS SELECT * FROM events", "only SELECT"),
    ("DROP TABLE metric_points", "only SELECT"),
    ("ATTACH TABLE x", "only SELECT"),
    ("DETACH TABLE metric_points", "only SELECT"),
    ("RENAME TABLE metric_points TO x", "only SELECT"),
    ("TRUNCATE TABLE metric_points", "only SELECT"),
    ("KILL QUERY WHERE 1", "only SELECT"),
    ("OPTIMIZE TABLE metric_points FINAL", "only SELECT"),
    ("SYSTEM FLUSH LOGS", "only SELECT"),
    ("SET readonly = 0", "only SELECT"),
    ("USE system", "only SELECT"),
    ("GRANT ALL ON *.* TO default", "only SELECT"),
    ("SHOW TABLES", "only SELECT"),
    ("DESCRIBE TABLE events", "only SELECT"),
    ("EXPLAIN SELECT * FROM events", "only SELECT"),
    ("EXISTS TABLE events", "only SELECT"),
    ("SELECT 1; SELECT 2", "one statement"),
    ("SELECT 1; DROP TABLE metric_points", "one statement"),
    ("SELECT 1;;", "one statement"),
    # overrides and outputs
    ("SELECT 1 SETTINGS readonly = 0", "SETTINGS"),
    ("SELECT 1 SETTINGS max_result_rows = 0", "SETTINGS"),
    ("SELECT * FROM (SELECT 1 SETTINGS max_threads = 1)", "SETTINGS"),
    ("SELECT 1 FORMAT CSV", "FORMAT"),
    ("SELECT 1 FORMAT JSONEachRow", "FORMAT"),
    ("SELECT 1 INTO OUTFILE '/tmp/runledger-pwned'", "INTO OUTFILE"),
    ("SELECT 1 INTO OUTFILE '/tmp/x' AND STDOUT", "INTO OUTFILE"),
    ("SELECT {x:String}", "query parameters"),
    # raw tables and other databases
    *[(f"SELECT * FROM {t}", f"'{t}' is not reachable") for t in (
        "metric_points", "events", "dead_letter", "run_fields", "run_params", "run_tags", "latest_metrics_agg",
        "experiment_fields", "experiment_tags", "ingest_offsets", "schema_migrations", "experiment_tag_values",
        "registry_model_fields", "registry_version_fields")],
    ("SELECT * FROM runledger.events", "'runledger.events' is not reachable"),
    ("SELECT * FROM runledger_sql.events", "'runledger_sql.events' is not reachable"),
    ("SELECT * FROM default.metrics", "'default.metrics' is not reachable"),
    ("SELECT * FROM `runledger`.`dead_letter`", "'runledger.dead_letter' is not reachable"),
    ("SELECT * FROM system.tables", "system tables"),
    ("SELECT * FROM system.numbers LIMIT 1", "system tables"),
    ("SELECT * FROM system.processes", "system tables"),
    ("SELECT * FROM system.query_log", "system tables"),
    ("SELECT * FROM system.users", "system tables"),
    ("SELECT * FROM INFORMATION_SCHEMA.TABLES", "system tables"),
    ("SELECT * FROM information_schema.columns", "system tables"),
    ("SELECT * FROM metrics AS m JOIN events AS e ON e.entity = m.run_id", "'events' is not reachable"),
    ("SELECT * FROM metrics WHERE run_id IN (SELECT entity FROM events)", "'events' is not reachable"),
    ("SELECT * FROM metrics WHERE run_id IN events", "'events' is not reachable"),
    ("SELECT * FROM metrics WHERE run_id GLOBAL IN runledger.events", "'runledger.events' is not reachable"),
    ("SELECT (SELECT count() FROM system.tables)", "system tables"),
    ("SELECT EXISTS(SELECT 1 FROM events)", "'events' is not reachable"),
    ("SELECT run_id FROM metrics UNION ALL SELECT entity FROM events", "'events' is not reachable"),
    ("SELECT * FROM (WITH events AS (SELECT 1 AS x) SELECT * FROM events) AS a, events AS b",
     "'events' is not reachable"),
    ("WITH t AS (SELECT * FROM dead_letter) SELECT * FROM t", "'dead_letter' is not reachable"),
    # table functions, whatever they reach
    *[(f"SELECT * FROM {call}", f"table function {call.split('(')[0]}()") for call in (
        "file('/etc/passwd', 'LineAsString')", "url('http://127.0.0.1:9/x', 'CSV', 'a String')",
        "s3('http://127.0.0.1:9/b/k.csv')", "s3Cluster('default', 'http://127.0.0.1:9/b/k')",
        "remote('127.0.0.1:9000', system.one)", "remoteSecure('127.0.0.1:9440', system.one)",
        "cluster('default', system.one)", "clusterAllReplicas('default', system.one)",
        "mysql('127.0.0.1:3306', 'db', 't', 'u', 'p')", "postgresql('127.0.0.1:5432', 'db', 't', 'u', 'p')",
        "jdbc('jdbc:x', 't')", "odbc('DSN=x', 't')", "hdfs('hdfs://x/y', 'CSV')", "executable('x.sh', 'CSV', 'a Int8')",
        "input('a String')", "azureBlobStorage('x', 'c', 'b')", "gcs('http://x/y')", "iceberg('http://x/t')",
        "icebergS3('http://x/t')", "deltaLake('http://x/t')", "hudi('http://x/t')",
        "mongodb('x:27017', 'db', 'c', 'u', 'p', 'a String')", "redis('x:6379', 'k', 'k String')",
        "sqlite('/tmp/x.db', 't')", "numbers(10)", "zeros(10)", "generateRandom('a Int8')",
        "merge('runledger', '.*')", "dictionary('d')", "view(SELECT * FROM events)", "values('a Int8', 1)",
        "null('a Int8')", "format(CSV, 'a\n1')", "loop(metrics)", "fuzzJSON('{}')", "mergeTreeIndex('runledger', 'events')",
    )],
    # functions that read outside the query's rows
    ("SELECT file('/etc/passwd')", "function file()"),
    ("SELECT dictGet('d', 'a', 1)", "function dictGet()"),
    ("SELECT dictGetString('d', 'a', toUInt64(1))", "function dictGetString()"),
    ("SELECT joinGet('t', 'c', 1)", "function joinGet()"),
    ("SELECT getSetting('readonly')", "function getSetting()"),
    ("SELECT getServerSetting('max_threads')", "function getServerSetting()"),
    ("SELECT getMacro('shard')", "function getMacro()"),
    ("SELECT hostName()", "function hostName()"),
    ("SELECT FQDN()", "function FQDN()"),
    ("SELECT version()", "function version()"),
    ("SELECT uptime()", "function uptime()"),
    ("SELECT currentUser()", "function currentUser()"),
    ("SELECT filesystemAvailable()", "function filesystemAvailable()"),
    ("SELECT hasColumnInTable('runledger', 'events', 'body')", "function hasColumnInTable()"),
    ("SELECT sleep(1)", "function sleep()"),
    ("SELECT sleepEachRow(1) FROM metrics", "function sleepEachRow()"),
    ("SELECT aiGenerate('write a poem')", "function aiGenerate()"),
    ("SELECT catboostEvaluate('/tmp/m.bin', 1)", "function catboostEvaluate()"),
    ("SELECT chdb()", "function chdb()"),
    ("SELECT formatRow('CSV', 1)", "function formatRow()"),
    ("SELECT arrayMap(x -> file(x), ['/etc/passwd'])", "function file()"),
    ("SELECT row_number() OVER (ORDER BY hostName())", "function hostName()"),
    ("SELECT COLUMNS('run_id') APPLY(hostName) FROM metrics", "function hostName()"),
    ("SELECT count() FROM metrics WHERE key = file('/etc/hostname')", "function file()"),
    # the scanner's refusals
    ("SELECT 1\x00", "control character"),
    ("SELECT 'never closed", "unterminated"),
    ("SELECT 1 /* /* */ ; SELECT 2 */", "nested"),
]


@pytest.mark.parametrize("sql, reason", REFUSED, ids=[f"{i:03d}" for i in range(len(REFUSED))])
def test_refused_constructs_are_400_with_a_reason(server: ServerProcess, sql: str, reason: str) -> None:
    status, code, message = error_of(post(server, {"sql": sql}))
    assert (status, code) == (400, "SQL_REFUSED"), message
    assert reason in message, message


ALLOWED = [
    ("SELECT ';' AS s", [{"s": ";"}]),
    ("SELECT 1 AS one -- ; DROP TABLE metric_points", [{"one": 1}]),
    ("SELECT 1 /* ; DROP TABLE metric_points */ AS one", [{"one": 1}]),
    ("SELECT 'a''b' AS `semi;colon`", [{"semi;colon": "a'b"}]),
    ("WITH events AS (SELECT 7 AS x) SELECT x FROM events", [{"x": 7}]),
    ("SELECT count() AS n FROM runledger.metrics WHERE run_id = '" + RUN_ID + "'", [{"n": 10}]),
    ("SELECT x FROM ((SELECT 1 AS x) UNION ALL (SELECT 2 AS x)) ORDER BY x", [{"x": 1}, {"x": 2}]),
    ("SELECT sum(x) AS s FROM (SELECT arrayJoin(range(5)) AS x)", [{"s": 10}]),
    ("select rank, countIf(value > 1) AS n from metrics where run_id = '" + RUN_ID + "' group by rank;",
     [{"rank": 2, "n": 6}]),
]


@pytest.mark.parametrize("sql, rows", ALLOWED, ids=[f"{i:02d}" for i in range(len(ALLOWED))])
def test_harmless_lookalikes_run(server: ServerProcess, sql: str, rows: list[dict[str, Any]]) -> None:
    resp = post(server, {"sql": sql})
    assert resp.status_code == 200, resp.text
    assert resp.json()["data"] == rows


@pytest.mark.parametrize("sql, needle", [
    ("SELECT FROM WHERE", "Syntax error"),
    ("(SELECT 1) UNION ALL (SELECT 2) ORDER BY 1", "Syntax error"),
    ("SELECT no_such_column FROM runs", "no_such_column"),
    ("SELECT * FROM no_such_view", "'no_such_view' is not reachable"),
    ("SELECT toDate('not a date')", "Code:"),
    ("SELECT 1 + 'a'", "Code:"),
    ("SELECT no_such_function(1)", "no_such_function"),
])
def test_engine_and_guard_errors_are_400_never_500(server: ServerProcess, sql: str, needle: str) -> None:
    status, code, message = error_of(post(server, {"sql": sql}))
    assert status == 400 and code in ("SQL_ERROR", "SQL_REFUSED"), message
    assert needle in message


@pytest.mark.parametrize("body, code", [
    (b"not json", "INVALID_ARGUMENT"),
    (b"[]", "INVALID_ARGUMENT"),
    (b'{"sql": 1}', "INVALID_ARGUMENT"),
    (b'{"sql": "SELECT 1", "format": "xlsx"}', "INVALID_ARGUMENT"),
    (b'{"sql": "SELECT 1", "limit": 5}', "INVALID_ARGUMENT"),
    (b'{"sql": "' + b"x" * (2 << 20) + b'"}', "TOO_LARGE"),
])
def test_malformed_bodies(server: ServerProcess, body: bytes, code: str) -> None:
    status, got, _ = error_of(post(server, body))
    assert (status, got) == ((413 if code == "TOO_LARGE" else 400), code)


# -------------------------------------------------------------------- limits

def test_row_limit(server: ServerProcess) -> None:
    status, code, message = error_of(post(server, {"sql": "SELECT arrayJoin(range(6000)) AS x"}))
    assert (status, code) == (400, "SQL_LIMIT") and "sql_max_result_rows" in message
    assert post(server, {"sql": "SELECT arrayJoin(range(5000)) AS x", "format": "csv"}).text.count("\n") == 5001


def test_byte_limit(server: ServerProcess) -> None:
    status, code, message = error_of(post(server, {"sql": "SELECT repeat('x', 1000) AS s FROM "
                                                         "(SELECT arrayJoin(range(2000)))"}))
    assert (status, code) == (400, "SQL_LIMIT") and "sql_max_result_bytes" in message
    one_block = {"sql": "SELECT concat(repeat('x', 600000), repeat('y', 600000)) AS s",
                 "format": "csv"}  # one block: past the engine's check
    status, code, message = error_of(post(server, one_block))
    assert (status, code) == (400, "SQL_LIMIT") and "sql_max_result_bytes" in message


def test_a_query_failing_half_way_never_leaks_into_the_next_answer(server: ServerProcess) -> None:
    failing = {"sql": "SELECT x FROM (SELECT arrayJoin(range(100000)) AS x) WHERE throwIf(x = 4000) = 0 LIMIT 4500"}
    for _ in range(6):
        assert error_of(post(server, failing))[:2] == (400, "SQL_ERROR")
    for fmt, clean in (("csv", '"s"\n"clean"\n'), ("json", None)):
        for _ in range(6):
            resp = post(server, {"sql": "SELECT 'clean' AS s", "format": fmt})
            assert resp.status_code == 200
            if clean is not None:
                assert resp.text == clean
            else:
                assert resp.json()["data"] == [{"s": "clean"}]


def test_time_limit_and_the_session_survives(server: ServerProcess) -> None:
    slow = ("SELECT count() AS n FROM (SELECT arrayJoin(range(1000)) AS a) "
            "ARRAY JOIN range(1000) AS b ARRAY JOIN range(1000) AS c WHERE cityHash64(a, b, c) = 0")  # 1e9 rows
    status, code, message = error_of(post(server, {"sql": slow}, timeout=60))
    assert (status, code) == (400, "SQL_LIMIT") and "sql_max_execution_time_s" in message
    assert post(server, {"sql": "SELECT 1 AS ok"}).json()["data"] == [{"ok": 1}]


# ------------------------------------------------------------------- formats

FORMAT_SQL = f"SELECT step, value, rank, timestamp, key FROM metrics WHERE run_id = '{RUN_ID}' ORDER BY step"


def _same_points(steps: list[int], values: list[float]) -> None:
    assert steps == [s for s, _ in POINTS]
    for got, (_, want) in zip(values, POINTS):
        assert (math.isnan(got) and math.isnan(want)) or got == want


def test_every_format_parses_back_to_the_same_rows(server: ServerProcess) -> None:
    js = post(server, {"sql": FORMAT_SQL, "format": "json"})
    assert js.headers["content-type"].startswith("application/json")
    data = js.json()["data"]
    _same_points([r["step"] for r in data], [float("nan") if r["value"] is None else r["value"] for r in data])
    assert {r["rank"] for r in data} == {2} and {r["key"] for r in data} == {"loss"}

    text = post(server, {"sql": FORMAT_SQL, "format": "csv"})
    assert text.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(text.text)))
    _same_points([int(r["step"]) for r in rows], [float(r["value"]) for r in rows])

    arrow = post(server, {"sql": FORMAT_SQL, "format": "arrow"})
    assert arrow.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(arrow.content).read_all()
    _same_points(table["step"].to_pylist(), table["value"].to_pylist())
    assert str(table.schema.field("timestamp").type) == "timestamp[ms, tz=UTC]"

    parquet = post(server, {"sql": FORMAT_SQL, "format": "parquet"})
    assert parquet.headers["content-type"] == "application/vnd.apache.parquet"
    ptable = pq.read_table(io.BytesIO(parquet.content))
    _same_points(ptable["step"].to_pylist(), ptable["value"].to_pylist())
    assert ptable["key"].to_pylist() == ["loss"] * len(POINTS)


@pytest.mark.parametrize("fmt", ["json", "csv", "arrow", "parquet"])
def test_every_view_serialises_in_every_format(server: ServerProcess, fmt: str) -> None:
    from query.sql import PUBLIC_VIEWS

    for view in PUBLIC_VIEWS:
        resp = post(server, {"sql": f"SELECT * FROM {view} LIMIT 3", "format": fmt})
        assert resp.status_code == 200, (view, resp.text)
        assert int(resp.headers["content-length"]) == len(resp.content)


def test_empty_results_in_every_format(server: ServerProcess) -> None:
    sql = "SELECT run_id, value FROM metrics WHERE 0"
    assert post(server, {"sql": sql}).json()["rows"] == 0
    assert post(server, {"sql": sql, "format": "csv"}).text == '"run_id","value"\n'
    assert pa.ipc.open_stream(post(server, {"sql": sql, "format": "arrow"}).content).read_all().num_rows == 0
    assert pq.read_table(io.BytesIO(post(server, {"sql": sql, "format": "parquet"}).content)).num_rows == 0


def test_concurrent_queries_and_ingest(server: ServerProcess) -> None:
    failures: list[str] = []

    def query(i: int) -> None:
        for _ in range(5):
            resp = post(server, {"sql": f"SELECT count() + {i} AS n FROM metrics WHERE run_id = '{RUN_ID}'"})
            if resp.status_code != 200 or resp.json()["data"] != [{"n": 10 + i}]:
                failures.append(resp.text)

    threads = [threading.Thread(target=query, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    with server.client() as client:
        rid = new_id()
        ev = Event(id=new_id(), type="metrics_logged", entity=rid, ts_ms=1, body=MetricsLogged(
            keys=("x",) * 1000, steps=tuple(range(1000)), timestamps_ms=(1,) * 1000, values=(1.0,) * 1000))
        client.post("/api/v1/ingest", content=encode_batch([ev]))
    for t in threads:
        t.join(60)
    assert not failures


# ------------------------------------------------------------------- fuzzing

FRAGMENTS = ["SELECT", "FROM", "WHERE", "metrics", "runs", "events", "system.tables", "file(", "url(", "'", '"',
             "`", ";", "--", "/*", "*/", "(", ")", ",", "1", "count()", "SETTINGS", "FORMAT", "INTO OUTFILE",
             "UNION ALL", "WITH x AS", "JOIN", "IN", "$$", "# ", "\\", "{x:String}", "arrayJoin(range(10))", "NULL",
             "*", "=", "ORDER BY", "LIMIT 5", "GROUP BY", "\n", "é", "\x00", "x -> x", "OVER ()", "[1, 2]"]


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(sql=st.one_of(st.lists(st.sampled_from(FRAGMENTS), max_size=20).map(" ".join), st.text(max_size=60)))
def test_fuzzed_sql_never_gets_a_500(server: ServerProcess, sql: str) -> None:
    resp = post(server, {"sql": sql, "format": "json"})
    assert resp.status_code in (200, 400), (sql, resp.status_code, resp.text)
    if resp.status_code == 400:
        assert resp.json()["error"]["code"] in ("INVALID_ARGUMENT", "SQL_REFUSED", "SQL_ERROR", "SQL_LIMIT")


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.one_of(st.binary(max_size=80), st.dictionaries(st.sampled_from(["sql", "format", "x"]),
                                                               st.one_of(st.text(max_size=20), st.integers(),
                                                                         st.none())).map(lambda d: json.dumps(d).encode())))
def test_fuzzed_bodies_never_get_a_500(server: ServerProcess, body: bytes) -> None:
    resp = post(server, body)
    assert resp.status_code in (200, 400), (body, resp.status_code, resp.text)


# --------------------------------------------------------- the engine on its own

ENGINE_CHECK = r"""
import json, sys
from ingest.schema import apply_schema
from ingest.sink import ClickHouseStore
from query.sql.allowlist import AGGREGATES, FUNCTIONS
from query.sql.engine import Limits, SqlEngine, _map_error
from query.sql.service import install_sandbox

path = sys.argv[1]
store = ClickHouseStore(f"chdb://{path}", "runledger")
apply_schema(store)
engine = SqlEngine(f"chdb://{path}", install_sandbox(store, "runledger"), Limits(2.0, 1000, 1_000_000),
                   max_sessions=1)
cases = json.loads(sys.argv[2])
out = {}
for name, sql in cases.items():
    try:
        with engine.session() as session:
            if sql.startswith("SELECT"):
                b"".join(session.stream(sql, "TabSeparated"))
            else:  # statements that return no rows go through the client's command path
                try:
                    session._client.command(sql)
                except Exception as exc:
                    raise _map_error(exc) from exc
        out[name] = "ran"
    except Exception as exc:
        out[name] = f"{type(exc).__name__}: {exc}"
    with engine.session() as session:  # the next request on the (only) slot gets a clean answer
        out[name + "/next"] = b"".join(session.stream("SELECT 'clean' AS s", "CSVWithNames")).decode()
known = {r[0] for r in store.query_rows("SELECT name FROM system.functions")}
out["not_in_engine"] = sorted((FUNCTIONS | AGGREGATES) - known)
engine.close()
store.close()
print(json.dumps(out))
"""

ENGINE_CASES = {
    "insert": "INSERT INTO runledger.metric_points (run_id) VALUES ('x')",
    "create": "CREATE TABLE runledger.pwned (a Int8) ENGINE = Memory",
    "drop": "DROP TABLE runledger.metric_points",
    "alter": "ALTER TABLE runledger.events DELETE WHERE 1",
    "set": "SET max_result_rows = 0",
    "settings_clause": "SELECT 1 SETTINGS max_result_rows = 0",
    "file_table_function": "SELECT * FROM file('/etc/passwd', 'LineAsString')",
    "url_table_function": "SELECT * FROM url('http://127.0.0.1:9/x', 'CSV', 'a String')",
    "bare_raw_table": "SELECT * FROM metric_points",
    "bare_events": "SELECT * FROM events",
    "too_many_rows": "SELECT x FROM (SELECT arrayJoin(range(2000)) AS x)",
    "fails_half_way": "SELECT x FROM (SELECT arrayJoin(range(100000)) AS x) WHERE throwIf(x = 70000) = 0",
    "a_view": "SELECT * FROM metrics",
}


def test_engine_session_refuses_on_its_own(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", ENGINE_CHECK, str(tmp_path / "ch"), json.dumps(ENGINE_CASES)],
                          capture_output=True, text=True, cwd=REPO, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.splitlines()[-1])
    for name in ("insert", "create", "drop", "alter", "set", "settings_clause", "file_table_function",
                 "url_table_function"):
        assert out[name].startswith("SqlRefused") and "readonly" in out[name], (name, out[name])
    for name in ("bare_raw_table", "bare_events"):
        assert out[name].startswith("SqlEngineError") and "UNKNOWN_TABLE" in out[name], (name, out[name])
    assert out["too_many_rows"].startswith("SqlLimitExceeded"), out["too_many_rows"]
    assert out["a_view"] == "ran"
    assert {v for k, v in out.items() if k.endswith("/next")} == {'"s"\n"clean"\n'}
    assert out["not_in_engine"] == [], "allowlisted names this engine does not know (typos?)"
