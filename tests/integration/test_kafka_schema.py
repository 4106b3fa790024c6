"""Topics and schema management: what a worker (or ``serve --kafka``) does to Kafka and ClickHouse at start.

* The topic is created with the configured partitions when missing; an
  existing topic is left as it is (its partition count is what it has).
* The DDL is applied on every start, idempotently, into the configured
  database, and ``schema_migrations`` records each version once — on chDB
  (in a child process: a chDB folder admits one process) and, where Docker
  runs, on a ClickHouse server reached by an HTTP DSN with user and password.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from kafka_broker import TansuBroker, docker_skip_reason
from servers import REPO

from ingest.kafka_admin import end_offsets, ensure_topic

pytestmark = pytest.mark.integration

DATABASE = "exp_tracking"

#: Applies the schema twice and reports what the database holds (run as a script: chDB wants its own process).
APPLY_TWICE = """
import json, sys
import query.services  # noqa: F401 - areas register their projections on import, as at start
from ingest.schema import MIGRATIONS, apply_schema
from ingest.sink import ClickHouseStore

store = ClickHouseStore(sys.argv[1], sys.argv[2])
versions = [apply_schema(store), apply_schema(store)]
migrations = store.query_rows("SELECT version, count() FROM schema_migrations GROUP BY version ORDER BY version")
tables = store.query_rows("SELECT name FROM system.tables WHERE database = {d:String}", {"d": sys.argv[2]})
print(json.dumps({"versions": versions, "known": sorted(MIGRATIONS), "migrations": migrations,
                  "tables": sorted(t[0] for t in tables)}))
"""


def test_a_missing_topic_is_created_with_the_configured_partitions_and_an_existing_one_left_alone(
        tmp_path: Path) -> None:
    broker = TansuBroker(tmp_path / "tansu.log").start()
    try:
        assert asyncio.run(ensure_topic(broker.bootstrap, "made-here", 3)) == 3
        assert sorted(asyncio.run(end_offsets(broker.bootstrap, "made-here"))) == [0, 1, 2]
        assert asyncio.run(ensure_topic(broker.bootstrap, "made-here", 6)) == 3  # never altered
    finally:
        broker.stop()


@pytest.fixture(params=["chdb", pytest.param("clickhouse-server", marks=pytest.mark.docker)])
def dsn(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "chdb":
        yield f"chdb://{tmp_path / 'clickhouse'}"
        return
    reason = docker_skip_reason()
    if reason:
        pytest.skip(reason)
    from testcontainers.community.clickhouse import ClickHouseContainer

    with ClickHouseContainer("clickhouse/clickhouse-server:24.8", username="runledger", password="s3cret") as ch:
        yield f"http://runledger:s3cret@{ch.get_container_host_ip()}:{ch.get_exposed_port(8123)}"


@pytest.mark.timeout(180)
def test_the_schema_applies_twice_into_its_database_and_records_each_version_once(dsn: str) -> None:
    out = subprocess.run([sys.executable, "-c", APPLY_TWICE, dsn, DATABASE], capture_output=True, text=True,
                         timeout=120, cwd=REPO, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(got["known"]) >= 2  # the core schema, and the registry's projections registered on import
    assert got["versions"] == [max(got["known"])] * 2
    assert got["migrations"] == [[v, 1] for v in got["known"]]  # each applied once, although applied twice
    assert {"events", "metric_points", "latest_metrics_agg", "run_fields", "run_params", "dead_letter",
            "ingest_offsets", "schema_migrations", "metrics", "runs"} <= set(got["tables"])
