"""The fast path of small in-memory MLflow reads (query/mlflow_api/fast_path.py) answers what the routed
endpoint answers, byte for byte, and hands everything else — errors, malformed bodies, auth — to the route.

Each check runs in a child process (chDB admits one data folder per process) on the real embedded app:
the answer through the whole middleware stack is compared with the answer of the stack *below*
``FastReads`` (the routed endpoint alone), and a counter on that inner stack shows which requests the fast
path answered itself.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
from inproc import in_child

Call = tuple[str, str, bytes, bytes]  # method, path, query string, body


def _scope(method: str, path: str, query: bytes, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "path": path,
            "raw_path": path.encode(), "query_string": query, "root_path": "", "scheme": "http",
            "headers": [(b"host", b"testserver"), (b"content-type", b"application/json"), *headers],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 5000)}


async def _ask(app: Any, call: Call, headers: list[tuple[bytes, bytes]], root: Any) -> tuple[int, bytes, bytes]:
    """``call`` sent to the ASGI callable ``app`` (the whole app ``root``, or a layer of its stack)."""
    method, path, query, body = call
    sent: list[dict[str, Any]] = []
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal done
        if not done:
            done = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = _scope(method, path, query, headers)
    scope["app"] = root  # as FastAPI sets it before its middleware
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    content_type = dict(start["headers"]).get(b"content-type", b"")
    return start["status"], b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"), content_type


def _fast_reads_layer(app: Any) -> Any:
    from query.mlflow_api.fast_path import FastReads

    layer = app.middleware_stack
    while not isinstance(layer, FastReads):
        layer = layer.app
    return layer


def compare_fast_and_routed(data_dir: str, auth: bool) -> dict[str, Any]:
    from query.app import create_app
    from query.settings import Settings

    settings = Settings.from_env(data_dir=Path(data_dir), auth=auth, admin_password="pw-for-tests" if auth else None)
    app = create_app(settings)

    async def scenario() -> dict[str, Any]:
        async with app.router.lifespan_context(app):
            app.middleware_stack = app.build_middleware_stack()
            fast = _fast_reads_layer(app)
            inner, routed = fast.app, []

            async def counting(scope: Any, receive: Any, send: Any) -> None:
                routed.append(scope["path"])
                await inner(scope, receive, send)

            fast.app = counting
            headers = [(b"authorization", b"Basic YWRtaW46cHctZm9yLXRlc3Rz")] if auth else []  # admin:pw-for-tests

            async def ask(call: Call) -> tuple[int, bytes, bytes]:
                return await _ask(app, call, headers, app)

            api = "/api/2.0/mlflow"
            status, body, _ = await ask(("POST", f"{api}/experiments/create", b"", b'{"name": "fast"}'))
            assert status == 200, body
            eid = orjson.loads(body)["experiment_id"]
            status, body, _ = await ask(("POST", f"{api}/runs/create", b"", orjson.dumps({"experiment_id": eid})))
            rid = orjson.loads(body)["run"]["info"]["run_id"]
            batch = {"run_id": rid, "params": [{"key": "lr", "value": "0.1"}], "tags": [{"key": "t", "value": "v"}],
                     "metrics": [{"key": "loss", "value": 0.5, "timestamp": 1, "step": 0}]}
            await ask(("POST", f"{api}/runs/log-batch", b"", orjson.dumps(batch)))
            await ask(("POST", f"{api}/registered-models/create", b"", b'{"name": "m"}'))
            await ask(("POST", f"{api}/model-versions/create", b"",
                       orjson.dumps({"name": "m", "source": f"runs:/{rid}/model", "run_id": rid})))

            calls: dict[str, Call] = {
                "runs/get": ("GET", f"{api}/runs/get", f"run_id={rid}".encode(), b""),
                "runs/get ajax 3.0": ("GET", "/ajax-api/3.0/mlflow/runs/get", f"run_uuid={rid}".encode(), b""),
                "experiments/search POST": ("POST", f"{api}/experiments/search", b"",
                                            b'{"max_results": 10, "filter": "name = \'fast\'"}'),
                "experiments/search GET repeated keys": ("GET", f"{api}/experiments/search",
                                                         b"max_results=5&order_by=name+DESC&order_by=creation_time",
                                                         b""),
                "experiments/get": ("GET", f"{api}/experiments/get", f"experiment_id={eid}".encode(), b""),
                "experiments/get-by-name": ("GET", f"{api}/experiments/get-by-name", b"experiment_name=fast", b""),
                "registered-models/search": ("GET", f"{api}/registered-models/search", b"max_results=5", b""),
                "model-versions/search": ("GET", f"{api}/model-versions/search", b"filter=name%3D%27m%27", b""),
                "model-versions/get": ("GET", f"{api}/model-versions/get", b"name=m&version=1", b""),
                # errors: answered by the route, in MLflow's shape
                "unknown run": ("GET", f"{api}/runs/get", b"run_id=" + b"0" * 32, b""),
                "no run id": ("GET", f"{api}/runs/get", b"", b""),
                "body not JSON": ("POST", f"{api}/experiments/search", b"", b"{not json"),
                "body not an object": ("POST", f"{api}/experiments/search", b"", b"[1, 2]"),
                "bad max_results": ("GET", f"{api}/experiments/search", b"max_results=abc", b""),
                "unknown experiment": ("GET", f"{api}/experiments/get", b"experiment_id=999999", b""),
                # not in the table: routed
                "a write": ("POST", f"{api}/runs/set-tag", b"", orjson.dumps({"run_id": rid, "key": "k", "value": "v"})),
                "health": ("GET", "/health", b"", b""),
            }
            out: dict[str, Any] = {}
            for name, call in calls.items():
                routed.clear()
                whole = await ask(call)
                took_route = list(routed)
                routed.clear()
                below = await _ask(inner, call, headers, app) if call[1] != "/health" else whole
                out[name] = {"status": whole[0], "same": whole == below, "routed": bool(took_route),
                             "content_type": whole[2].decode(), "body": whole[1].decode()}
            return out

    return asyncio.run(scenario())


def test_fast_reads_answer_as_the_route_and_leave_errors_and_writes_to_it(tmp_path: Path) -> None:
    out = in_child(compare_fast_and_routed, str(tmp_path / "data"), False)
    fast = ["runs/get", "runs/get ajax 3.0", "experiments/search POST", "experiments/search GET repeated keys",
            "experiments/get", "experiments/get-by-name", "registered-models/search", "model-versions/search",
            "model-versions/get"]
    for name in fast:
        assert out[name]["status"] == 200, (name, out[name])
        assert out[name]["same"], (name, out[name])
        assert not out[name]["routed"], f"{name} went through the router"
        assert out[name]["content_type"] == "application/json"
    assert '"name":"fast"' in out["experiments/search POST"]["body"]
    assert '"key":"lr","value":"0.1"' in out["runs/get"]["body"]
    for name, status, code in [("unknown run", 404, "RESOURCE_DOES_NOT_EXIST"), ("no run id", 400, "INVALID_PARAMETER_VALUE"),
                               ("body not JSON", 400, "INVALID_PARAMETER_VALUE"),
                               ("body not an object", 400, "INVALID_PARAMETER_VALUE"),
                               ("bad max_results", 400, "INVALID_PARAMETER_VALUE"),
                               ("unknown experiment", 404, "RESOURCE_DOES_NOT_EXIST")]:
        assert out[name]["status"] == status, (name, out[name])
        assert code in out[name]["body"], (name, out[name])
        assert out[name]["routed"] and out[name]["same"], (name, out[name])
    assert out["a write"]["status"] == 200 and out["a write"]["routed"]
    assert out["health"]["status"] == 200 and out["health"]["routed"]


def test_with_auth_on_every_read_takes_the_route(tmp_path: Path) -> None:
    out = in_child(compare_fast_and_routed, str(tmp_path / "data"), True)
    for name in ["runs/get", "experiments/search POST", "registered-models/search"]:
        assert out[name]["status"] == 200, (name, out[name])
        assert out[name]["routed"], f"{name} skipped the auth checks"
