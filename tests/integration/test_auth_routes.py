"""Every route of the app, checked against anonymous, reader, editor, manager and admin on a real
``runledger serve --auth``: no route ships without a declared rule, and each rule holds.

The route list comes from the app itself (``app.routes``, walking included routers), so a route added
anywhere without a rule in ``query/auth/rules.py`` fails here. The server's default permission is
NO_PERMISSIONS, so "any user" and "per-resource" rules are told apart; the reader, editor and manager
hold READ, EDIT, MANAGE on one experiment and one registered model, and requests name those.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

import httpx
import pytest
from fastapi.routing import APIRoute
from servers import ServerProcess

from query.app import create_app
from query.auth.rules import RULES, Rule, rule_for
from query.settings import Settings

pytestmark = pytest.mark.integration

ADMIN = ("admin", "admin-password-1")
ROLES = {"reader": "READ", "editor": "EDIT", "manager": "MANAGE"}
PASSWORD = "role-password-1"


class Endpoint(NamedTuple):
    full_path: str
    """As served (with its prefix); path parameters still in braces."""
    route_path: str
    """As its router declares it: the key of RULES."""
    method: str


def app_endpoints() -> tuple[list[Endpoint], list[str]]:
    """(every API endpoint of the app, paths of the other routes: docs, mounts, static files)."""
    app = create_app(Settings())
    endpoints: list[Endpoint] = []
    others: list[str] = []

    def walk(routes: list[Any], prefix: str) -> None:
        for r in routes:
            if isinstance(r, APIRoute):
                endpoints.extend(Endpoint(prefix + r.path, r.path, m) for m in sorted(r.methods))
            elif hasattr(r, "original_router"):  # FastAPI >= 0.165 keeps included routers as one route each
                walk(r.original_router.routes, prefix + r.include_context.prefix)
            elif hasattr(r, "path"):
                others.append(prefix + r.path)
    walk(list(app.routes), "")
    return endpoints, others


ENDPOINTS, OTHER_PATHS = app_endpoints()


def test_every_route_has_a_declared_rule_and_every_rule_a_route() -> None:
    missing = sorted({(e.route_path, e.method) for e in ENDPOINTS if rule_for(e.route_path, e.method) is None})
    assert missing == [], f"routes without an access rule in query/auth/rules.py: {missing}"
    stale = sorted(set(RULES) - {(e.route_path, e.method) for e in ENDPOINTS})
    assert stale == [], f"rules for routes that do not exist: {stale}"
    assert len(ENDPOINTS) > 200 and len({e.route_path for e in ENDPOINTS}) > 100


def test_a_route_without_a_rule_is_caught() -> None:
    assert rule_for("/api/v1/brand-new", "GET") is None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    s = ServerProcess(tmp_path_factory.mktemp("auth-routes") / "data", extra_args=["--auth"],
                      env={"RUNLEDGER_ADMIN_PASSWORD": ADMIN[1], "RUNLEDGER_AUTH_DEFAULT_PERMISSION": "NO_PERMISSIONS",
                           "RUNLEDGER_ACCESS_LOG": "false"}).start()
    try:
        with httpx.Client(base_url=s.url, auth=ADMIN, timeout=60) as admin:
            def ok(method: str, path: str, **kw: Any) -> dict[str, Any]:
                r = admin.request(method, path, **kw)
                assert r.status_code == 200, (path, r.text)
                return r.json() if r.content else {}
            m = "/api/2.0/mlflow"
            exp = ok("POST", f"{m}/experiments/create", json={"name": "guarded"})["experiment_id"]
            run = ok("POST", f"{m}/runs/create", json={"experiment_id": exp})["run"]["info"]["run_id"]
            lm = ok("POST", f"{m}/logged-models", json={"experiment_id": exp, "name": "lm"})["model"]["info"]["model_id"]
            ok("POST", f"{m}/registered-models/create", json={"name": "guarded-model"})
            ok("POST", f"{m}/model-versions/create", json={"name": "guarded-model", "source": "s3://b/m"})
            for role, permission in ROLES.items():
                ok("POST", f"{m}/users/create", json={"username": role, "password": PASSWORD})
                ok("POST", f"{m}/experiments/permissions/create",
                   json={"experiment_id": exp, "username": role, "permission": permission})
                ok("POST", f"{m}/registered-models/permissions/create",
                   json={"name": "guarded-model", "username": role, "permission": permission})
            ok("POST", f"{m}/users/create", json={"username": "plain", "password": PASSWORD})
            yield {"server": s, "exp": exp, "run": run, "lm": lm, "model": "guarded-model"}
    finally:
        s.stop()


def _fill(endpoint: Endpoint, w: dict[str, Any], role: str) -> tuple[str, dict[str, Any]]:
    """A concrete request for the endpoint that names the guarded experiment / run / model."""
    path_values = {"experiment_id": w["exp"], "run_id": w["run"], "model_id": w["lm"], "name": w["model"],
                   "key": "k", "version": "1", "alias": "a", "tag_key": "k", "path": f"{w['exp']}/x.txt",
                   "token_id": "0" * 32}
    path = re.sub(r"\{(\w+)(?::\w+)?\}", lambda mt: str(path_values[mt.group(1)]), endpoint.full_path)
    params: dict[str, Any] = {"experiment_id": w["exp"], "run_id": w["run"], "name": w["model"],
                              "experiment_name": "guarded", "experiment_ids": [w["exp"]], "run_ids": [w["run"]],
                              "uri": f"models:/{w['model']}/1", "path": w["exp"], "username": "reader",
                              "password": PASSWORD, "current_password": PASSWORD, "resource_type": "experiment",
                              "resource_id": w["exp"], "permission": "READ", "key": "k", "value": "v",
                              "version": "1", "max_results": 1}
    if endpoint.route_path == "/api/v1/auth/tokens":
        params = {"name": "ci"}  # a token for oneself (another user's needs an admin: test_auth_server.py)
    if endpoint.route_path in ("/api/v1/experiments", "/experiments/create", "/registered-models/create",
                               "/api/v1/registry/models") and endpoint.method == "POST":
        params["name"] = f"created-by-{role}"  # its own new resource (ensuring one it may not read is a 403)
    if endpoint.route_path == "/users/delete":
        params["username"] = "nobody"  # the roles must outlive the test
    return path, params


def _expected(rule: Rule, role: str) -> bool:
    """Whether ``role`` may pass ``rule`` on the guarded resources."""
    if rule.need == "public":
        return True
    if role == "anonymous":
        return False
    if rule.need == "user" or role == "admin":
        return True
    if rule.need == "admin":
        return False
    if rule.need == "self_or_admin":
        return role == "reader"
    if role == "plain":
        return False
    granted = {"reader": {"read"}, "editor": {"read", "update"},
               "manager": {"read", "update", "delete", "manage"}}[role]
    return rule.action in granted


@pytest.mark.parametrize("role", ["anonymous", "plain", "reader", "editor", "manager", "admin"])
def test_every_route_against_every_role(world: dict[str, Any], role: str) -> None:
    s: ServerProcess = world["server"]
    creds = None if role == "anonymous" else (ADMIN if role == "admin" else (role, PASSWORD))
    wrong = []
    # Destructive calls (deletes) come last, so they cannot change what the others see.
    order = sorted(ENDPOINTS, key=lambda e: (e.method == "DELETE" or "delete" in e.route_path, e.full_path))
    with httpx.Client(base_url=s.url, auth=creds, timeout=60) as c:
        for e in order:
            rule = rule_for(e.route_path, e.method)
            assert rule is not None
            path, params = _fill(e, world, role)
            if e.method in ("GET", "DELETE") and e.full_path.startswith(("/api/2.0/", "/api/3.0/", "/ajax-api/")) \
                    and e.method == "GET":
                r = c.request(e.method, path, params=params)
            elif e.method == "GET":
                r = c.request(e.method, path, params={k: v for k, v in params.items() if not isinstance(v, list)})
            else:
                r = c.request(e.method, path, json=params)
            allowed = _expected(rule, role)
            status = r.status_code
            if allowed and status in (401, 403):
                wrong.append(f"{role} refused {e.method} {e.full_path} ({rule}): {status} {r.text[:150]}")
            if not allowed:
                want = 401 if role == "anonymous" else 403
                if status != want:
                    wrong.append(f"{role} got {status} instead of {want} on {e.method} {e.full_path} ({rule})")
                elif status == 401:
                    assert r.headers["www-authenticate"].startswith('Basic realm="runledger"')
                else:
                    body = r.json()
                    code = body.get("error_code") or body.get("error", {}).get("code")
                    assert code == "PERMISSION_DENIED", body
        for p in OTHER_PATHS:
            r = c.get(p.replace("{path:path}", "index.html"))
            if role == "anonymous" and r.status_code != 401:
                wrong.append(f"anonymous got {r.status_code} on {p}")
            if role != "anonymous" and r.status_code in (401, 403):
                wrong.append(f"{role} refused {p}: {r.status_code}")
    assert wrong == []


def test_paths_outside_any_route_need_a_login_too(world: dict[str, Any]) -> None:
    s: ServerProcess = world["server"]
    for path in ("/", "/static/app.js", "/no/such/page", "/docs", "/openapi.json"):
        r = httpx.get(s.url + path)
        assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Basic"), path
        assert httpx.get(s.url + path, auth=("reader", PASSWORD)).status_code not in (401, 403), path
