"""ClickHouse DDL: the event log, the metric points, the projections, the dead letters.

Every projection is a *mergeable* table (ReplacingMergeTree keyed by its
natural key, or AggregatingMergeTree), so inserting the same event twice —
after a crash, a redelivery, a client retry — changes nothing a query sees.
Reads use ``FINAL`` (or the views in :data:`VIEWS`) to see merged state.

Versions: ``version`` columns hold the first 64 bits of the event's UUIDv7 id
(48-bit ms timestamp + 12-bit per-process counter), so "later event wins" is
decided by the event, never by insertion order.

``apply_schema`` is idempotent and records what it applied in
``schema_migrations``; a later change appends a migration to ``MIGRATIONS``.
"""

from __future__ import annotations

from typing import Protocol

from producer.registry_events import REGISTRY_EVENT_TYPES

from . import mlflow_projection, registry_projection

__all__ = ["MIGRATIONS", "PROJECTION_TABLES", "VIEWS", "apply_schema", "SCHEMA_VERSION", "latest_metrics_mv",
           "metric_rollup_mv", "MATERIALIZED_VIEWS", "ROLLUP_STEPS"]


class _Commander(Protocol):
    def command(self, sql: str) -> object: ...
    def query_rows(self, sql: str, parameters: dict[str, object] | None = None) -> list[tuple[object, ...]]: ...


_UTC = "DateTime64(3, 'UTC')"


def latest_metrics_mv(suffix: str) -> str:
    """The materialized view that keeps ``latest_metrics_agg<suffix>`` from ``metric_points<suffix>``
    (``rebuild`` builds a shadow pair with suffix ``__rebuild``)."""
    return f"""CREATE MATERIALIZED VIEW IF NOT EXISTS latest_metrics_mv{suffix} TO latest_metrics_agg{suffix} AS
    SELECT run_id, key,
        argMaxState(value, (step, timestamp)) AS last,
        max(step) AS last_step,
        max(timestamp) AS last_timestamp,
        min(value) AS min_value,
        max(value) AS max_value,
        uniqExactState(step) AS steps
    FROM metric_points{suffix} GROUP BY run_id, key"""

#: Steps per bucket of ``metric_rollup`` (a power of two; long series are downsampled from it).
ROLLUP_STEPS = 1024


def metric_rollup_mv(suffix: str) -> str:
    """The materialized view that keeps ``metric_rollup<suffix>``: per (run, key, ``step // ROLLUP_STEPS``)
    the lowest and the highest point (step, timestamp ms, value, rank) and how many rows were written.
    Every inserted row counts, superseded re-logged ones too: reads use the rollup only for series whose
    steps were never re-logged (the read model knows), and otherwise downsample ``metric_points FINAL``."""
    return f"""CREATE MATERIALIZED VIEW IF NOT EXISTS metric_rollup_mv{suffix} TO metric_rollup{suffix} AS
    SELECT run_id, key, intDiv(step, {ROLLUP_STEPS}) AS bucket,
        argMinState((step, toUnixTimestamp64Milli(timestamp), value, rank), value) AS lo,
        argMaxState((step, toUnixTimestamp64Milli(timestamp), value, rank), value) AS hi,
        count() AS n
    FROM metric_points{suffix} GROUP BY run_id, key, bucket"""


#: The materialized views of projection tables, by name, as functions of the table suffix (``rebuild``
#: creates each over its shadow tables).
MATERIALIZED_VIEWS = {"latest_metrics_mv": latest_metrics_mv, "metric_rollup_mv": metric_rollup_mv}

_POINT = "Tuple(Int64, Int64, Float64, Int32)"

#: Migration 4: the rollup long series are downsampled from, filled from the points already there.
_V4 = [
    f"""CREATE TABLE IF NOT EXISTS metric_rollup (
        run_id String,
        key LowCardinality(String),
        bucket Int64,
        lo AggregateFunction(argMin, {_POINT}, Float64),
        hi AggregateFunction(argMax, {_POINT}, Float64),
        n SimpleAggregateFunction(sum, UInt64)
    ) ENGINE = AggregatingMergeTree
    ORDER BY (run_id, key, bucket)""",
    metric_rollup_mv(""),
    f"""INSERT INTO metric_rollup SELECT run_id, key, intDiv(step, {ROLLUP_STEPS}) AS bucket,
        argMinState((step, toUnixTimestamp64Milli(timestamp), value, rank), value),
        argMaxState((step, toUnixTimestamp64Milli(timestamp), value, rank), value),
        count()
    FROM metric_points GROUP BY run_id, key, bucket""",
]

_REGISTRY_TYPES_SQL = ", ".join(f"'{t}'" for t in sorted(REGISTRY_EVENT_TYPES))

_V1 = [
    # The log. Accepted events only; rejected ones go to dead_letter.
    f"""CREATE TABLE IF NOT EXISTS events (
        event_id String,
        schema_version UInt16,
        type LowCardinality(String),
        entity String,
        source_host LowCardinality(String),
        source_pid UInt32,
        source_rank Int32,
        seq UInt64,
        ts {_UTC},
        actor LowCardinality(String),
        ingested_at {_UTC} DEFAULT now64(3),
        body String CODEC(ZSTD(3))
    ) ENGINE = ReplacingMergeTree
    ORDER BY (entity, event_id)""",
    # Metric points: identity (run_id, key, step); the newest client timestamp wins,
    # ties go to the row inserted last (the writer inserts in log order).
    f"""CREATE TABLE IF NOT EXISTS metric_points (
        run_id String,
        key LowCardinality(String),
        step Int64,
        timestamp {_UTC},
        value Float64,
        rank Int32
    ) ENGINE = ReplacingMergeTree(timestamp)
    ORDER BY (run_id, key, step)""",
    # Latest value / min / max / count per (run, key), maintained by ClickHouse itself.
    f"""CREATE TABLE IF NOT EXISTS latest_metrics_agg (
        run_id String,
        key LowCardinality(String),
        last AggregateFunction(argMax, Float64, Tuple(Int64, {_UTC})),
        last_step SimpleAggregateFunction(max, Int64),
        last_timestamp SimpleAggregateFunction(max, {_UTC}),
        min_value SimpleAggregateFunction(min, Float64),
        max_value SimpleAggregateFunction(max, Float64),
        steps AggregateFunction(uniqExact, Int64)
    ) ENGINE = AggregatingMergeTree
    ORDER BY (run_id, key)""",
    latest_metrics_mv(""),
    # Run and experiment attributes as (entity, field) -> value, newest event wins.
    """CREATE TABLE IF NOT EXISTS run_fields (
        run_id String, field LowCardinality(String), value String, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (run_id, field)""",
    """CREATE TABLE IF NOT EXISTS run_params (
        run_id String, key String, value String, version UInt64
    ) ENGINE = ReplacingMergeTree ORDER BY (run_id, key)""",
    """CREATE TABLE IF NOT EXISTS run_tags (
        run_id String, key String, value String, deleted UInt8, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (run_id, key)""",
    """CREATE TABLE IF NOT EXISTS experiment_fields (
        experiment_id String, field LowCardinality(String), value String, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (experiment_id, field)""",
    """CREATE TABLE IF NOT EXISTS experiment_tags (
        experiment_id String, key String, value String, deleted UInt8, version UInt64
    ) ENGINE = ReplacingMergeTree(version) ORDER BY (experiment_id, key)""",
    f"""CREATE TABLE IF NOT EXISTS dead_letter (
        received_at {_UTC} DEFAULT now64(3),
        origin LowCardinality(String),
        event_id String,
        reason String,
        raw String CODEC(ZSTD(3))
    ) ENGINE = MergeTree ORDER BY received_at""",
    # Kafka mode: next offset to read per (group, topic, partition), written in the
    # same step as the data so a restarted worker can verify what it already wrote.
    f"""CREATE TABLE IF NOT EXISTS ingest_offsets (
        consumer_group String, topic String, partition Int32, next_offset Int64, updated_at {_UTC} DEFAULT now64(3)
    ) ENGINE = ReplacingMergeTree(next_offset) ORDER BY (consumer_group, topic, partition)""",
]

# Stable, documented read surface (docs/SQL.md). Storage can change under them.
VIEWS = {
    "metrics": """CREATE OR REPLACE VIEW metrics AS
        SELECT run_id, key, step, timestamp, value, rank FROM metric_points FINAL""",
    "latest_metrics": """CREATE OR REPLACE VIEW latest_metrics AS
        SELECT run_id, key,
            argMaxMerge(last) AS value, max(last_step) AS step, max(last_timestamp) AS timestamp,
            min(min_value) AS min_value, max(max_value) AS max_value, uniqExactMerge(steps) AS count
        FROM latest_metrics_agg GROUP BY run_id, key""",
    "runs": """CREATE OR REPLACE VIEW runs AS
        SELECT r.*, e.experiment_name FROM (SELECT run_id,
            anyIf(value, field = 'experiment_id') AS experiment_id,
            anyIf(value, field = 'name') AS name,
            anyIf(value, field = 'status') AS status,
            toInt64OrNull(anyIf(value, field = 'start_time')) AS start_time,
            toInt64OrNull(anyIf(value, field = 'end_time')) AS end_time,
            anyIf(value, field = 'user') AS user,
            anyIf(value, field = 'parent_run_id') AS parent_run_id,
            if(anyIf(value, field = 'lifecycle') = '', 'active', anyIf(value, field = 'lifecycle')) AS lifecycle_stage,
            anyIf(value, field = 'artifact_uri') AS artifact_uri
        FROM run_fields FINAL GROUP BY run_id
        HAVING experiment_id != '') AS r
        LEFT JOIN (SELECT experiment_id, anyIf(value, field = 'name') AS experiment_name
                   FROM experiment_fields FINAL GROUP BY experiment_id) AS e USING experiment_id""",
    "params": """CREATE OR REPLACE VIEW params AS
        SELECT run_id, key, value FROM run_params FINAL""",
    "tags": """CREATE OR REPLACE VIEW tags AS
        SELECT run_id, key, value FROM run_tags FINAL WHERE deleted = 0""",
    "experiments": """CREATE OR REPLACE VIEW experiments AS
        SELECT experiment_id,
            anyIf(value, field = 'name') AS name,
            anyIf(value, field = 'artifact_location') AS artifact_location,
            if(anyIf(value, field = 'lifecycle') = '', 'active', anyIf(value, field = 'lifecycle')) AS lifecycle_stage,
            toInt64OrNull(anyIf(value, field = 'creation_time')) AS creation_time,
            toInt64OrNull(anyIf(value, field = 'last_update_time')) AS last_update_time
        FROM experiment_fields FINAL GROUP BY experiment_id
        HAVING name != ''""",
    "experiment_tag_values": """CREATE OR REPLACE VIEW experiment_tag_values AS
        SELECT experiment_id, key, value FROM experiment_tags FINAL WHERE deleted = 0""",
    # The registry, computed from its events in the log (argMax by event id per model and version).
    "registry_events": f"""CREATE OR REPLACE VIEW registry_events AS
        SELECT event_id, ts, actor, type, entity AS model_id,
            ifNull(anyLast(named) OVER (PARTITION BY entity ORDER BY event_id
                ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW), '') AS model_name,
            JSONExtract(body, 'version', 'Nullable(UInt32)') AS version,
            JSONExtract(body, 'from_stage', 'Nullable(String)') AS from_stage,
            JSONExtract(body, 'to_stage', 'Nullable(String)') AS to_stage,
            JSONExtract(body, 'alias', 'Nullable(String)') AS alias,
            JSONExtract(body, 'run_id', 'Nullable(String)') AS run_id,
            body
        FROM (
            SELECT event_id, ts, actor, type, entity, body,
                multiIf(type = 'registered_model_created', JSONExtract(body, 'name', 'Nullable(String)'),
                        type = 'registered_model_renamed', JSONExtract(body, 'new_name', 'Nullable(String)'),
                        NULL) AS named
            FROM events FINAL WHERE type IN ({_REGISTRY_TYPES_SQL})
        )""",
    "model_versions": """CREATE OR REPLACE VIEW model_versions AS
        SELECT m.name AS name, v.version AS version,
            if(v.stage = '', 'None', v.stage) AS current_stage,
            v.source AS source, v.run_id AS run_id, v.description AS description,
            'READY' AS status, v.creation_time AS creation_time, v.last_updated_time AS last_updated_time,
            if(v.deleted OR m.deleted, CAST([] AS Array(String)), arraySort(a.aliases)) AS aliases,
            toUInt8(v.deleted OR m.deleted) AS deleted
        FROM (
            SELECT entity AS model_id, toUInt32(JSONExtractUInt(body, 'version')) AS version,
                argMinIf(JSONExtractString(body, 'source'), event_id, type = 'model_version_created') AS source,
                argMinIf(JSONExtract(body, 'run_id', 'Nullable(String)'), event_id, type = 'model_version_created') AS run_id,
                argMaxIf(JSONExtractString(body, 'description'), event_id,
                         type IN ('model_version_created', 'model_version_description_updated')) AS description,
                argMaxIf(JSONExtractString(body, 'to_stage'), event_id, type = 'model_version_stage_transitioned') AS stage,
                minIf(ts, type = 'model_version_created') AS creation_time,
                maxIf(ts, type NOT IN ('model_version_tag_set', 'model_version_tag_deleted')) AS last_updated_time,
                toUInt8(countIf(type = 'model_version_deleted') > 0) AS deleted
            FROM events
            WHERE type IN ('model_version_created', 'model_version_description_updated', 'model_version_tag_set',
                           'model_version_tag_deleted', 'model_version_stage_transitioned', 'model_version_deleted')
            GROUP BY model_id, version
            HAVING countIf(type = 'model_version_created') > 0
        ) AS v
        LEFT JOIN (
            SELECT entity AS model_id,
                argMaxIf(JSONExtractString(body, if(type = 'registered_model_created', 'name', 'new_name')), event_id,
                         type IN ('registered_model_created', 'registered_model_renamed')) AS name,
                toUInt8(countIf(type = 'registered_model_deleted') > 0) AS deleted
            FROM events
            WHERE type IN ('registered_model_created', 'registered_model_renamed', 'registered_model_deleted')
            GROUP BY model_id
        ) AS m ON m.model_id = v.model_id
        LEFT JOIN (
            SELECT model_id, target AS version, groupArray(alias) AS aliases
            FROM (
                SELECT entity AS model_id, JSONExtractString(body, 'alias') AS alias,
                    argMax(if(type = 'registered_model_alias_set', toUInt32(JSONExtractUInt(body, 'version')), 0),
                           event_id) AS target
                FROM events
                WHERE type IN ('registered_model_alias_set', 'registered_model_alias_deleted')
                GROUP BY model_id, alias
            )
            WHERE target > 0
            GROUP BY model_id, target
        ) AS a ON a.model_id = v.model_id AND a.version = v.version""",
}

#: Projection tables that ``rebuild`` recomputes from ``events`` (into shadows, swapped in at once).
PROJECTION_TABLES = (
    "metric_points",
    "latest_metrics_agg",
    "metric_rollup",
    "run_fields",
    "run_params",
    "run_tags",
    "experiment_fields",
    "experiment_tags",
    *registry_projection.REGISTRY_TABLES,
    *mlflow_projection.MLFLOW_TABLES,
)

#: Migration 3: MLflow's run inputs and model metrics tables; why an event was refused, as a kind.
_V3 = [
    *mlflow_projection.DDL,
    "ALTER TABLE dead_letter ADD COLUMN IF NOT EXISTS kind LowCardinality(String) DEFAULT '' AFTER origin",
]

#: version -> statements. Append, never edit an applied one.
MIGRATIONS: dict[int, list[str]] = {1: _V1, 2: registry_projection.DDL, 3: _V3, 4: _V4}
SCHEMA_VERSION = max(MIGRATIONS)


def apply_schema(client: _Commander, extra_views: dict[str, str] | None = None) -> int:
    """Create or migrate every table and view; safe to call on every start. Returns the schema version."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, applied_at DateTime DEFAULT now()) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    applied = {int(str(r[0])) for r in client.query_rows("SELECT version FROM schema_migrations FINAL")}
    for version in sorted(MIGRATIONS):
        if version in applied:
            continue
        for stmt in MIGRATIONS[version]:
            client.command(stmt)
        client.command(f"INSERT INTO schema_migrations (version) VALUES ({version})")
    for stmt in {**VIEWS, **(extra_views or {})}.values():
        client.command(stmt)
    return SCHEMA_VERSION
