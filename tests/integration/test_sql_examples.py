"""Every example query of docs/SQL.md, run through the real endpoint against seeded data with known answers.

The SQL is read out of docs/SQL.md (``<!-- example: id -->`` + a ```sql block),
so the docs and the tests cannot drift apart. Data goes in the way producers
send it: wire-format events POSTed to /api/v1/ingest (registry events
included: they are part of the contract, minted here by the registry's own
``decide``). The same module checks the registry views against the
registry's pure fold, ``query_df`` and the ``runledger sql`` CLI.
"""

from __future__ import annotations

import math
import random
import re
import statistics
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from servers import REPO, ServerProcess

import registry as reg
from producer.codec import encode_batch
from producer.errors import ConflictError, ContractError, NotFoundError
from producer.events import (
    Body,
    Event,
    ExperimentCreated,
    MetricsLogged,
    ParamsLogged,
    RunCreated,
    RunEnded,
    Source,
)
from producer.ids import experiment_id_for, new_id

pytestmark = pytest.mark.integration

DOC = REPO / "docs" / "SQL.md"


def doc_examples() -> dict[str, str]:
    """Example id -> SQL, in the order docs/SQL.md gives them."""
    found = re.findall(r"<!-- example: (\w+) -->\s*```sql\n(.*?)```", DOC.read_text(), re.DOTALL)
    return dict(found)


def ms(hour: int, minute: int = 0, second: float = 0.0, day: int = 20) -> int:
    return int(datetime(2026, 11, day, hour, minute, tzinfo=UTC).timestamp() * 1000 + second * 1000)


# ------------------------------------------------------------------ seed data

RUNS = {  # llm-sft: eval/loss at steps 100, 200, 300
    "a": {"lr": "0.001", "batch_size": "32", "optimizer": "adam", "eval": (0.9, 0.6, 0.5), "status": "FINISHED"},
    "b": {"lr": "0.001", "batch_size": "64", "optimizer": "sgd", "eval": (0.8, 0.7, 0.75), "status": "FINISHED"},
    "c": {"lr": "0.0001", "batch_size": "64", "optimizer": "adam", "eval": (1.0, 0.45, 0.4), "status": "FINISHED"},
    "d": {"lr": "0.0001", "batch_size": "32", "optimizer": "sgd", "eval": (2.0, 1.9, 1.95), "status": "FAILED"},
}
EVAL_STEPS = (100, 200, 300)
TRAIN_LOSS_A = (1.0, 0.9, 0.8, 1.1, 0.6, 0.5, 0.55, 0.4, 0.35, 0.3)  # run a, steps 0..9
DDP_T0 = ms(8)
DDP = {0: {"every_ms": 500, "base": 1000.0}, 1: {"every_ms": 1000, "base": 800.0}}  # rank -> cadence, values
DDP_STEPS = range(11)


def _event(entity: str, body: Body, ts_ms: int, rank: int = 0, actor: str = "") -> Event:
    return Event(id=new_id(), type=body.TYPE, entity=entity, ts_ms=ts_ms, body=body,
                 source=Source(host="seed", pid=1, rank=rank), actor=actor)


def post_events(client: httpx.Client, events: list[Event]) -> None:
    resp = client.post("/api/v1/ingest", content=encode_batch(events))
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"accepted": len(events), "rejected": []}


def tracking_events() -> tuple[list[Event], dict[str, str]]:
    """Events for the llm-sft and llm-pretrain experiments; also run name -> run id."""
    sft, pretrain = experiment_id_for("llm-sft"), experiment_id_for("llm-pretrain")
    events = [_event(sft, ExperimentCreated(name="llm-sft"), ms(7)),
              _event(pretrain, ExperimentCreated(name="llm-pretrain"), ms(7))]
    ids: dict[str, str] = {}
    for i, (name, r) in enumerate(RUNS.items()):
        rid = ids[name] = new_id()
        start = ms(8, i)
        events.append(_event(rid, RunCreated(experiment_id=sft, name=name, start_time_ms=start, user="ana"), start))
        events.append(_event(rid, ParamsLogged(params=tuple((k, r[k]) for k in ("lr", "batch_size", "optimizer"))),
                             start))
        keys, steps, values = ["eval/loss"] * 3, list(EVAL_STEPS), list(r["eval"])
        if name == "a":
            keys += ["train/loss"] * len(TRAIN_LOSS_A)
            steps += list(range(len(TRAIN_LOSS_A)))
            values += list(TRAIN_LOSS_A)
        events.append(_event(rid, MetricsLogged(keys=tuple(keys), steps=tuple(steps),
                                                timestamps_ms=tuple(start + 1000 * s for s in steps),
                                                values=tuple(values)), start))
        events.append(_event(rid, RunEnded(status=str(r["status"]), end_time_ms=start + 600_000), start + 600_000))
    rid = ids["ddp"] = new_id()
    events.append(_event(rid, RunCreated(experiment_id=pretrain, name="ddp", start_time_ms=DDP_T0), DDP_T0))
    for rank, spec in DDP.items():
        events.append(_event(rid, MetricsLogged(
            keys=(f"perf/tokens_per_s/rank{rank}",) * len(DDP_STEPS), steps=tuple(DDP_STEPS),
            timestamps_ms=tuple(DDP_T0 + spec["every_ms"] * s for s in DDP_STEPS),
            values=tuple(spec["base"] + 10 * s for s in DDP_STEPS)), DDP_T0, rank=rank))
    return events, ids


class Registry:
    """Registry commands folded locally (the registry's own decide/apply) and the events they make."""

    def __init__(self) -> None:
        self.state = reg.EMPTY
        self.events: list[Event] = []

    def do(self, command: reg.Command, at_ms: int, actor: str = "ana") -> None:
        evs = reg.decide(self.state, command, at_ms, actor, new_id)
        self.state = reg.project(evs, self.state)
        self.events += evs


def registry_story(run_ids: dict[str, str]) -> Registry:
    """sft-model: v1 (run a) in Production from 10:00; v2 (run c) replaces it at 13:00 and becomes @champion."""
    r = Registry()
    r.do(reg.CreateModel(name="sft-model"), ms(9))
    r.do(reg.CreateVersion(name="sft-model", source=f"runs:/{run_ids['a']}/model", run_id=run_ids["a"]), ms(9, 10))
    r.do(reg.TransitionStage(name="sft-model", version=1, stage="Production"), ms(10))
    r.do(reg.CreateVersion(name="sft-model", source=f"runs:/{run_ids['c']}/model", run_id=run_ids["c"]), ms(11))
    r.do(reg.TransitionStage(name="sft-model", version=2, stage="Staging"), ms(11, 30))
    r.do(reg.TransitionStage(name="sft-model", version=2, stage="Production", archive_existing_versions=True),
         ms(13))
    r.do(reg.SetAlias(name="sft-model", alias="champion", version=2), ms(13, 5))
    return r


def random_registry(seed: int, n_commands: int) -> Registry:
    """A random command sequence over a few models (invalid commands skipped, as the service would refuse them).

    Its times are in 2030, so it never changes the 2026 examples' answers.
    """
    rng = random.Random(seed)
    r = Registry()
    names = ["m-alpha", "m-beta", "m-gamma", "m-delta", "m-omega"]
    t = ms(0, day=1) + 4 * 365 * 86_400_000
    for _ in range(n_commands):
        t += rng.randint(1, 60_000)
        name = rng.choice(names)
        live = r.state.names.get(name)
        if live is None:
            command: reg.Command = reg.CreateModel(name=name)
        else:
            versions = sorted(r.state.models[live].versions)
            v = rng.choice(versions) if versions else 1
            command = rng.choices([
                reg.CreateVersion(name=name, source=f"s3://b/{name}/{t}", description=rng.choice(["", "d"])),
                reg.CreateVersion(name=name, source=f"s3://b/{name}/{t}", run_id=f"run-{t}"),
                reg.TransitionStage(name=name, version=v, stage=rng.choice(["Staging", "Production", "Archived"]),
                                    archive_existing_versions=rng.random() < 0.5),
                reg.UpdateVersionDescription(name=name, version=v, description=f"desc {t}"),
                reg.SetVersionTag(name=name, version=v, key="k", value=str(t)),
                reg.SetAlias(name=name, alias=rng.choice(["champion", "challenger"]), version=v),
                reg.DeleteAlias(name=name, alias="champion"),
                reg.DeleteVersion(name=name, version=v),
                reg.RenameModel(name=name, new_name=f"{name}-renamed-{t}"),
                reg.DeleteModel(name=name),
            ], weights=[6, 6, 8, 3, 3, 5, 2, 3, 2, 1])[0]
        try:
            r.do(command, t, actor=rng.choice(["ana", "bo"]))
        except (NotFoundError, ConflictError, ContractError):
            continue
    return r


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, dict[str, str], Registry]]:
    server = ServerProcess(tmp_path_factory.mktemp("sql-examples") / "data").start()
    try:
        with server.client() as client:
            events, run_ids = tracking_events()
            post_events(client, events)
            story = registry_story(run_ids)
            post_events(client, story.events)
            noise = random_registry(seed=7, n_commands=120)
            post_events(client, noise.events)
        yield server, run_ids, noise
    finally:
        server.stop()


def sql_rows(server: ServerProcess, sql: str) -> list[dict[str, Any]]:
    with server.client() as client:
        resp = client.post("/api/v1/sql", json={"sql": sql})
    assert resp.status_code == 200, resp.text
    return resp.json()["data"]  # type: ignore[no-any-return]


# ------------------------------------------------------------ expected answers

def _final(name: str) -> float:
    return RUNS[name]["eval"][-1]  # type: ignore[index,no-any-return]


def _best(name: str) -> tuple[float, int]:
    evals: tuple[float, ...] = RUNS[name]["eval"]  # type: ignore[assignment]
    i = min(range(len(evals)), key=lambda k: evals[k])
    return evals[i], EVAL_STEPS[i]


def expected_answers() -> dict[str, list[dict[str, Any]]]:
    good = {n for n in RUNS if _best(n)[0] < 0.6}
    separation = []
    for key in ("lr", "batch_size", "optimizer"):
        values = sorted({str(RUNS[n][key]) for n in RUNS})
        shares = [statistics.mean(n in good for n in RUNS if RUNS[n][key] == v) for v in values]
        separation.append({"key": key, "separation": max(shares) - min(shares), "values_seen": values})
    separation.sort(key=lambda row: (-row["separation"], row["key"]))
    log_lr = [math.log10(float(str(RUNS[n]["lr"]))) for n in RUNS]
    smoothed = [statistics.mean(TRAIN_LOSS_A[max(0, i - 2):i + 1]) for i in range(len(TRAIN_LOSS_A))]
    return {
        "top_k_runs": [{"run": n, "eval_loss": _final(n), "step": 300} for n in sorted(RUNS, key=_final)[:3]],
        "best_eval_loss_per_run": [{"run": n, "best_eval_loss": _best(n)[0], "best_step": _best(n)[1]}
                                   for n in sorted(RUNS, key=lambda n: _best(n)[0])],
        "smoothed_loss_curve": [{"step": i, "loss": v, "smoothed": smoothed[i]} for i, v in enumerate(TRAIN_LOSS_A)],
        "step_rate_per_rank": [{"rank": rank, "steps": 10, "seconds": spec["every_ms"] * 10 / 1000,
                                "steps_per_s": 10 / (spec["every_ms"] * 10 / 1000)} for rank, spec in DDP.items()],
        "throughput_per_rank": [{"rank": rank, "points": 11, "mean_tokens_per_s": spec["base"] + 50,
                                 "peak_tokens_per_s": spec["base"] + 100} for rank, spec in DDP.items()],
        "separating_param": separation,
        "param_metric_correlation": [{"runs": 4, "log_lr_vs_eval_loss":
                                      statistics.correlation(log_lr, [_final(n) for n in RUNS])}],
        "in_production_at": [{"model_name": "sft-model", "version": 1}],
        "versions_with_run_metrics": [
            {"model": "sft-model", "version": 1, "stage": "Archived", "aliases": [], "run": "a", "eval_loss": 0.5},
            {"model": "sft-model", "version": 2, "stage": "Production", "aliases": ["champion"], "run": "c",
             "eval_loss": 0.4},
        ],
        "params_as_columns": [{"run": n, "status": RUNS[n]["status"], "lr": RUNS[n]["lr"],
                               "optimizer": RUNS[n]["optimizer"]} for n in sorted(RUNS)],
    }


def _approx(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: pytest.approx(v) if isinstance(v, float) else v for k, v in row.items()} for row in rows]


# ---------------------------------------------------------------------- tests

def test_docs_carry_at_least_eight_examples_and_each_has_a_known_answer() -> None:
    examples = doc_examples()
    assert len(examples) >= 8
    assert set(examples) == set(expected_answers())


@pytest.mark.parametrize("example", sorted(expected_answers()))
def test_doc_example_gives_the_known_answer(seeded: tuple[ServerProcess, dict[str, str], Registry],
                                            example: str) -> None:
    server = seeded[0]
    assert sql_rows(server, doc_examples()[example]) == _approx(expected_answers()[example])


def test_in_production_at_follows_the_timeline(seeded: tuple[ServerProcess, dict[str, str], Registry]) -> None:
    sql = doc_examples()["in_production_at"]
    at = {"09:59:59": [], "12:00:00": [1], "13:00:00": [2], "18:00:00": [2]}
    for clock, versions in at.items():
        rows = sql_rows(seeded[0], sql.replace("2026-11-20 12:00:00", f"2026-11-20 {clock}"))
        assert [r["version"] for r in rows if r["model_name"] == "sft-model"] == versions, clock


def test_model_versions_view_equals_the_registry_fold(seeded: tuple[ServerProcess, dict[str, str], Registry]) -> None:
    server, _, noise = seeded
    names = sorted({m.name for m in noise.state.models.values()})
    rows = sql_rows(server, "SELECT name, version, current_stage, source, run_id, description, status, "
                            "toUnixTimestamp64Milli(creation_time) AS created, "
                            "toUnixTimestamp64Milli(last_updated_time) AS updated, aliases, deleted "
                            f"FROM model_versions WHERE name IN ({', '.join(repr(n) for n in names)}) "
                            "ORDER BY name, version, created")
    live = {(r["name"], r["version"]): r for r in rows if not r["deleted"]}
    expected_live = {}
    expected_deleted = set()
    for model in noise.state.models.values():
        for number in range(1, model.last_version + 1):
            v = model.versions.get(number)
            if model.deleted or v is None:
                expected_deleted.add((model.name, number))
                continue
            expected_live[(model.name, number)] = {
                "name": model.name, "version": number, "current_stage": v.stage, "source": v.source,
                "run_id": v.run_id, "description": v.description, "status": "READY", "created": v.created_ms,
                "updated": v.updated_ms, "aliases": reg.aliases_of(model, number), "deleted": 0}
    assert live == expected_live
    assert {(r["name"], r["version"]) for r in rows if r["deleted"]} == expected_deleted
    seen = {e.type for e in noise.events}  # the scenario really exercised the registry
    assert {"model_version_deleted", "registered_model_deleted", "registered_model_renamed",
            "registered_model_alias_set", "model_version_stage_transitioned"} <= seen, seen


def test_registry_events_name_each_event_with_the_model_name_of_its_time(
        seeded: tuple[ServerProcess, dict[str, str], Registry]) -> None:
    server, _, noise = seeded
    by_id = {r["event_id"]: r for r in sql_rows(
        server, "SELECT event_id, type, model_id, model_name, version, to_stage, alias, actor FROM registry_events")}
    state = reg.EMPTY
    for e in noise.events:
        state = reg.apply(state, e)
        row = by_id[e.id]
        assert (row["type"], row["model_id"], row["actor"]) == (e.type, e.entity, e.actor)
        assert row["model_name"] == state.models[e.entity].name
        assert row["version"] == getattr(e.body, "version", None)
        assert row["to_stage"] == getattr(e.body, "to_stage", None)
        assert row["alias"] == getattr(e.body, "alias", None)


def test_query_df_returns_the_example_as_a_dataframe(seeded: tuple[ServerProcess, dict[str, str], Registry]) -> None:
    import producer

    df = producer.query_df(doc_examples()["best_eval_loss_per_run"], tracking_uri=seeded[0].url)
    assert list(df.columns) == ["run", "best_eval_loss", "best_step"]
    assert df.to_dict("records") == _approx(expected_answers()["best_eval_loss_per_run"])
    times = producer.query_df("SELECT ts FROM registry_events ORDER BY event_id LIMIT 1", tracking_uri=seeded[0].url)
    assert str(times["ts"].dt.tz) == "UTC"


def test_query_df_refusal_and_unreachable_server_raise_typed_errors(
        seeded: tuple[ServerProcess, dict[str, str], Registry]) -> None:
    import producer

    with pytest.raises(producer.ContractError, match="SQL_REFUSED"):
        producer.query_df("SELECT * FROM events", tracking_uri=seeded[0].url)
    with pytest.raises(producer.ContractError, match="SQL_ERROR"):
        producer.query_df("SELECT no_such_column FROM runs", tracking_uri=seeded[0].url)
    with pytest.raises(producer.TransientError):
        producer.query_df("SELECT 1", tracking_uri="http://127.0.0.1:9", timeout_s=5)


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "query", "sql", *args], input=stdin, capture_output=True,
                          text=True, cwd=REPO, timeout=60, check=False)


def test_cli_prints_a_table(seeded: tuple[ServerProcess, dict[str, str], Registry]) -> None:
    done = _cli("--url", seeded[0].url, doc_examples()["top_k_runs"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["run", "eval_loss", "step"]
    assert [line.split() for line in lines[2:5]] == [["c", "0.4", "300"], ["a", "0.5", "300"], ["b", "0.75", "300"]]
    assert lines[-1] == "(3 rows)"


def test_cli_csv_json_and_stdin(seeded: tuple[ServerProcess, dict[str, str], Registry]) -> None:
    url = seeded[0].url
    csv = _cli("--url", url, "--format", "csv", "SELECT name FROM runs WHERE experiment_name = 'llm-sft' ORDER BY name")
    assert csv.returncode == 0 and csv.stdout.splitlines() == ['"name"', '"a"', '"b"', '"c"', '"d"']
    js = _cli("--url", url, "--format", "json", "-", stdin="SELECT 41 + 1 AS answer")
    assert js.returncode == 0 and '"answer": 42' in js.stdout


def test_cli_refusals_and_bad_input_exit_2_with_one_line(seeded: tuple[ServerProcess, dict[str, str], Registry]) -> None:
    url = seeded[0].url
    for args in (["--url", url, "DROP TABLE metric_points"], ["--url", url, "SELECT * FROM system.tables"],
                 ["--url", url, "SELECT FROM WHERE"], ["--url", url, "   "], ["--url", "http://127.0.0.1:9", "SELECT 1"]):
        done = _cli(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert done.stderr.startswith("runledger: error:") and "Traceback" not in done.stderr, done.stderr
    bad_flag = _cli("--format", "xml", "SELECT 1")
    assert bad_flag.returncode == 2 and "invalid choice" in bad_flag.stderr


def test_large_results_stream_whole(seeded: tuple[ServerProcess, dict[str, str], Registry]) -> None:
    import pyarrow as pa

    sql = "SELECT x, toString(x) AS s FROM (SELECT arrayJoin(range(1000000)) AS x) ORDER BY x"
    with seeded[0].client() as client:
        with client.stream("POST", "/api/v1/sql", json={"sql": sql, "format": "csv"}) as resp:
            assert resp.status_code == 200
            size, lines, last = 0, 0, b""
            for chunk in resp.iter_bytes():  # well past the 8 MiB in-memory spool
                size += len(chunk)
                lines += chunk.count(b"\n")
                last = (last + chunk)[-64:]
        assert size == int(resp.headers["content-length"]) > 8 << 20
        assert lines == 1_000_001 and last.endswith(b'999999,"999999"\n')
        arrow = client.post("/api/v1/sql", json={"sql": sql, "format": "arrow"})
    table = pa.ipc.open_stream(arrow.content).read_all()
    assert table.num_rows == 1_000_000 and table["x"][-1].as_py() == 999_999
