"""What ``--auth`` costs per request: the hot path in-process, and end to end against real servers.

1. **In-process** (no network): the work auth adds to a request once a credential was verified once —
   parse the ``Authorization`` header, look the credential up (keyed BLAKE2b for a password, SHA-256 for
   a token), find the route's rule and decide — over a state of 1,000 users and 20,000 grants; median
   of many calls. argon2 itself (the first login of a credential, then cached) is timed apart.
2. **End to end**: two ``runledger serve`` (embedded), one with ``--auth``, the same ``GET
   /api/2.0/mlflow/runs/get`` (a run read: rule ``run``/read, the run's experiment looked up once, then
   cached) and ``GET server-info`` (no store: HTTP + middleware + rule only), sequentially over one
   keep-alive connection; p50 / p95 per server, as a non-admin reader with Basic and with a Bearer token,
   and without auth.

    python benchmarks/auth_overhead.py [--requests 300]
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import httpx

import auth
from producer import auth_events as ae
from producer.events import Event, Source
from query.auth.rules import rule_for


def _state(users: int = 1000, grants: int = 20_000) -> auth.AuthState:
    src = Source(host="b", pid=1, rank=0)
    bodies: list[ae.Body] = [ae.UserCreated(username=f"u{i}", password_hash="x") for i in range(users)]
    bodies += [ae.ExperimentPermissionSet(experiment_id=str(i % 5000), username=f"u{i % users}", permission="READ")
               for i in range(grants)]
    bodies.append(ae.ApiTokenCreated(token_id="t", username="u7", name="ci", token_sha256=auth.token_sha256("rlt_x")))
    return auth.fold(Event(id=f"{i:032x}", type=b.TYPE, entity=ae.AUTH_ENTITY, ts_ms=i, body=b, source=src)
                     for i, b in enumerate(bodies, 1))


def in_process(n: int = 50_000) -> dict[str, float]:
    state = _state()
    verified = {auth.cache_key("u7", "pw-of-u7"): "x"}
    basic = "Basic " + base64.b64encode(b"u7:pw-of-u7").decode()
    bearer = "Bearer rlt_x"

    def one(header: str) -> bool:
        creds = auth.parse_authorization(header)
        if isinstance(creds, auth.BasicCredentials):
            user = state.users[creds.username]
            assert verified.get(auth.cache_key(creds.username, creds.password)) == user.password_hash
        else:
            assert creds is not None
            tid = state.token_ids_by_sha256[auth.token_sha256(creds.token)]
            user = state.users[state.tokens[tid].username]
        principal = auth.Principal(user.username, user.is_admin, "basic")
        rule = rule_for("/runs/get", "GET")
        assert rule is not None
        return auth.may(state, principal, "experiment", "7", rule.action, auth.NO_PERMISSIONS)

    out: dict[str, float] = {}
    for name, header in (("basic_cached", basic), ("bearer", bearer)):
        samples = []
        for _ in range(n // 100):
            t0 = time.perf_counter()
            for _ in range(100):
                one(header)
            samples.append((time.perf_counter() - t0) / 100)
        out[f"{name}_us"] = statistics.median(samples) * 1e6
    digest = auth.hash_password("pw-of-u7")
    t0 = time.perf_counter()
    for _ in range(5):
        auth.verify_password(digest, "pw-of-u7")
    out["argon2_verify_ms"] = (time.perf_counter() - t0) / 5 * 1000
    return out


def _timed(client: httpx.Client, path: str, n: int) -> tuple[float, float]:
    lat = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = client.get(path)
        lat.append(time.perf_counter() - t0)
        assert r.status_code == 200, r.text
    lat.sort()
    return lat[len(lat) // 2] * 1000, lat[int(len(lat) * 0.95)] * 1000


def end_to_end(n: int) -> dict[str, tuple[float, float]]:
    from servers import ServerProcess

    out: dict[str, tuple[float, float]] = {}
    admin = ("admin", "admin-password-1")
    with tempfile.TemporaryDirectory() as tmp:
        on = ServerProcess(Path(tmp) / "on", extra_args=["--auth", "--no-access-log"],
                           env={"RUNLEDGER_ADMIN_PASSWORD": admin[1]}).start()
        off = ServerProcess(Path(tmp) / "off", extra_args=["--no-access-log"]).start()
        try:
            runs = {}
            for s, who in ((on, admin), (off, None)):
                with httpx.Client(base_url=s.url, auth=who, timeout=60) as c:
                    exp = c.post("/api/2.0/mlflow/experiments/create", json={"name": "bench"}).json()["experiment_id"]
                    runs[s.url] = c.post("/api/2.0/mlflow/runs/create",
                                         json={"experiment_id": exp}).json()["run"]["info"]["run_id"]
                    if who:
                        c.post("/api/2.0/mlflow/users/create", json={"username": "reader", "password": "reader-pw-1"})
                        token = c.post("/api/v1/auth/tokens", json={"username": "reader"}).json()["token"]
            clients = {
                "auth off": httpx.Client(base_url=off.url, timeout=60),
                "auth on, Basic (reader)": httpx.Client(base_url=on.url, auth=("reader", "reader-pw-1"), timeout=60),
                "auth on, Bearer token (reader)": httpx.Client(base_url=on.url, timeout=60,
                                                               headers={"Authorization": f"Bearer {token}"}),
            }
            for _ in range(2):  # two rounds, interleaved: the machine's load changes over time
                for name, c in clients.items():
                    run_get = f"/api/2.0/mlflow/runs/get?run_id={runs[str(c.base_url).rstrip('/')]}"
                    # server-info touches no store: what remains is HTTP, the middleware and the rule
                    for what, path in (("runs/get", run_get), ("server-info", "/api/2.0/mlflow/server-info")):
                        _timed(c, path, 50)  # warm: argon2 once, the run's experiment once
                        p50, p95 = _timed(c, path, n)
                        key = f"{what}, {name}"
                        prev = out.get(key)
                        out[key] = (p50, p95) if prev is None else (min(prev[0], p50), min(prev[1], p95))
            for c in clients.values():
                c.close()
        finally:
            on.stop()
            off.stop()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=300)
    args = p.parse_args()
    for k, v in in_process().items():
        print(f"in-process {k}: {v:.2f}")
    for name, (p50, p95) in end_to_end(args.requests).items():
        print(f"end to end GET {name}: p50 {p50:.2f} ms, p95 {p95:.2f} ms (best of 2 rounds)")


if __name__ == "__main__":
    main()
