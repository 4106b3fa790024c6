"""deploy/: the compose topology is what docs/DEPLOY.md promises (no Docker engine here, so read it as data)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import yaml

from query.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def env_file() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (DEPLOY / "runledger.env").read_text().splitlines()
             if line.strip() and not line.startswith("#"))
    return {k.strip(): v.strip() for k, v in pairs}


def test_every_service_the_issue_names_is_there_with_a_health_check_or_a_completion() -> None:
    services = compose()["services"]
    assert {"kafka", "clickhouse", "minio", "ingest-1", "ingest-2", "query"} <= set(services)
    for name in ("kafka", "clickhouse", "minio", "ingest-1", "ingest-2", "query"):
        assert "test" in services[name]["healthcheck"], name


def test_kafka_runs_in_kraft_mode_without_zookeeper() -> None:
    services = compose()["services"]
    env = services["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert "KAFKA_CONTROLLER_QUORUM_VOTERS" in env
    assert not any("zookeeper" in name for name in services)


def test_workers_and_query_service_start_in_order_and_keep_data_in_volumes() -> None:
    doc = compose()
    s = doc["services"]
    assert s["ingest-1"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert s["ingest-1"]["depends_on"]["clickhouse"]["condition"] == "service_healthy"
    assert s["query"]["depends_on"]["ingest-1"]["condition"] == "service_healthy"
    assert s["ingest-1"]["command"][0] == "ingest" and s["ingest-2"]["command"][0] == "ingest"
    assert s["query"]["command"][0] == "serve"
    for name in ("kafka", "clickhouse", "minio", "ingest-1", "ingest-2", "query"):
        for mount in s[name]["volumes"]:
            assert mount.split(":")[0] in doc["volumes"], (name, mount)


def test_the_env_file_sets_only_settings_runledger_reads() -> None:
    known = {f"RUNLEDGER_{f.name.upper()}" for f in dataclasses.fields(Settings)}
    env = env_file()
    assert env, "deploy/runledger.env is empty"
    assert set(env) <= known, sorted(set(env) - known)
    assert env["RUNLEDGER_CLICKHOUSE_DSN"].startswith("http://")
    assert env["RUNLEDGER_ARTIFACTS_URI"].startswith("s3://")
    # the env file is read by Settings exactly as the containers will
    settings = Settings.from_env(env)
    assert settings.kafka_bootstrap == "kafka:9092"
