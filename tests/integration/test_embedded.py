"""Embedded mode end to end: `runledger serve` in a subprocess, producers in other processes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import orjson
import pytest
from servers import ServerProcess

from producer import events as ev
from producer.codec import event_to_wire
from producer.ids import experiment_id_for, new_id

pytestmark = pytest.mark.integration

JOB = str(Path(__file__).resolve().parent / "log_job.py")


def run_job(uri: str, experiment: str, runs: int, keys: int, steps: int, spill: Path, *extra: str,
            timeout_s: float = 300) -> dict:
    out = subprocess.run([sys.executable, JOB, uri, experiment, str(runs), str(keys), str(steps), str(spill), *extra],
                         capture_output=True, text=True, timeout=timeout_s, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_job(uri: str, experiment: str, runs: int, keys: int, steps: int, spill: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, JOB, uri, experiment, str(runs), str(keys), str(steps), str(spill), *extra],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def snapshot(c: httpx.Client, experiment: str) -> dict:
    """Everything a user can read about an experiment's runs: state plus every metric history."""
    eid = experiment_id_for(experiment)
    runs = c.get(f"/api/v1/experiments/{eid}/runs", params={"max_results": 1000}).json()["runs"]
    out = {}
    for r in runs:
        hist = {k: c.get(f"/api/v1/runs/{r['run_id']}/metrics/{k}").json() for k in sorted(r["metrics"])}
        out[r["run_id"]] = {"run": r, "history": {k: (h["steps"], h["values"]) for k, h in hist.items()}}
    return out


def test_three_runs_by_ten_keys_by_thousand_steps_exact_and_survive_restart(server: ServerProcess, tmp_path: Path) -> None:
    result = run_job(server.url, "exact", 3, 10, 1000, tmp_path / "spill")
    assert result["flushed"]
    with server.client() as c:
        before = snapshot(c, "exact")
        assert len(before) == 3
        total = 0
        for snap in before.values():
            run = snap["run"]
            r = int(run["params"]["run_index"])
            assert run["status"] == "FINISHED" and run["end_time"] >= run["start_time"]
            assert run["tags"]["mlflow.runName"] == f"run-{r}"
            for i in range(10):
                m = run["metrics"][f"k{i}"]
                assert m["count"] == 1000 and m["step"] == 999
                assert m["value"] == pytest.approx(999 * 0.5 + i + r)
                assert m["min"] == pytest.approx(i + r) and m["max"] == pytest.approx(999 * 0.5 + i + r)
                steps, values = snap["history"][f"k{i}"]
                assert steps == list(range(1000))
                total += len(values)
        assert total == 30_000
    server.stop()
    server.start()
    with server.client() as c:
        assert snapshot(c, "exact") == before


def test_several_ranks_log_into_one_run(server: ServerProcess, tmp_path: Path) -> None:
    base = run_job(server.url, "ranks", 1, 1, 10, tmp_path / "s0")
    rid = base["run_ids"][0]
    procs = [start_job(server.url, "ranks", 1, 1, 0, tmp_path / f"s{r}", "--attach", rid, "--rank", str(r))
             for r in (1, 2)]
    for p in procs:
        assert p.wait(120) == 0, p.stderr.read()  # type: ignore[union-attr]
    # ranks 1 and 2 log a key of their own so (run, key, step) stays unique per rank
    for r in (1, 2):
        job = run_job(server.url, "ranks", 1, 0, 0, tmp_path / f"t{r}", "--attach", rid, "--rank", str(r))
        assert job["run_ids"] == [rid]
    with server.client() as c:
        run = c.get(f"/api/v1/runs/{rid}").json()
        assert run["status"] == "FINISHED"  # attached ranks do not end the run
        hist = c.get(f"/api/v1/runs/{rid}/metrics/k0").json()
        assert hist["steps"] == list(range(10)) and set(hist["ranks"]) == {0}


def test_rank_is_recorded_per_point(server: ServerProcess, tmp_path: Path) -> None:
    import producer

    run = producer.start_run(experiment="per-rank", tracking_uri=server.url, spill_dir=str(tmp_path))
    run.log_metrics({"loss": 1.0}, step=0)
    run.finish()
    job = run_job(server.url, "per-rank", 1, 1, 5, tmp_path / "r3", "--attach", run.run_id, "--rank", "3")
    assert job["flushed"]
    with server.client() as c:
        h = c.get(f"/api/v1/runs/{run.run_id}/metrics/k0").json()
        assert h["ranks"] == [3] * 5 and h["values"] == [3000 + s * 0.5 for s in range(5)]


def test_relogged_step_last_write_wins(server: ServerProcess, tmp_path: Path) -> None:
    import producer

    run = producer.start_run(experiment="lww", tracking_uri=server.url, spill_dir=str(tmp_path))
    run.log_metrics({"loss": 1.0}, step=5, timestamp_ms=1_000)
    run.log_metrics({"loss": 9.0}, step=5, timestamp_ms=3_000)
    run.log_metrics({"loss": 5.0}, step=5, timestamp_ms=2_000)  # older timestamp: loses
    assert run.flush(30)
    run.log_metrics({"loss": 7.0}, step=5, timestamp_ms=3_000)  # same timestamp, later in the log: wins
    run.finish()
    with server.client() as c:
        h = c.get(f"/api/v1/runs/{run.run_id}/metrics/loss").json()
        assert (h["steps"], h["values"]) == ([5], [7.0])
        m = c.get(f"/api/v1/runs/{run.run_id}").json()["metrics"]["loss"]
        assert m["value"] == 7.0 and m["count"] == 1


def test_conflicting_param_is_refused_and_reported(server: ServerProcess, tmp_path: Path) -> None:
    import producer

    run = producer.start_run(experiment="params", tracking_uri=server.url, spill_dir=str(tmp_path))
    run.log_params({"lr": 0.1, "bs": 32})
    run.finish()
    # another process (another producer) logs a different lr to the same run
    other = producer.Producer(server.url, spill_dir=tmp_path / "other", linger_ms=10)
    attached = producer.Run(other, run.run_id, run.experiment_id, owner=False)
    attached.log_params({"lr": 0.2, "warmup": 10})
    attached.log_metric("after", 1.0)
    assert other.flush(30)
    reason = other.refusals[0].reason if other.refusals else ""
    assert len(other.refusals) == 1 and "'lr'" in reason and "Changing param values is not allowed" in reason
    other.close()
    with server.client() as c:
        got = c.get(f"/api/v1/runs/{run.run_id}").json()
        assert got["params"] == {"bs": "32", "lr": "0.1"}  # whole refused event changed nothing
        assert got["metrics"]["after"]["value"] == 1.0  # the rest of the batch landed
        dead = c.get("/api/v1/dead-letters").json()["dead_letters"]
        assert any("'lr'" in d["reason"] for d in dead)


def _wire(body: ev.Body, entity: str) -> dict:
    return event_to_wire(ev.Event(id=new_id(), type=body.TYPE, entity=entity, ts_ms=int(time.time() * 1000), body=body))


def test_malformed_batches_are_rejected_and_nothing_else_is_lost(server: ServerProcess) -> None:
    rid = new_id()
    good = [
        _wire(ev.ExperimentCreated(name="malformed"), experiment_id_for("malformed")),
        _wire(ev.RunCreated(experiment_id=experiment_id_for("malformed"), name="m", start_time_ms=1), rid),
        _wire(ev.MetricsLogged(keys=("a", "a"), steps=(0, 1), timestamps_ms=(1, 2), values=(1.0, 2.0)), rid),
    ]
    bad_metrics = _wire(ev.MetricsLogged(keys=("a",), steps=(5,), timestamps_ms=(1,), values=(1.0,)), rid)
    bad_metrics["body"]["values"] = ["lots"]
    batch = [good[0], {"v": 1, "type": "run_created"}, good[1], bad_metrics, 17, good[2],
             {**good[2], "id": new_id(), "v": 42}]
    with server.client() as c:
        resp = c.post("/api/v1/ingest", content=orjson.dumps(batch))
        assert resp.status_code == 200
        body = resp.json()
        assert body["accepted"] == 3
        assert [r["index"] for r in body["rejected"]] == [1, 3, 4, 6]
        assert "non-number" in body["rejected"][1]["reason"] and "schema version 42" in body["rejected"][3]["reason"]
        run = c.get(f"/api/v1/runs/{rid}").json()
        assert run["metrics"]["a"]["count"] == 2
        for payload, status in [(b"not json", 400), (b'{"an": "object"}', 400), (b"[]", 200), (b"", 400)]:
            r = c.post("/api/v1/ingest", content=payload)
            assert r.status_code == status, (payload, r.text)
            assert r.status_code == 200 or "error" in r.json()
        assert c.get(f"/api/v1/runs/{rid}").json()["metrics"]["a"]["count"] == 2
        assert len(c.get("/api/v1/dead-letters").json()["dead_letters"]) >= 6
        assert c.get("/api/v1/health").json()["writer"]["dead_letters"] >= 6


def test_read_api_answers_bad_input_with_clear_errors(server: ServerProcess) -> None:
    with server.client() as c:
        cases = [
            ("/api/v1/runs/nope", 404, "does not exist"),
            ("/api/v1/runs/nope?as_of=yesterday", 400, "as_of"),
            ("/api/v1/experiments/0/runs?filter=metrics.loss%20%3C%20'x'", 400, "numbers"),
            ("/api/v1/experiments/0/runs?view_type=SOME", 400, "view_type"),
            ("/api/v1/experiments/0/runs?order_by=metrics.loss%20UP", 400, "order_by"),
            ("/api/v1/experiments/0/runs?max_results=0", 422, ""),
            ("/api/v1/runs/nope/metrics/loss?max_points=1", 422, ""),
            ("/api/v1/runs/nope/metrics/loss", 404, "does not exist"),
            ("/api/v1/experiments/424242", 404, "does not exist"),
        ]
        for url, status, text in cases:
            r = c.get(url)
            assert r.status_code == status, (url, r.text)
            assert text in r.text
        r = c.post("/api/v1/experiments", json={"name": ""})
        assert r.status_code == 422
        r = c.post("/api/v1/experiments", json={"name": "created-here"})
        assert r.status_code == 200 and r.json()["experiment_id"] == experiment_id_for("created-here")
        again = c.post("/api/v1/experiments", json={"name": "created-here"})
        assert again.json()["experiment_id"] == r.json()["experiment_id"]


def test_spill_and_resend_when_the_server_is_down_during_logging(tmp_path: Path) -> None:
    server = ServerProcess(tmp_path / "data").start()
    try:
        job = start_job(server.url, "outage", 1, 5, 3000, tmp_path / "spill", "--slow-ms", "300")
        time.sleep(1.5)
        server.stop()  # the job keeps logging into a dead server
        time.sleep(3)
        assert job.poll() is None, "the job must not die or stall while the server is down"
        server.start()
        out, err = job.communicate(timeout=180)
        assert job.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        assert result["flushed"], err
        assert "spilling" in err
        with server.client() as c:
            rid = result["run_ids"][0]
            run = c.get(f"/api/v1/runs/{rid}").json()
            assert run["status"] == "FINISHED"
            for i in range(5):
                assert run["metrics"][f"k{i}"]["count"] == 3000
                h = c.get(f"/api/v1/runs/{rid}/metrics/k{i}").json()
                assert h["steps"] == list(range(3000))
        assert not list((tmp_path / "spill").glob("*.batch"))
    finally:
        server.stop()


def test_rebuild_equals_live_projections(server: ServerProcess, tmp_path: Path) -> None:
    import producer

    run_job(server.url, "rebuild", 2, 3, 200, tmp_path / "spill")
    run = producer.start_run(experiment="rebuild", tracking_uri=server.url, spill_dir=str(tmp_path), tags={"t": "1"})
    run.log_params({"p": 1})
    run.set_tags({"a": "b", "c": "d"})
    run.delete_tag("a")
    run.log_metrics({"loss": 2.0}, step=1, timestamp_ms=5)
    run.log_metrics({"loss": 1.0}, step=1, timestamp_ms=6)
    run.finish("FAILED")
    with server.client() as c:
        live = snapshot(c, "rebuild")
        exps = c.get("/api/v1/experiments").json()
        report = c.post("/api/v1/admin/rebuild").json()
        assert report["points"] == 2 * 3 * 200 + 2
        assert snapshot(c, "rebuild") == live
        assert c.get("/api/v1/experiments").json() == exps
        assert live[run.run_id]["run"]["tags"].get("a") is None and live[run.run_id]["run"]["status"] == "FAILED"
    server.stop()
    cli = subprocess.run([sys.executable, "-m", "query", "rebuild", "--data-dir", str(server.data_dir)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert cli.returncode == 0, cli.stderr
    assert "rebuilt from" in cli.stdout
    server.start()
    with server.client() as c:
        assert snapshot(c, "rebuild") == live


def test_run_as_of_folds_the_log(server: ServerProcess, tmp_path: Path) -> None:
    import producer

    run = producer.start_run(experiment="asof", tracking_uri=server.url, spill_dir=str(tmp_path))
    run.log_params({"lr": 1})
    run.log_metrics({"loss": 3.0}, step=0)
    assert run.flush(30)
    time.sleep(0.05)
    middle = int(time.time() * 1000)
    time.sleep(0.05)
    run.set_tags({"late": "yes"})
    run.log_metrics({"loss": 1.0}, step=1)
    run.finish()
    with server.client() as c:
        then = c.get(f"/api/v1/runs/{run.run_id}", params={"as_of": middle}).json()
        now = c.get(f"/api/v1/runs/{run.run_id}").json()
        assert then["status"] == "RUNNING" and "late" not in then["tags"] and then["params"] == {"lr": "1"}
        assert then["metrics"]["loss"]["value"] == 3.0 and then["metrics"]["loss"]["count"] == 1
        assert now["status"] == "FINISHED" and now["tags"]["late"] == "yes" and now["metrics"]["loss"]["count"] == 2
        iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(middle / 1000)) + f".{middle % 1000:03d}Z"
        assert c.get(f"/api/v1/runs/{run.run_id}", params={"as_of": iso}).json()["status"] == "RUNNING"
        latest = c.get(f"/api/v1/runs/{run.run_id}", params={"as_of": int(time.time() * 1000) + 1000}).json()
        assert {k: v for k, v in latest.items() if k != "metrics"} == {k: v for k, v in now.items() if k != "metrics"}


def test_search_filters_and_sorts(server: ServerProcess, tmp_path: Path) -> None:
    run_job(server.url, "search", 4, 2, 20, tmp_path / "spill")
    eid = experiment_id_for("search")
    with server.client() as c:
        def names(**params: object) -> list[str]:
            r = c.get(f"/api/v1/experiments/{eid}/runs", params=params)
            assert r.status_code == 200, r.text
            return [x["name"] for x in r.json()["runs"]]

        assert names(filter="metrics.k0 > 10", order_by="metrics.k0 DESC") == ["run-3", "run-2", "run-1"]
        assert names(filter="params.run_index IN ('0', '2')", order_by="params.run_index") == ["run-0", "run-2"]
        assert names(filter="attributes.run_name LIKE 'run-%' and tags.`mlflow.source.type` = 'LOCAL'",
                     order_by="metrics.k1 ASC") == ["run-0", "run-1", "run-2", "run-3"]
        assert names(filter="attributes.status = 'RUNNING'") == []
        page1 = c.get(f"/api/v1/experiments/{eid}/runs", params={"max_results": 3, "order_by": "metrics.k0"}).json()
        assert [r["name"] for r in page1["runs"]] == ["run-0", "run-1", "run-2"] and page1["next_offset"] == 3
        page2 = c.get(f"/api/v1/experiments/{eid}/runs",
                      params={"max_results": 3, "order_by": "metrics.k0", "offset": 3}).json()
        assert [r["name"] for r in page2["runs"]] == ["run-3"] and page2["next_offset"] is None


def test_downsampled_history_keeps_spikes_and_shape(server: ServerProcess, tmp_path: Path) -> None:
    import producer

    run = producer.start_run(experiment="spikes", tracking_uri=server.url, spill_dir=str(tmp_path))
    for step in range(20_000):
        run.log_metrics({"loss": 100.0 if step == 12_345 else (-50.0 if step == 777 else 1.0)}, step=step)
    run.finish()
    with server.client() as c:
        h = c.get(f"/api/v1/runs/{run.run_id}/metrics/loss", params={"max_points": 200}).json()
        assert h["points"] <= 200
        assert 12_345 in h["steps"] and 100.0 in h["values"] and -50.0 in h["values"]
        assert h["steps"] == sorted(h["steps"]) and h["steps"][0] == 0
        full = c.get(f"/api/v1/runs/{run.run_id}/metrics/loss").json()
        assert full["points"] == 20_000
