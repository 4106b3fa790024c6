"""The registry service on real engines opened in-process: chDB (and Tansu Kafka), no HTTP server.

chDB admits one data folder per process, and the whole suite shares one
pytest process, so each scenario here runs in a spawned child process
(:func:`in_child`) that opens its own folder; the assertions run in the child
and a failure comes back with its traceback.

* property (hypothesis): random command sequences fold to the same state
  live, rebuilt from the stored log by a fresh service, and as of the last
  event's time; the ClickHouse projections hold the same state, and
  ``rebuild`` recomputes them identically;
* ``runledger rebuild`` (the CLI) recomputes truncated registry projections;
* Kafka mode: two services ("API processes", separate in-memory states)
  append through two KafkaLogs to Tansu, one ingest worker writes chDB:
  the ingest-side position check refuses the loser of a race and KafkaLog
  reports it; 50 concurrent "create version" give exactly 1..50.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inproc import in_child
from kafka_broker import TansuBroker

import registry as r
from producer.errors import ConflictError, RunledgerError

pytestmark = pytest.mark.integration


# ----------------------------------------------------------------- helpers


def open_embedded(dsn: str, database: str) -> tuple[Any, Any, Any]:
    """A store (schema applied), its embedded log and the registry reader, as the server builds them."""
    from ingest.schema import apply_schema
    from ingest.sink import ClickHouseStore
    from ingest.writer import Writer
    from query.log import EmbeddedLog
    from query.registry_log import ClickHouseRegistryLog

    store = ClickHouseStore(dsn, database)
    apply_schema(store)
    return store, EmbeddedLog(Writer(store)), ClickHouseRegistryLog(store)


def projections(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "models": store.query_rows("SELECT model_id, field, value, deleted FROM registry_model_fields FINAL "
                                   "ORDER BY model_id, field"),
        "versions": store.query_rows("SELECT model_id, version_number, field, value, deleted FROM "
                                     "registry_version_fields FINAL ORDER BY model_id, version_number, field"),
    }


def projected_state(rows: dict[str, list[tuple[Any, ...]]]) -> dict[str, Any]:
    """What the tables say, per model: fields, live tags / aliases, live versions with their fields."""
    out: dict[str, Any] = {}
    for mid, field, value, deleted in rows["models"]:
        if not deleted:
            out.setdefault(mid, {"versions": {}})[field] = value
    for mid, number, field, value, deleted in rows["versions"]:
        if not deleted:
            out[mid]["versions"].setdefault(number, {})[field] = value
    for m in out.values():
        m["versions"] = {n: v for n, v in m["versions"].items() if "deleted_ms" not in v}
    return out


def expected_rows(state: r.RegistryState) -> dict[str, Any]:
    """The same shape, from the fold."""
    out: dict[str, Any] = {}
    for m in state.models.values():
        fields: dict[str, Any] = {
            "name": m.name, "description": m.description, "created_ms": str(m.created_ms),
            "created_by": m.created_by, "updated_ms": str(m.updated_ms), "last_version": str(m.last_version),
            **{f"tag.{k}": v for k, v in m.tags.items()}, **{f"alias.{a}": str(n) for a, n in m.aliases.items()},
        }
        if m.deleted_ms is not None:
            fields["deleted_ms"] = str(m.deleted_ms)
        fields["versions"] = {n: {
            "source": v.source, "run_id": v.run_id or "", "run_link": v.run_link,
            "logged_model_id": v.model_id or "", "description": v.description, "stage": v.stage,
            "created_ms": str(v.created_ms), "created_by": v.created_by, "updated_ms": str(v.updated_ms),
            **{f"tag.{k}": x for k, x in v.tags.items()},
        } for n, v in m.versions.items()}
        out[m.id] = fields
    return out


# ------------------------------------------------------- property (chDB)

NAMES = st.sampled_from(["iris", "wine", "iris-2"])
VERSIONS = st.integers(min_value=1, max_value=4)
COMMANDS = st.one_of(
    st.builds(r.CreateModel, name=NAMES, description=st.sampled_from(["", "d"]),
              tags=st.sampled_from([(), (("team", "cv"),)])),
    st.builds(r.RenameModel, name=NAMES, new_name=NAMES),
    st.builds(r.UpdateModelDescription, name=NAMES, description=st.sampled_from(["x", "y\nz"])),
    st.builds(r.SetModelTag, name=NAMES, key=st.sampled_from(["owner", "tier"]), value=st.sampled_from(["a", "b"])),
    st.builds(r.DeleteModelTag, name=NAMES, key=st.sampled_from(["owner", "team"])),
    st.builds(r.DeleteModel, name=NAMES),
    st.builds(r.CreateVersion, name=NAMES, source=st.sampled_from(["s3://m/1", "runs:/r1/model"]),
              run_id=st.none() | st.just("r1"), tags=st.sampled_from([(), (("acc", "0.9"),)])),
    st.builds(r.UpdateVersionDescription, name=NAMES, version=VERSIONS, description=st.just("better")),
    st.builds(r.SetVersionTag, name=NAMES, version=VERSIONS, key=st.just("acc"), value=st.sampled_from(["1", "2"])),
    st.builds(r.DeleteVersionTag, name=NAMES, version=VERSIONS, key=st.just("acc")),
    st.builds(r.TransitionStage, name=NAMES, version=VERSIONS, stage=st.sampled_from(["staging", "Production",
                                                                                       "Archived"]),
              archive_existing_versions=st.booleans()),
    st.builds(r.DeleteVersion, name=NAMES, version=VERSIONS),
    st.builds(r.SetAlias, name=NAMES, alias=st.sampled_from(["champion", "challenger"]), version=VERSIONS),
    st.builds(r.DeleteAlias, name=NAMES, alias=st.sampled_from(["champion", "challenger"])),
)
PREFIX = [r.CreateModel(name="iris"), r.CreateVersion(name="iris", source="s3://m/0"),
          r.CreateModel(name="wine"), r.CreateVersion(name="wine", source="s3://w/0")]
SCRIPTS = st.lists(st.tuples(COMMANDS, st.integers(min_value=0, max_value=2)), min_size=5, max_size=35)


def property_check(chdb_path: str, max_examples: int) -> int:
    from ingest.rebuild import rebuild
    from registry.service import RegistryService

    databases = (f"prop_{i}" for i in itertools.count())
    examples = [0]

    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(SCRIPTS, st.randoms(use_true_random=False))
    def live_rebuilt_as_of_and_projections_agree(script: list[tuple[r.Command, int]], rnd: Any) -> None:
        examples[0] += 1
        store, log, reader = open_embedded(f"chdb://{chdb_path}", next(databases))
        try:
            clock = itertools.accumulate((step for _, step in [(None, 0), *script, *[(None, 1)] * 10]),
                                         initial=1_790_000_000_000)
            service = RegistryService(log, reader, clock_ms=clock.__next__)
            for command in [*PREFIX, *(c for c, _ in script)]:
                try:
                    service.execute(command, actor=rnd.choice(["ana", "bo"]))
                except RunledgerError:
                    continue
            live = service.state()
            assert RegistryService(log, reader).state() == live  # a fresh process folds the stored log
            last_ms = max(e.ts_ms for e in reader.events())
            assert service.state(as_of_ms=last_ms) == live
            rows = projections(store)
            assert projected_state(rows) == expected_rows(live)
            rebuild(store)
            assert projections(store) == rows
        finally:
            log.close()
            store.command(f"DROP DATABASE IF EXISTS {store.database}")
            store.close()

    live_rebuilt_as_of_and_projections_agree()
    return examples[0]


def test_random_command_sequences_fold_alike_live_rebuilt_as_of_and_in_the_projections(tmp_path: Path) -> None:
    assert in_child(property_check, str(tmp_path / "chdb"), 8) == 8


# ----------------------------------------------------- the CLI's rebuild


def cli_rebuild_check(data_dir: str) -> dict[str, Any]:
    from query.cli import main
    from registry.service import RegistryService

    store, log, reader = open_embedded(f"chdb://{Path(data_dir, 'clickhouse').resolve()}", "runledger")
    service = RegistryService(log, reader)
    for command in [r.CreateModel(name="iris", tags=(("team", "cv"),)),
                    *[r.CreateVersion(name="iris", source=f"s3://m/{i}") for i in range(3)],
                    r.TransitionStage(name="iris", version=2, stage="Production"),
                    r.SetAlias(name="iris", alias="champion", version=2), r.DeleteVersion(name="iris", version=1),
                    r.RenameModel(name="iris", new_name="iris-v2"), r.DeleteModelTag(name="iris-v2", key="team")]:
        service.execute(command, actor="ana")
    log.close()
    live = projections(store)
    for table in ("registry_model_fields", "registry_version_fields"):
        store.command(f"TRUNCATE TABLE {table}")
    emptied = projections(store)
    code = main(["rebuild", "--data-dir", data_dir])
    rebuilt = projections(store)
    return {"code": code, "emptied": emptied, "live": live, "rebuilt": rebuilt,
            "matches_fold": projected_state(rebuilt) == expected_rows(service.state())}


def test_runledger_rebuild_recomputes_the_registry_projections(tmp_path: Path) -> None:
    out = in_child(cli_rebuild_check, str(tmp_path / "data"))
    assert out["code"] == 0
    assert out["emptied"] == {"models": [], "versions": []}
    assert out["rebuilt"] == out["live"] and len(out["live"]["versions"]) > 10
    assert out["matches_fold"]


# ---------------------------------------------------------- Kafka mode


def kafka_check(bootstrap: str, data_dir: str) -> dict[str, Any]:
    from ingest.consumer import IngestConfig, IngestWorker, WorkerThread
    from producer.events import Event
    from producer.ids import new_id
    from producer.registry_events import RegisteredModelCreated
    from query.kafka_log import KafkaLog
    from query.settings import Settings
    from registry.service import RegistryService, model_id_for_name

    store, embedded, reader = open_embedded(f"chdb://{Path(data_dir, 'clickhouse').resolve()}", "runledger")
    embedded.close()
    from ingest.writer import Writer

    writer = Writer(store)
    settings = Settings(data_dir=Path(data_dir), kafka_bootstrap=bootstrap, kafka_topic="registry-race",
                        kafka_partitions=2, kafka_idempotence=False, read_your_writes_timeout_s=30.0)
    logs = [KafkaLog(settings, store, writer), KafkaLog(settings, store, writer)]
    worker: WorkerThread | None = None
    out: dict[str, Any] = {}
    try:
        # 1. a race only ingest can see: both gateways pass the pre-check (nothing is ingested yet),
        #    both produce position 1 of one model; the worker starts afterwards and refuses the second.
        model = model_id_for_name("race", 0)
        results: list[Any] = [None, None]

        def append(i: int) -> None:
            e = Event(id=new_id(), type=RegisteredModelCreated.TYPE, entity=model, ts_ms=1_790_000_000_000,
                      body=RegisteredModelCreated(name="race", description=f"from {i}"), seq=1, actor=f"p{i}")
            results[i] = logs[i].append([e])

        racers = [threading.Thread(target=append, args=(i,)) for i in (0, 1)]
        for t in racers:
            t.start()
        time.sleep(1.5)  # both produced and now wait for ingest
        worker = WorkerThread(IngestWorker(
            IngestConfig(bootstrap=logs[0].bootstrap, topic=settings.kafka_topic, group=settings.kafka_group,
                         partitions=2, max_batch_wait_ms=10, session_timeout_ms=6000, heartbeat_interval_ms=2000),
            writer, store)).start()
        for t in racers:
            t.join(60)
        out["race"] = sorted((len(res.accepted), [d.reason for d in res.rejected]) for res in results)

        # 2. two "API processes" with separate in-memory states
        services = [RegistryService(log, reader, distributed=True) for log in logs]
        services[0].execute(r.CreateModel(name="m"), actor="setup")
        errors: list[BaseException] = []

        def create_version(i: int) -> None:
            try:
                services[i % 2].execute(r.CreateVersion(name="m", source=f"s3://m/{i}"), actor=f"t{i}")
            except BaseException as exc:
                errors.append(exc)

        t0 = time.perf_counter()
        threads = [threading.Thread(target=create_version, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        out["fifty_s"] = round(time.perf_counter() - t0, 1)
        out["errors"] = [repr(e) for e in errors]
        views = [s.model("m") for s in services]
        out["versions"] = [sorted(v.versions) for v in views]
        out["sources"] = sorted(v.source for v in views[0].versions.values())
        out["same_state"] = services[0].state() == services[1].state() == RegistryService(logs[0], reader).state()
        out["refusals"] = store.query_rows("SELECT count() FROM dead_letter WHERE reason LIKE "
                                           "'model changed concurrently%'")[0][0]

        # 3. one name created by both at once: exactly one wins, the other hears "already exists"
        outcomes: list[str] = []

        def create(i: int) -> None:
            try:
                services[i].execute(r.CreateModel(name="dup", description=f"from {i}"), actor=f"p{i}")
                outcomes.append("created")
            except ConflictError as exc:
                outcomes.append(str(exc))

        both = [threading.Thread(target=create, args=(i,)) for i in (0, 1)]
        for t in both:
            t.start()
        for t in both:
            t.join(60)
        out["dup"] = sorted(outcomes)
        out["dup_models"] = len(reader.claimants("dup"))
        return out
    finally:
        if worker is not None:
            worker.stop(30)
        for log in logs:
            log.close()
        store.close()


@pytest.fixture(scope="module")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TansuBroker]:
    broker = TansuBroker(tmp_path_factory.mktemp("tansu") / "tansu.log").start()
    try:
        yield broker
    finally:
        broker.stop()


def test_kafka_mode_two_api_processes_serialise_through_the_ingest_writer(kafka_broker: TansuBroker,
                                                                          tmp_path: Path) -> None:
    out = in_child(kafka_check, kafka_broker.bootstrap, str(tmp_path / "data"), timeout_s=300)
    assert out["race"] == [(0, ["model changed concurrently (expected position 2, got 1)"]), (1, [])]
    assert out["errors"] == []
    assert out["versions"] == [list(range(1, 51))] * 2
    assert out["sources"] == sorted(f"s3://m/{i}" for i in range(50))
    assert out["same_state"]
    assert out["dup"] == ["Registered Model (name=dup) already exists.", "created"]  # sorted
    assert out["dup_models"] == 1
    print(f"50 concurrent create-version in Kafka mode: {out['fifty_s']} s, {out['refusals']} refusals retried")
