"""The native registry API and CLI against ``runledger serve``: every command, reads as of every event
boundary, the audit trail with actors, validation errors, malformed input, and (Kafka mode) a fresh
process that replays the registry from the broker."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kafka_broker import TansuBroker, server_env
from servers import RUNLEDGER, ServerProcess

pytestmark = pytest.mark.integration

R = "/api/v1/registry"


@pytest.fixture(scope="module")
def http(shared_server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=shared_server.url, timeout=30) as c:
        yield c


def ok(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_every_command_over_http_with_actor_and_state_as_of_every_event(http: httpx.Client) -> None:
    as_ana, as_bo = {"X-Runledger-Actor": "ana"}, {"X-Runledger-Actor": "bo"}
    steps: list[tuple[int, dict[str, Any]]] = []

    def do(method: str, path: str, headers: dict[str, str] = as_ana, **kw: Any) -> dict[str, Any]:
        out = ok(http.request(method, R + path, headers=headers, **kw))
        for e in out["events"]:
            steps.append((e["ts_ms"], ok(http.get(f"{R}/models/{out['model']['name']}")) if out["model"] else {}))
            time.sleep(0.003)  # distinct milliseconds, so every boundary is addressable
        return out

    do("POST", "/models", json={"name": "fraud", "description": "v0", "tags": {"team": "risk"}})
    do("POST", "/models/fraud/versions", json={"source": "s3://m/1", "run_id": "r1"})
    do("POST", "/models/fraud/versions", headers=as_bo, json={"source": "s3://m/2"})
    do("POST", "/models/fraud/versions/1/stage", json={"stage": "production"})
    do("POST", "/models/fraud/versions/2/stage", headers=as_bo,
       json={"stage": "Production", "archive_existing_versions": True})
    champion_ts = do("PUT", "/models/fraud/aliases/champion", json={"version": 2})["events"][0]["ts_ms"]
    do("PUT", "/models/fraud/aliases/champion", json={"version": 1})
    do("PATCH", "/models/fraud", json={"description": "v1"})
    do("PUT", "/models/fraud/tags/tier", json={"value": "gold"})
    do("DELETE", "/models/fraud/tags/team")
    do("PATCH", "/models/fraud/versions/2", json={"description": "second"})
    do("PUT", "/models/fraud/versions/2/tags/ok", json={"value": "yes"})
    do("DELETE", "/models/fraud/versions/2/tags/ok")
    do("DELETE", "/models/fraud/aliases/champion")
    do("POST", "/models/fraud/rename", json={"new_name": "fraud-v2"})

    now = ok(http.get(f"{R}/models/fraud-v2"))
    assert now["description"] == "v1" and now["tags"] == {"tier": "gold"} and now["aliases"] == {}
    assert [(v["version"], v["stage"]) for v in now["versions"]] == [(1, "Archived"), (2, "Production")]
    assert ok(http.get(f"{R}/resolve", params={"uri": "models:/fraud-v2/Production"}))["version"] == 2
    assert ok(http.get(f"{R}/resolve", params={"uri": "models:/fraud-v2/latest"}))["version"] == 2
    assert ok(http.get(f"{R}/resolve", params={"uri": "models:/fraud-v2/1"}))["source"] == "s3://m/1"

    # as of every event boundary: the model as it was right after that event (renamed last: old name before)
    for ts, expected in steps[:-1]:
        then = ok(http.get(f"{R}/models/fraud", params={"as_of": ts}))
        assert {k: then[k] for k in ("description", "tags", "aliases", "versions", "latest_versions")} == \
               {k: expected[k] for k in ("description", "tags", "aliases", "versions", "latest_versions")}, ts
    assert ok(http.get(f"{R}/resolve", params={"uri": "models:/fraud@champion", "as_of": champion_ts}))["version"] == 2
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(steps[0][0] / 1000 - 3600)) + "Z"
    assert http.get(f"{R}/models/fraud", params={"as_of": iso}).status_code == 404  # before it existed

    trail = ok(http.get(f"{R}/models/fraud-v2/history"))["entries"]
    assert len(trail) == len(steps)
    by_bo = [(e["type"], e["version"]) for e in trail if e["actor"] == "bo"]
    assert by_bo == [("model_version_created", 2), ("model_version_stage_transitioned", 2),
                     ("model_version_stage_transitioned", 1)]  # archiving v1 is part of bo's command
    assert {e["actor"] for e in trail} == {"ana", "bo"}
    moved = [e for e in trail if e["type"] == "registered_model_alias_set"][1]
    assert [(c["before"], c["after"]) for c in moved["changes"]] == [(2, 1)]
    only_v2 = ok(http.get(f"{R}/models/fraud-v2/history", params={"version": 2}))["entries"]
    assert only_v2[0]["type"] == "model_version_created" and only_v2[0]["version"] == 2
    # every entry is about v2: its own events, or an alias moving to / away from it
    assert all(e["version"] == 2 or any(2 in (c["before"], c["after"]) for c in e["changes"]) for e in only_v2)
    assert len(only_v2) < len(trail)
    anonymous = ok(http.post(f"{R}/models", json={"name": "anon"}))
    assert anonymous["events"][0]["actor"] == "anonymous"


@pytest.mark.parametrize("method,path,body,status", [
    ("GET", "/models/ghost", None, 404),
    ("POST", "/models/ghost/versions", {"source": "s3://x"}, 404),
    ("POST", "/models", {"name": "dupe"}, 409),
    ("POST", "/models/dupe/versions/1/stage", {"stage": "Prod"}, 400),
    ("PUT", "/models/dupe/aliases/champion", {"version": 7}, 404),
    ("PUT", "/models/dupe/aliases/latest", {"version": 1}, 400),
    ("GET", "/models/dupe/versions/0", None, 400),
    ("GET", "/models/dupe", {"as_of": "yesterday-ish"}, 400),
    ("GET", "/resolve", {"uri": "runs:/abc/model"}, 400),
    ("POST", "/models", {"name": "bad/name"}, 400),
    ("POST", "/models", {"name": 5}, 422),
    ("POST", "/models/dupe/versions", {"source": ""}, 400),
    ("POST", "/models/dupe/versions", "not json at all", 422),
    ("DELETE", "/models/dupe/versions/9", None, 404),
])
def test_validation_errors_are_clear_4xx(http: httpx.Client, method: str, path: str, body: Any, status: int) -> None:
    http.post(f"{R}/models", json={"name": "dupe"})
    if method == "GET":
        r = http.get(R + path, params=body)
    elif isinstance(body, str):
        r = http.request(method, R + path, content=body, headers={"content-type": "application/json"})
    else:
        r = http.request(method, R + path, json=body)
    assert r.status_code == status, r.text
    message = r.json()["error"]["message"] if status != 422 else str(r.json()["detail"])
    assert message


def test_cli_prints_history_and_state_as_of_and_refuses_bad_input(shared_server: ServerProcess,
                                                                  http: httpx.Client) -> None:
    created = ok(http.post(f"{R}/models", json={"name": "cli-model"}, headers={"X-Runledger-Actor": "cli-user"}))
    t_created = created["events"][0]["ts_ms"]
    time.sleep(0.01)
    ok(http.post(f"{R}/models/cli-model/versions", json={"source": "s3://c/1"}))

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*RUNLEDGER, "registry", *args], capture_output=True, text=True, timeout=60, check=False)

    hist = cli("history", "cli-model", "--url", shared_server.url)
    assert hist.returncode == 0 and "cli-user" in hist.stdout and "model_version_created" in hist.stdout
    now = cli("show", "cli-model", "--url", shared_server.url)
    assert now.returncode == 0 and "s3://c/1" in now.stdout
    then = cli("show", "cli-model", "--as-of", str(t_created), "--url", shared_server.url)
    assert then.returncode == 0 and "(no versions)" in then.stdout
    for bad in (["show", "ghost", "--url", shared_server.url], ["show", "cli-model", "--as-of", "soon",
                                                                 "--url", shared_server.url],
                ["history", "cli-model", "--url", "http://127.0.0.1:9"], ["history"], ["frobnicate"]):
        out = cli(*bad)
        assert out.returncode == 2 and out.stderr.strip(), (bad, out)
        assert "Traceback" not in out.stderr


def test_kafka_registry_goes_through_the_broker_and_a_fresh_process_replays_it(tmp_path: Path) -> None:
    broker = TansuBroker(tmp_path / "tansu.log").start()
    first = ServerProcess(tmp_path / "a", ["--kafka", broker.bootstrap, "--ingest"], env=server_env(broker, "reg"))
    second = ServerProcess(tmp_path / "b", ["--kafka", broker.bootstrap, "--ingest"],
                           env={**server_env(broker, "reg"), "RUNLEDGER_KAFKA_GROUP": "fresh-replay"})
    try:
        first.start()
        with first.client() as c:
            assert c.get("/api/v1/health").json()["mode"] == "kafka"
            ok(c.post(f"{R}/models", json={"name": "k"}, headers={"X-Runledger-Actor": "ana"}))
            for i in range(3):
                ok(c.post(f"{R}/models/k/versions", json={"source": f"s3://k/{i}"}))
            ok(c.put(f"{R}/models/k/aliases/champion", json={"version": 2}))
            expected = ok(c.get(f"{R}/models/k"))
            trail = ok(c.get(f"{R}/models/k/history"))["entries"]
        first.stop()
        second.start()  # empty data folder, new consumer group: everything comes from the broker
        with second.client() as c:
            deadline = time.monotonic() + 60
            while True:
                r = c.get(f"{R}/models/k")
                if r.status_code == 200 and len(r.json()["versions"]) == 3 and r.json()["aliases"]:
                    break
                assert time.monotonic() < deadline, r.text
                time.sleep(0.2)
            replayed = r.json()
            assert {k: v for k, v in replayed.items() if k != "as_of_ms"} == \
                   {k: v for k, v in expected.items() if k != "as_of_ms"}
            assert ok(c.get(f"{R}/models/k/history"))["entries"] == trail
    finally:
        first.stop()
        second.stop()
        broker.stop()
