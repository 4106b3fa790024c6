"""``runledger serve --auth`` with the stock mlflow client: users and permissions through
``get_app_client("basic-auth")``, Basic and Bearer logins, API tokens, the audit actor, history as of a
time, SQL row filtering over every view, and the failed-login backoff."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from servers import ServerProcess

from query.sql.service import PUBLIC_VIEWS

pytestmark = pytest.mark.integration

ADMIN = ("admin", "admin-password-1")
M = "/api/2.0/mlflow"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = ServerProcess(tmp_path_factory.mktemp("auth") / "data", extra_args=["--auth"],
                      env={"RUNLEDGER_ADMIN_PASSWORD": ADMIN[1]}).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture
def mlflow_env(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Set the stock client's credential variables for one test."""
    def use(user: str | None = None, password: str | None = None, token: str | None = None) -> None:
        for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            monkeypatch.delenv(k, raising=False)
        if user is not None:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user)
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password or "")
        if token is not None:
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    return use


def ok(r: httpx.Response) -> Any:
    assert r.status_code == 200, r.text
    return r.json() if r.content else {}


def test_stock_client_users_and_permissions_end_to_end(srv: ServerProcess, mlflow_env: Any) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException, RestException
    from mlflow.server import get_app_client

    mlflow_env(*ADMIN)
    admin = get_app_client("basic-auth", tracking_uri=srv.url)
    user = admin.create_user("ana", "ana-password")
    assert (user.username, user.is_admin) == ("ana", False)
    admin.create_user("bob", "bob-password")
    client = mlflow.MlflowClient(srv.url)
    exp = client.create_experiment("team-ana")
    other = client.create_experiment("team-secret")
    admin.grant_user_permission("ana", "experiment", exp, "EDIT")
    admin.grant_user_permission("ana", "experiment", other, "NO_PERMISSIONS")
    assert admin.get_user_permission("ana", "experiment", exp).permission == "EDIT"
    assert admin.get_user_permission("bob", "experiment", exp).permission == "READ"  # the default

    mlflow_env("ana", "ana-password")
    ana = mlflow.MlflowClient(srv.url)
    run = ana.create_run(exp)
    ana.log_metric(run.info.run_id, "loss", 0.5, step=1)
    assert ana.get_run(run.info.run_id).data.metrics == {"loss": 0.5}
    with pytest.raises(RestException) as denied:
        ana.delete_run(run.info.run_id)  # EDIT does not delete (MANAGE does)
    assert denied.value.error_code == "PERMISSION_DENIED"
    with pytest.raises(RestException) as hidden:
        ana.get_experiment(other)
    assert hidden.value.error_code == "PERMISSION_DENIED"
    names = {e.name for e in ana.search_experiments()}
    assert "team-ana" in names and "team-secret" not in names
    mine = ana.create_experiment("ana-own")  # the creator may manage what they create
    ana.delete_experiment(mine)

    mlflow_env("bob", "bob-password")
    bob = mlflow.MlflowClient(srv.url)
    assert bob.get_run(run.info.run_id).info.run_id == run.info.run_id  # READ by default
    with pytest.raises(RestException) as refused:
        bob.log_metric(run.info.run_id, "loss", 0.1, step=2)
    assert refused.value.error_code == "PERMISSION_DENIED"

    mlflow_env("ana", "wrong-password")
    with pytest.raises(MlflowException):
        mlflow.MlflowClient(srv.url).get_run(run.info.run_id)

    # MLflow 2's per-resource routes, and admin user management
    with httpx.Client(base_url=srv.url, auth=ADMIN) as c:
        got = ok(c.get(f"{M}/experiments/permissions/get", params={"experiment_id": exp, "username": "ana"}))
        assert got["experiment_permission"]["permission"] == "EDIT"
        ok(c.patch(f"{M}/experiments/permissions/update",
                   json={"experiment_id": exp, "username": "ana", "permission": "MANAGE"}))
        ok(c.post(f"{M}/registered-models/permissions/create",
                  json={"name": "fraud", "username": "ana", "permission": "READ"}))
        r = c.post(f"{M}/registered-models/permissions/create",
                   json={"name": "fraud", "username": "ana", "permission": "READ"})
        assert r.status_code == 400 and r.json()["error_code"] == "RESOURCE_ALREADY_EXISTS"
        ok(c.request("DELETE", f"{M}/registered-models/permissions/delete", json={"name": "fraud", "username": "ana"}))
        assert c.request("DELETE", f"{M}/users/delete", json={"username": "admin"}).status_code == 400


def test_401_challenges_and_403_shapes(srv: ServerProcess) -> None:
    r = httpx.get(srv.url + f"{M}/experiments/search")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Basic realm="runledger", charset="UTF-8"'
    assert r.json()["error_code"] == "UNAUTHENTICATED"
    r = httpx.get(srv.url + "/api/v1/experiments", headers={"Authorization": "Basic !!!"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "UNAUTHENTICATED"
    r = httpx.get(srv.url + "/api/v1/experiments", headers={"Authorization": "Bearer rlt_not-a-token"})
    assert r.status_code == 401
    with httpx.Client(base_url=srv.url, auth=ADMIN) as c:
        ok(c.post(f"{M}/users/create", json={"username": "carl", "password": "carl-password"}))
    r = httpx.post(srv.url + f"{M}/users/create", json={"username": "x", "password": "xxxxxxxxxx"},
                   auth=("carl", "carl-password"))
    assert r.status_code == 403 and r.json()["error_code"] == "PERMISSION_DENIED" and r.json()["message"]
    r = httpx.post(srv.url + "/api/v1/admin/rebuild", auth=("carl", "carl-password"))
    assert r.status_code == 403 and r.json()["error"]["code"] == "PERMISSION_DENIED"
    assert httpx.get(srv.url + "/api/v1/health").status_code == 200  # probes need no login


def test_api_tokens_bearer_and_basic_then_revoked(srv: ServerProcess, mlflow_env: Any) -> None:
    import mlflow
    from mlflow.exceptions import MlflowException

    with httpx.Client(base_url=srv.url, auth=ADMIN) as c:
        ok(c.post(f"{M}/users/create", json={"username": "ci-bot", "password": "ci-bot-password"}))
        made = ok(c.post("/api/v1/auth/tokens", json={"name": "nightly", "username": "ci-bot"}))
        listed = ok(c.get("/api/v1/auth/tokens"))["tokens"]
    token = made["token"]
    assert token.startswith("rlt_") and all("token" not in t and token not in str(t) for t in listed)
    mlflow_env(token=token)
    assert mlflow.MlflowClient(srv.url).search_experiments() is not None
    me = ok(httpx.get(srv.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}))
    assert me["username"] == "ci-bot" and me["via"] == "token"
    assert ok(httpx.get(srv.url + "/api/v1/auth/me", auth=("ci-bot", token)))["via"] == "token"
    assert httpx.get(srv.url + "/api/v1/auth/me", auth=("someone-else", token)).status_code == 401
    # a token cannot mint tokens for others, and only its owner or an admin revokes it
    assert httpx.post(srv.url + "/api/v1/auth/tokens", json={"username": "admin"},
                      headers={"Authorization": f"Bearer {token}"}).status_code == 403
    ok(httpx.delete(srv.url + f"/api/v1/auth/tokens/{made['token_id']}", headers={"Authorization": f"Bearer {token}"}))
    assert httpx.get(srv.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    with pytest.raises(MlflowException):
        mlflow.MlflowClient(srv.url).search_experiments()


def test_the_audit_actor_is_the_login_and_headers_cannot_change_it(srv: ServerProcess) -> None:
    with httpx.Client(base_url=srv.url, auth=ADMIN) as c:
        ok(c.post(f"{M}/users/create", json={"username": "dora", "password": "dora-password"}))
    forged = {"X-Runledger-Actor": "admin", "X-User": "admin"}
    with httpx.Client(base_url=srv.url, auth=("dora", "dora-password"), headers=forged) as d:
        ok(d.post("/api/v1/registry/models", json={"name": "dora-model"}))
        ok(d.post("/api/v1/registry/models/dora-model/versions", json={"source": "s3://b/m"}))
        ok(d.post(f"{M}/registered-models/set-tag", json={"name": "dora-model", "key": "k", "value": "v"}))
        exp = ok(d.post(f"{M}/experiments/create", json={"name": "dora-exp"}))["experiment_id"]
        run = ok(d.post(f"{M}/runs/create", json={"experiment_id": exp}))["run"]["info"]["run_id"]
        history = ok(d.get("/api/v1/registry/models/dora-model/history"))["entries"]
    assert {e["actor"] for e in history} == {"dora"}
    sql = "SELECT DISTINCT actor FROM registry_events WHERE model_name = 'dora-model'"
    rows = ok(httpx.post(srv.url + "/api/v1/sql", json={"sql": sql}, auth=ADMIN))["data"]
    assert rows == [{"actor": "dora"}]
    with httpx.Client(base_url=srv.url, auth=ADMIN) as c:
        events = ok(c.get("/api/v1/auth/events"))["events"]
    grants = [e for e in events if e["type"] == "auth_experiment_permission_set" and e["body"]["experiment_id"] == exp]
    assert [(e["actor"], e["body"]["username"], e["body"]["permission"]) for e in grants] == [("dora", "dora", "MANAGE")]
    assert all("password_hash" not in e["body"] and "token_sha256" not in e["body"] for e in events)
    assert run


def test_users_and_grants_as_of_a_time(srv: ServerProcess) -> None:
    with httpx.Client(base_url=srv.url, auth=ADMIN) as c:
        ok(c.post(f"{M}/users/create", json={"username": "eve", "password": "eve-password"}))
        time.sleep(0.05)
        between = int(time.time() * 1000)
        time.sleep(0.05)
        ok(c.patch(f"{M}/users/update-admin", json={"username": "eve", "is_admin": True}))
        ok(c.request("DELETE", f"{M}/users/delete", json={"username": "eve"}))
        now = {u["username"] for u in ok(c.get("/api/v1/auth/users"))["users"]}
        then = {u["username"]: u for u in ok(c.get("/api/v1/auth/users", params={"as_of": between}))["users"]}
        before_all = ok(c.get("/api/v1/auth/users", params={"as_of": "2000-01-01T00:00:00Z"}))["users"]
    assert "eve" not in now and then["eve"]["is_admin"] is False and before_all == []


def test_sql_rows_only_of_readable_experiments_in_every_view(srv: ServerProcess) -> None:
    with httpx.Client(base_url=srv.url, auth=ADMIN) as c:
        ok(c.post(f"{M}/users/create", json={"username": "sqlu", "password": "sqlu-password"}))
        seen: dict[str, dict[str, str]] = {}
        for name in ("sql-open", "sql-closed"):
            exp = ok(c.post(f"{M}/experiments/create", json={"name": name}))["experiment_id"]
            run = ok(c.post(f"{M}/runs/create", json={"experiment_id": exp}))["run"]["info"]["run_id"]
            ok(c.post(f"{M}/runs/log-batch", json={"run_id": run, "metrics": [
                {"key": "m", "value": 1.0, "timestamp": 1, "step": 0}], "params": [{"key": "p", "value": "1"}],
                "tags": [{"key": "t", "value": "1"}]}))
            model = f"{name}-model"
            ok(c.post(f"{M}/registered-models/create", json={"name": model}))
            ok(c.post(f"{M}/model-versions/create", json={"name": model, "source": "s3://b/m", "run_id": run}))
            seen[name] = {"exp": exp, "run": run, "model": model}
        ok(c.post(f"{M}/experiments/permissions/create",
                  json={"experiment_id": seen["sql-closed"]["exp"], "username": "sqlu", "permission": "NO_PERMISSIONS"}))
        ok(c.post(f"{M}/registered-models/permissions/create",
                  json={"name": "sql-closed-model", "username": "sqlu", "permission": "NO_PERMISSIONS"}))
    closed, opened = seen["sql-closed"], seen["sql-open"]

    def rows(sql: str, who: tuple[str, str]) -> list[dict[str, Any]]:
        return list(ok(httpx.post(srv.url + "/api/v1/sql", json={"sql": sql}, auth=who))["data"])

    for view in PUBLIC_VIEWS:
        mine = rows(f"SELECT * FROM {view}", ("sqlu", "sqlu-password"))
        everything = rows(f"SELECT * FROM {view}", ADMIN)
        text_mine, text_all = str(mine), str(everything)
        for secret in (closed["run"], closed["model"]):
            assert secret not in text_mine, f"{view} leaks {secret}"
        assert any(secret in text_all for secret in (closed["run"], closed["exp"], closed["model"])), view
        assert any(mark in text_mine for mark in (opened["run"], opened["exp"], opened["model"])), view
        for r in mine:
            assert r.get("experiment_id") != closed["exp"] and r.get("run_id") != closed["run"], (view, r)
    # reaching around the filter: a qualified name, a join, a subquery
    for sql in ("SELECT * FROM runledger.metrics", "SELECT * FROM runledger_sql.runs"):
        r = httpx.post(srv.url + "/api/v1/sql", json={"sql": sql}, auth=("sqlu", "sqlu-password"))
        assert r.status_code == 400, sql
    joined = rows("SELECT r.run_id FROM runs AS r JOIN metrics AS m USING run_id "
                  "WHERE r.run_id IN (SELECT run_id FROM params)", ("sqlu", "sqlu-password"))
    assert closed["run"] not in str(joined) and opened["run"] in str(joined)


def test_failed_logins_slow_down_without_blocking_others(tmp_path: Any) -> None:
    # Its own server: the backoff it provokes is per client address too, and every test here comes from 127.0.0.1.
    srv = ServerProcess(tmp_path / "data", extra_args=["--auth"], env={"RUNLEDGER_ADMIN_PASSWORD": ADMIN[1]}).start()
    try:
        _slowed_down(srv)
    finally:
        srv.stop()


def _slowed_down(srv: ServerProcess) -> None:
    with httpx.Client(base_url=srv.url, auth=ADMIN) as c:
        ok(c.post(f"{M}/users/create", json={"username": "target", "password": "target-password"}))
        ok(c.get("/api/v1/auth/me"))  # admin's login is cached from here on

    def attempt() -> float:
        t0 = time.perf_counter()
        assert httpx.get(srv.url + "/api/v1/auth/me", auth=("target", "guess"), timeout=60).status_code == 401
        return time.perf_counter() - t0

    first = [attempt() for _ in range(3)]  # free failures: argon2's time only
    later = [attempt() for _ in range(3)]  # then 0.25 s, 0.5 s, 1 s held before the answer
    assert later[1] >= 0.25 and later[2] >= 0.5 and later[2] > first[0], (first, later)
    # while a slowed-down guess waits, the event loop serves everyone else at once
    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(attempt)
        time.sleep(0.05)
        t0 = time.perf_counter()
        ok(httpx.get(srv.url + "/api/v1/auth/me", auth=ADMIN))
        fast = time.perf_counter() - t0
        assert slow.result() > fast * 2 and fast < 0.5, (slow.result(), fast)
    # the right password still works for the real user (the backoff slows, it does not lock out)
    assert httpx.get(srv.url + "/api/v1/auth/me", auth=("target", "target-password"), timeout=60).status_code == 200


def test_refuses_to_start_without_an_admin_password(tmp_path: Any) -> None:
    s = ServerProcess(tmp_path / "data", extra_args=["--auth"], env={"RUNLEDGER_ADMIN_PASSWORD": ""})
    with pytest.raises((RuntimeError, TimeoutError)):
        s.start(timeout_s=60)
    s.stop()
    assert "RUNLEDGER_ADMIN_PASSWORD" in s.logs()


def test_cli_creates_the_first_admin_then_the_server_needs_no_password_in_its_environment(tmp_path: Any) -> None:
    import subprocess

    from servers import RUNLEDGER

    data = tmp_path / "data"
    out = subprocess.run([*RUNLEDGER, "auth", "create-user", "root", "--admin", "--password-stdin",
                          "--data-dir", str(data)], input="root-password-1\n", capture_output=True, text=True,
                         timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    token = subprocess.run([*RUNLEDGER, "auth", "create-token", "root", "--name", "ci", "--data-dir", str(data)],
                           capture_output=True, text=True, timeout=120, check=False).stdout.strip()
    s = ServerProcess(data, extra_args=["--auth"], env={"RUNLEDGER_ADMIN_PASSWORD": ""}).start()
    try:
        me = ok(httpx.get(s.url + "/api/v1/auth/me", auth=("root", "root-password-1")))
        assert me["is_admin"] is True
        assert ok(httpx.get(s.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}))["via"] == "token"
        events = ok(httpx.get(s.url + "/api/v1/auth/events", auth=("root", "root-password-1")))["events"]
        assert events[0]["actor"].startswith("runledger-cli:") and events[0]["type"] == "auth_user_created"
    finally:
        s.stop()


def test_graphql_applies_the_rest_rule_of_each_field(srv: ServerProcess) -> None:
    """The web UI's GraphQL calls cannot read what the REST routes refuse."""
    with httpx.Client(base_url=srv.url, auth=ADMIN, timeout=120) as c:  # the first /graphql imports mlflow
        ok(c.post(f"{M}/users/create", json={"username": "gina", "password": "gina-password"}))
        secret = ok(c.post(f"{M}/experiments/create", json={"name": "gql-secret"}))["experiment_id"]
        run_id = ok(c.post(f"{M}/runs/create", json={"experiment_id": secret}))["run"]["info"]["run_id"]
        ok(c.post(f"{M}/experiments/permissions/create",
                  json={"experiment_id": secret, "username": "gina", "permission": "NO_PERMISSIONS"}))
        query = {"query": "query Q($id: String) { mlflowGetRun(input: {runId: $id}) { run { info { runId } } } }",
                 "variables": {"id": run_id}}
        as_admin = ok(c.post("/graphql", json=query))
        assert as_admin["data"]["mlflowGetRun"]["run"]["info"]["runId"] == run_id
    r = httpx.post(srv.url + "/graphql", json=query, auth=("gina", "gina-password"), timeout=60)
    body = r.json()
    assert body["data"]["mlflowGetRun"] is None and "Permission denied" in str(body["errors"]), body
    r = httpx.get(srv.url + f"{M}/runs/get", params={"run_id": run_id}, auth=("gina", "gina-password"), timeout=60)
    assert r.status_code == 403
    assert httpx.post(srv.url + "/graphql", json=query).status_code == 401


def test_runledger_producer_sends_the_mlflow_credentials(srv: ServerProcess, tmp_path: Any,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import producer
    from producer.errors import ContractError
    from producer.transport import HttpTransport

    with httpx.Client(base_url=srv.url, auth=ADMIN) as c:
        ok(c.post(f"{M}/users/create", json={"username": "trainer", "password": "trainer-password"}))
        token = ok(c.post("/api/v1/auth/tokens", json={"username": "trainer", "name": "job"}))["token"]
    monkeypatch.delenv("MLFLOW_TRACKING_USERNAME", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", token)
    run = producer.start_run(experiment="trainer-exp", tracking_uri=srv.url, spill_dir=str(tmp_path))
    run.log_metrics({"loss": 0.5}, step=0)
    run.log_metrics({"loss": 0.25}, step=1)
    run.finish()
    assert producer.get_producer(srv.url).refusals == []
    state = ok(httpx.get(srv.url + f"/api/v1/runs/{run.run_id}", headers={"Authorization": f"Bearer {token}"}))
    assert state["metrics"]["loss"]["count"] == 2 and state["status"] == "FINISHED"
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN")
    anonymous = HttpTransport(srv.url)
    try:
        with pytest.raises(ContractError, match="401"):
            anonymous.send([])
    finally:
        anonymous.close()


def test_serving_beyond_loopback_without_auth_warns(tmp_path: Any) -> None:
    s = ServerProcess(tmp_path / "data", extra_args=["--host", "0.0.0.0"]).start()
    try:
        assert "WARNING: serving on 0.0.0.0 without --auth" in s.logs()
    finally:
        s.stop()
    quiet = ServerProcess(tmp_path / "data2").start()
    try:
        assert "without --auth" not in quiet.logs()
    finally:
        quiet.stop()


def test_a_renamed_model_keeps_its_grants(srv: ServerProcess) -> None:
    with httpx.Client(base_url=srv.url, auth=ADMIN) as c:
        ok(c.post(f"{M}/users/create", json={"username": "fay", "password": "fay-password"}))
        ok(c.post(f"{M}/registered-models/create", json={"name": "churn"}))
        ok(c.post(f"{M}/registered-models/permissions/create",
                  json={"name": "churn", "username": "fay", "permission": "NO_PERMISSIONS"}))
        ok(c.post(f"{M}/registered-models/rename", json={"name": "churn", "new_name": "churn-v2"}))
        got = ok(c.get(f"{M}/registered-models/permissions/get", params={"name": "churn-v2", "username": "fay"}))
        assert got["registered_model_permission"]["permission"] == "NO_PERMISSIONS"
    r = httpx.get(srv.url + f"{M}/registered-models/get", params={"name": "churn-v2"}, auth=("fay", "fay-password"))
    assert r.status_code == 403
