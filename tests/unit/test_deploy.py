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


RUNLEDGER_SERVICES = ("ingest-1", "ingest-2", "query")


def test_every_runledger_command_in_compose_is_accepted_by_the_real_cli() -> None:
    from query.cli import build_parser

    services = compose()["services"]
    parser = build_parser()
    for name in RUNLEDGER_SERVICES:
        args = parser.parse_args(services[name]["command"])
        assert args.func is not None, name
    ingest = parser.parse_args(services["ingest-1"]["command"])
    assert ingest.metrics_host == "0.0.0.0", "the worker's /metrics must be reachable from other containers"
    for name in ("ingest-1", "ingest-2"):
        port = str(parser.parse_args(services[name]["command"]).metrics_port)
        assert f"127.0.0.1:{port}/health" in " ".join(services[name]["healthcheck"]["test"]), name
    query = parser.parse_args(services["query"]["command"])
    assert query.host == "0.0.0.0" and not query.ingest, "workers ingest; the query service only reads and produces"
    assert f"127.0.0.1:{query.port}/api/v1/health" in " ".join(services["query"]["healthcheck"]["test"])


def test_the_second_worker_and_the_artifact_bucket_wait_for_what_they_need() -> None:
    s = compose()["services"]
    assert s["ingest-2"]["depends_on"]["ingest-1"]["condition"] == "service_healthy"
    assert s["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert s["query"]["depends_on"]["minio-init"]["condition"] == "service_completed_successfully"
    assert s["query"]["depends_on"]["ingest-2"]["condition"] == "service_healthy"
    # runledger creates its topic with the configured partitions: the broker must not make one with its default
    assert str(s["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"]).lower() == "false"
    published = [p.split(":")[0] for name in s for p in s[name].get("ports", [])]
    assert len(published) == len(set(published)), "two services publish the same host port"


def test_the_env_file_matches_the_broker_and_bucket_the_compose_file_starts() -> None:
    s = compose()["services"]
    env = env_file()
    assert env["RUNLEDGER_KAFKA_BOOTSTRAP"] == "kafka:9092"
    assert "INTERNAL://kafka:9092" in s["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    ch = s["clickhouse"]["environment"]
    user, password = ch["CLICKHOUSE_USER"], ch["CLICKHOUSE_PASSWORD"]
    assert env["RUNLEDGER_CLICKHOUSE_DSN"] == f"http://{user}:{password}@clickhouse:8123"
    bucket = env["RUNLEDGER_ARTIFACTS_URI"].removeprefix("s3://").split("/")[0]
    assert f"local/{bucket}" in " ".join(s["minio-init"]["command"])
    assert env["RUNLEDGER_S3_ACCESS_KEY"] == s["minio"]["environment"]["MINIO_ROOT_USER"]
    assert env["RUNLEDGER_S3_SECRET_KEY"] == s["minio"]["environment"]["MINIO_ROOT_PASSWORD"]


def test_the_dockerfile_copies_what_exists_and_installs_extras_that_exist() -> None:
    import tomllib

    repo = DEPLOY.parent
    lines = [line.split() for line in (DEPLOY / "Dockerfile").read_text().splitlines()]
    copies = [parts[1:-1] for parts in lines if parts and parts[0] == "COPY"]
    assert copies
    for sources in copies:
        for src in sources:
            assert (repo / src).exists(), src
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    installs = [part for parts in lines for part in parts if part.startswith("'.[")]
    [extras] = [i.strip("'.[]").split(",") for i in installs]
    assert set(extras) <= set(project["optional-dependencies"])
    assert "runledger" in project["scripts"]
    packages = {p.rstrip("*") for p in tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]
                ["packages"]["find"]["include"]}
    assert packages <= {src for sources in copies for src in sources}
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    assert "*" in ignore, "the build context leaves .venv, .git and data folders out"
    assert {f"!{src}" for sources in copies for src in sources} <= set(ignore), "but keeps what the COPYs need"


def test_the_query_service_runs_with_auth_and_no_default_admin_password() -> None:
    query = compose()["services"]["query"]
    assert "--auth" in query["command"] and Settings.from_env(env_file()).auth is True
    password = query["environment"]["RUNLEDGER_ADMIN_PASSWORD"]
    assert password.startswith("${RUNLEDGER_ADMIN_PASSWORD:?"), "the first admin's password must come from the shell"
    assert "RUNLEDGER_ADMIN_PASSWORD" not in env_file()
