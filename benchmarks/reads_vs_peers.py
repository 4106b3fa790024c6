"""Reads: runledger vs FastTrackML vs the stock MLflow server, same data, same calls, in one run.

Starts the three servers on this machine — ``runledger serve`` (embedded chDB, temporary data folder),
FastTrackML (``fml server`` on its own SQLite file) and the stock ``mlflow server`` (PostgreSQL where it can
run here, else SQLite; ``--mlflow-backend``) — loads the SAME data into each through the stock MLflow client
(``MlflowClient.log_batch`` in chunks of at most 1,000 metrics / 100 params; identical run names, params,
tags, timestamps and metric values), then times the same reads against each, through the stock client or, for
the UI's ``ajax-api`` calls, plain HTTP:

* ``search_runs`` in an experiment of ``--search-runs`` small runs (loss at steps 0..2, acc, 5 params, 2
  tags each) with ``metrics.loss < 0.5``, ``order_by=["metrics.loss ASC"]``, first page (``max_results=100``);
* ``get_run`` of a full run (its ``--params`` params, tags and the latest value of its ``--keys`` metrics);
* ``get_metric_history`` of one key of a full run (all ``--steps`` points);
* ``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk-interval`` for ``--bulk-runs`` runs of one key
  (``max_results=--bulk-max-results`` per run: the MLflow UI's chart read);
* ``GET /ajax-api/2.0/mlflow/metrics/get-history-bulk`` for the same runs, full (the older UI call, the
  only multi-run history call FastTrackML serves); MLflow's handler answers at most 25,000 points in all,
  runs in run-id order, and that is what is checked;
* ``search_experiments`` (``--experiments`` extra empty experiments besides the two with data);
* ``search_registered_models`` and ``search_model_versions`` (one model with ``--model-versions`` versions).

Every timed answer is checked (run names and order, params, tags, counts, every metric value against the
formula it was logged from): a wrong answer is reported as wrong, never timed as a result. A call a server
does not have (its answer is ``ENDPOINT_NOT_FOUND``) is reported as n/a with that answer. Seeding is not
timed. Repetitions go round-robin over the servers (one call each, in turn) after the warm-up, so a change
in machine load hits every column alike.

    python -m benchmarks.reads_vs_peers                    # 4 runs x 20 keys x 4,000 steps, 1,000 search runs
    python -m benchmarks.reads_vs_peers --systems runledger,mlflow --repeat 50
    python benchmarks/reads_vs_peers.py --search-runs 200 --repeat 5 --out /tmp/r   # quicker

Writes ``benchmarks/results/reads_vs_peers-<YYYY-MM-DD>.md`` and ``.json`` (with the machine's load average
and every version) and prints the table. ``--workdir`` keeps the servers' data; ``--hold N`` keeps the
servers up N seconds after the reads (to attach ``py-spy``).
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as dt
import importlib.metadata as md
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from benchmarks.loadgen.fasttrackml import FastTrackMLServer, fml_version
from benchmarks.loadgen.systems import MlflowServer, RunledgerEmbedded, mlflow_backend, tree_peak_rss_mb

RESULTS = REPO / "benchmarks" / "results"
SYSTEMS = ("runledger", "fasttrackml", "mlflow")
MAIN_EXP, SEARCH_EXP, MODEL = "reads-main", "reads-search", "reads-model"
BASE_TS = 1_767_225_600_000  # 2026-01-01T00:00:00Z in ms: every system gets the same timestamps
SEARCH_FILTER, SEARCH_ORDER, SEARCH_PAGE = "metrics.loss < 0.5", "metrics.loss ASC", 100
SEARCH_PARAMS = 5
LEGACY_BULK_MAX = 25_000


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ----------------------------------------------------------------------------------------------- the data


@dataclass(frozen=True)
class Workload:
    runs: int = 4
    keys: int = 20
    steps: int = 4000
    params: int = 50
    search_runs: int = 1000
    bulk_runs: int = 10
    bulk_max_results: int = 1000
    experiments: int = 20
    model_versions: int = 5
    batch: int = 1000

    @property
    def points(self) -> int:
        return self.runs * self.keys * self.steps + max(0, self.bulk_runs - self.runs) * self.steps


def key_name(j: int) -> str:
    return f"m{j:02d}"


HISTORY_KEY = key_name(0)


def value(run: int, key: int, step: int) -> float:
    """The value logged for (run, key, step): loss-like, distinct per series, 9 decimals (exact in JSON)."""
    return round(1.0 / (1.0 + step / 500.0) + 0.01 * key + 0.001 * run
                 + ((step * 7919 + key * 131 + run * 17) % 997) * 1e-6, 9)


def main_run_name(r: int, w: Workload) -> str:
    return f"main-{r}" if r < w.runs else f"bulk-{r}"


def main_tags(r: int) -> dict[str, str]:
    return {"team": "bench", "variant": f"v{r % 2}", "purpose": "reads_vs_peers"}


def main_params(r: int, w: Workload) -> dict[str, str]:
    return {f"p{i:03d}": f"{r}-{i * 37 % 101}" for i in range(w.params)}


def search_loss(i: int, n: int) -> float:
    """A permutation of (k + 0.5) / n over the runs (7919 is prime): every loss is distinct."""
    return round(((i * 7919) % n + 0.5) / n, 9)


def search_run_name(i: int) -> str:
    return f"s-{i:05d}"


def search_params(i: int) -> dict[str, str]:
    return {"lr": str(10 ** -(1 + i % 4)), "seed": str(i), "batch": str(32 << (i % 3)), "optimizer":
            ("adam", "sgd")[i % 2], "layers": str(2 + i % 6)}


def expected_search_page(n: int) -> tuple[int, list[str]]:
    """(runs matching the filter, names of the first page in order)."""
    hits = sorted((search_loss(i, n), search_run_name(i)) for i in range(n) if search_loss(i, n) < 0.5)
    return len(hits), [name for _, name in hits[:SEARCH_PAGE]]


@dataclass
class Loaded:
    """What was logged into one system: its ids for the names above, and what it could not take."""

    main_eid: str = ""
    search_eid: str = ""
    main_ids: list[str] = field(default_factory=list)  # index = run number (full runs, then bulk-only runs)
    artifact_uris: list[str] = field(default_factory=list)
    registry: str | None = None  # None: the model and its versions exist; else why not (n/a)
    seconds: float = 0.0
    calls: int = 0


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def mlflow_error(exc: Exception) -> tuple[int | None, str]:
    """(HTTP status, error code) of an MlflowException from the REST store."""
    code = getattr(exc, "error_code", "") or ""
    status = exc.get_http_status_code() if hasattr(exc, "get_http_status_code") else None
    return status, str(code)


def load(uri: str, w: Workload, threads: int) -> Loaded:
    """Log the workload into one server through the stock client; the same calls for every server."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri)
    out = Loaded()
    t0 = time.perf_counter()
    calls = 0
    out.main_eid = client.create_experiment(MAIN_EXP)
    out.search_eid = client.create_experiment(SEARCH_EXP)
    for i in range(w.experiments):
        client.create_experiment(f"reads-extra-{i:03d}")
    calls += 2 + w.experiments
    total_main = max(w.runs, w.bulk_runs)
    for r in range(total_main):
        run = client.create_run(out.main_eid, start_time=BASE_TS, tags=main_tags(r), run_name=main_run_name(r, w))
        out.main_ids.append(run.info.run_id)
        out.artifact_uris.append(run.info.artifact_uri)
        calls += 1

    def main_batches(r: int) -> Iterator[tuple[str, dict[str, Any]]]:
        run_id = out.main_ids[r]
        if r < w.runs:
            params = [Param(k, v) for k, v in main_params(r, w).items()]
            for chunk in _batches(params, 100):
                yield run_id, {"params": chunk}
        keys = range(w.keys) if r < w.runs else range(1)
        metrics = [Metric(key_name(j), value(r, j, s), BASE_TS + 10 * s, s) for s in range(w.steps) for j in keys]
        for chunk in _batches(metrics, w.batch):
            yield run_id, {"metrics": chunk}

    def search_run(i: int) -> int:
        loss = search_loss(i, w.search_runs)
        run = client.create_run(out.search_eid, start_time=BASE_TS + i, run_name=search_run_name(i),
                                tags={"kind": "search", "shard": str(i % 8)})
        client.log_batch(run.info.run_id,
                         metrics=[Metric("loss", round(loss + 1.0, 9), BASE_TS + i, 0),
                                  Metric("loss", round(loss + 0.5, 9), BASE_TS + i + 1, 1),
                                  Metric("loss", loss, BASE_TS + i + 2, 2),
                                  Metric("acc", round(1.0 - loss, 9), BASE_TS + i + 2, 2)],
                         params=[Param(k, v) for k, v in search_params(i).items()],
                         tags=[RunTag("stage", "done")])
        client.set_terminated(run.info.run_id, end_time=BASE_TS + i + 3)
        return 3

    with cf.ThreadPoolExecutor(threads) as pool:
        futures: list[cf.Future[Any]] = [pool.submit(lambda rid, kw: client.log_batch(rid, **kw), rid, kw)
                   for r in range(total_main) for rid, kw in main_batches(r)]
        futures += [pool.submit(search_run, i) for i in range(w.search_runs)]
        for f in cf.as_completed(futures):
            res = f.result()  # re-raises a failed batch: the data must be identical everywhere
            calls += res if isinstance(res, int) else 1
    for r in range(total_main):
        client.set_terminated(out.main_ids[r], end_time=BASE_TS + 10 * w.steps)
        calls += 1
    try:
        client.create_registered_model(MODEL, tags={"purpose": "reads_vs_peers"})
        calls += 1
    except MlflowException as exc:
        status, code = mlflow_error(exc)
        if code != "ENDPOINT_NOT_FOUND":
            raise
        out.registry = f"no model registry: POST registered-models/create answers {status} {code}"
        try:
            stub = client.search_registered_models()
            if len(stub) == 0:
                out.registry += " (its registered-models/search answers an empty list all the same)"
        except MlflowException:
            pass
    if out.registry is None:
        for v in range(w.model_versions):
            r = v % w.runs
            client.create_model_version(MODEL, f"{out.artifact_uris[r]}/model", run_id=out.main_ids[r],
                                        tags={"v": str(v + 1)}, description=f"version {v + 1}")
            calls += 1
    out.seconds, out.calls = time.perf_counter() - t0, calls
    return out


# ----------------------------------------------------------------------------------------------- the reads


class Wrong(AssertionError):
    """A server's answer differs from what was logged."""


def expect(ok: bool, msg: str) -> None:
    if not ok:
        raise Wrong(msg)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)


@dataclass
class Read:
    key: str
    label: str
    call: Callable[[], Any] | None  # None: n/a on this server
    check: Callable[[Any], str] = lambda _: ""
    na: str = ""


class ReadFactory(Protocol):
    def __call__(self, client: Any, http: httpx.Client, loaded: Loaded, w: Workload) -> Read: ...


def read_search_runs(client: Any, http: httpx.Client, loaded: Loaded, w: Workload) -> Read:
    hits, names = expected_search_page(w.search_runs)
    name_to_i = {search_run_name(i): i for i in range(w.search_runs)}

    def check(runs: Any) -> str:
        got = [r.info.run_name for r in runs]
        expect(got == names, f"first page {got[:5]}… ≠ expected {names[:5]}… ({len(got)} vs {len(names)} runs)")
        for r in runs:
            i = name_to_i[r.info.run_name]
            loss = search_loss(i, w.search_runs)
            expect(close(r.data.metrics.get("loss", math.nan), loss), f"{r.info.run_name}: loss "
                   f"{r.data.metrics.get('loss')} ≠ latest {loss}")
            expect(close(r.data.metrics.get("acc", math.nan), round(1 - loss, 9)), f"{r.info.run_name}: acc")
            expect(r.data.params == search_params(i), f"{r.info.run_name}: params {r.data.params}")
            expect(r.data.tags.get("shard") == str(i % 8), f"{r.info.run_name}: tags {r.data.tags}")
        return f"{len(runs)} of {hits} matching runs"

    return Read("search_runs", f"search_runs `{SEARCH_FILTER}` order_by `{SEARCH_ORDER}`, first {SEARCH_PAGE} "
                f"of {w.search_runs:,} runs",
                lambda: client.search_runs([loaded.search_eid], SEARCH_FILTER, order_by=[SEARCH_ORDER],
                                           max_results=SEARCH_PAGE), check)


def read_get_run(client: Any, http: httpx.Client, loaded: Loaded, w: Workload) -> Read:
    want_metrics = {key_name(j): value(0, j, w.steps - 1) for j in range(w.keys)}

    def check(run: Any) -> str:
        expect(run.info.run_name == "main-0", f"run name {run.info.run_name}")
        expect(run.info.status == "FINISHED", f"status {run.info.status}")
        expect(run.data.params == main_params(0, w), f"{len(run.data.params)} params, expected {w.params}")
        tags = {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")}
        expect(tags == main_tags(0), f"tags {tags}")
        got = run.data.metrics
        expect(set(got) == set(want_metrics), f"metric keys {sorted(got)[:5]}… ({len(got)})")
        bad = [k for k, v in want_metrics.items() if not close(got[k], v)]
        expect(not bad, f"latest values differ for {bad[:3]}: {[got[k] for k in bad[:3]]}")
        return f"{len(run.data.params)} params, {len(tags)} tags, {len(got)} latest metrics"

    return Read("get_run", f"get_run (run state: {w.params} params, {w.keys} latest metrics, tags)",
                lambda: client.get_run(loaded.main_ids[0]), check)


def read_history(client: Any, http: httpx.Client, loaded: Loaded, w: Workload) -> Read:
    def check(points: Any) -> str:
        expect(len(points) == w.steps, f"{len(points)} points, expected {w.steps}")
        pts = sorted(points, key=lambda m: m.step)
        expect([m.step for m in pts] == list(range(w.steps)), "steps are not 0..steps-1")
        bad = [m.step for m in pts if not close(m.value, value(0, 0, m.step)) or m.timestamp != BASE_TS + 10 * m.step]
        expect(not bad, f"{len(bad)} points differ (first at step {bad[:1]})")
        return f"{len(points):,} points"

    return Read("get_metric_history", f"get_metric_history, one key, full ({w.steps:,} points)",
                lambda: client.get_metric_history(loaded.main_ids[0], HISTORY_KEY), check)


def _endpoint_missing(resp: httpx.Response) -> str | None:
    if resp.status_code == 404:
        try:
            code = resp.json().get("error_code", "")
        except ValueError:
            code = ""
        if code == "ENDPOINT_NOT_FOUND" or not code:
            return f"GET {resp.url.path} answers {resp.status_code} {code or resp.text[:60]}"
    return None


def _check_points(body: dict[str, Any], loaded: Loaded, w: Workload, per_run: Callable[[int], bool]) -> str:
    index = set(loaded.main_ids[:w.bulk_runs])
    by_run = Counter(p.get("run_id", "") for p in body.get("metrics", []))
    expect(set(by_run) == index, f"{len(by_run)} runs answered, expected {len(index)}")
    odd = {rid: n for rid, n in by_run.items() if not per_run(n)}
    expect(not odd, f"unexpected points per run: {sorted(odd.values())[:5]}")
    return _points_summary(body, loaded, w)


def _points_summary(body: dict[str, Any], loaded: Loaded, w: Workload) -> str:
    """Every point is one that was logged (run, key, step, value); the answer's shape in words."""
    index = {rid: r for r, rid in enumerate(loaded.main_ids[:w.bulk_runs])}
    by_run: dict[str, int] = {}
    bad = 0
    for p in body.get("metrics", []):
        r = index.get(p.get("run_id", ""))
        expect(r is not None, f"a point of an unknown run {p.get('run_id')}")
        assert r is not None
        by_run[p["run_id"]] = by_run.get(p["run_id"], 0) + 1
        step = int(p.get("step", 0))
        if not (0 <= step < w.steps and p.get("key") == HISTORY_KEY and close(float(p["value"]), value(r, 0, step))):
            bad += 1
    expect(bad == 0, f"{bad} points differ from what was logged")
    counts = sorted(by_run.values())
    return f"{sum(counts):,} points ({counts[0]:,}–{counts[-1]:,} per run, {len(counts)} runs)"


def read_bulk_interval(client: Any, http: httpx.Client, loaded: Loaded, w: Workload) -> Read:
    params: list[tuple[str, str | int | float | bool | None]] = [("run_ids", rid) for rid in loaded.main_ids[:w.bulk_runs]]
    params += [("metric_key", HISTORY_KEY), ("max_results", str(w.bulk_max_results))]
    label = (f"get-history-bulk-interval, {w.bulk_runs} runs × one key, max_results={w.bulk_max_results:,} "
             f"(of {w.steps:,} steps each)")
    path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"
    missing = _endpoint_missing(http.get(path, params=params))
    if missing:
        return Read("bulk_interval", label, None, na=missing)

    def call() -> Any:
        resp = http.get(path, params=params)
        expect(resp.status_code == 200, f"HTTP {resp.status_code}: {resp.text[:200]}")
        return resp.json()

    # a sampled read: each run answers at most max_results points (+2 where first/last steps are added)
    return Read("bulk_interval", label, call,
                lambda body: _check_points(body, loaded, w, lambda n: 2 <= n <= w.bulk_max_results + 2))


def read_bulk_legacy(client: Any, http: httpx.Client, loaded: Loaded, w: Workload) -> Read:
    params: list[tuple[str, str | int | float | bool | None]] = [("run_id", rid) for rid in loaded.main_ids[:w.bulk_runs]]
    params += [("metric_key", HISTORY_KEY), ("max_results", str(LEGACY_BULK_MAX))]
    label = f"get-history-bulk (older UI call), {w.bulk_runs} runs × one key, full ({w.steps:,} points each)"
    path = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
    missing = _endpoint_missing(http.get(path, params=params))
    if missing:
        return Read("bulk_legacy", label, None, na=missing)

    def call() -> Any:
        resp = http.get(path, params=params)
        expect(resp.status_code == 200, f"HTTP {resp.status_code}: {resp.text[:200]}")
        return resp.json()

    def check(body: dict[str, Any]) -> str:
        # MLflow's handler answers at most LEGACY_BULK_MAX points in all, runs in run-id order (the last
        # answered run cut short): 10 runs x 4,000 points answer 6 whole runs and 1,000 points of a 7th
        ids = sorted(loaded.main_ids[:w.bulk_runs])
        total = min(len(ids) * w.steps, LEGACY_BULK_MAX)
        order = [p.get("run_id") for p in body.get("metrics", [])]
        expect(len(order) == total, f"{len(order):,} points, expected {total:,} (MLflow's cap {LEGACY_BULK_MAX:,})")
        runs = list(dict.fromkeys(order))
        expect(runs == ids[:len(runs)], "runs not answered in run-id order, or not the first ones")
        whole = {rid: n for rid, n in Counter(order).items() if rid != runs[-1] and n != w.steps}
        expect(not whole, f"runs before the last answered with {sorted(whole.values())[:3]} points, not {w.steps:,}")
        return _points_summary(body, loaded, w)

    return Read("bulk_legacy", label, call, check)


def read_experiments(client: Any, http: httpx.Client, loaded: Loaded, w: Workload) -> Read:
    want = {MAIN_EXP, SEARCH_EXP} | {f"reads-extra-{i:03d}" for i in range(w.experiments)}

    def check(exps: Any) -> str:
        names = {e.name for e in exps}
        expect(want <= names, f"missing experiments: {sorted(want - names)[:3]}")
        expect(len(exps) <= len(want) + 1, f"{len(exps)} experiments, expected {len(want)} (+ Default)")
        return f"{len(exps)} experiments"

    return Read("search_experiments", f"search_experiments ({len(want)} experiments + Default)",
                lambda: client.search_experiments(max_results=1000), check)


def read_registered_models(client: Any, http: httpx.Client, loaded: Loaded, w: Workload) -> Read:
    label = f"search_registered_models (1 model, {w.model_versions} versions)"
    if loaded.registry is not None:
        return Read("search_registered_models", label, None, na=loaded.registry)

    def check(models: Any) -> str:
        expect([m.name for m in models] == [MODEL], f"models {[m.name for m in models]}")
        expect(models[0].tags == {"purpose": "reads_vs_peers"}, f"tags {models[0].tags}")
        latest = [int(v.version) for v in models[0].latest_versions]
        expect(latest == [w.model_versions], f"latest versions {latest}")
        return f"{len(models)} model, latest version {latest[0]}"

    return Read("search_registered_models", label, lambda: client.search_registered_models(max_results=100), check)


def read_model_versions(client: Any, http: httpx.Client, loaded: Loaded, w: Workload) -> Read:
    label = f"search_model_versions `name='{MODEL}'` ({w.model_versions} versions)"
    if loaded.registry is not None:
        return Read("search_model_versions", label, None, na=loaded.registry)
    want = {str(v + 1): loaded.main_ids[v % w.runs] for v in range(w.model_versions)}

    def check(versions: Any) -> str:
        got = {v.version: v.run_id for v in versions}
        expect(got == want, f"versions {sorted(got)} with runs {got}")
        expect(all(v.tags == {"v": v.version} for v in versions), "version tags differ")
        return f"{len(versions)} versions"

    return Read("search_model_versions", label,
                lambda: client.search_model_versions(f"name='{MODEL}'", max_results=1000), check)


READS: list[ReadFactory] = [read_search_runs, read_get_run, read_history, read_bulk_interval, read_bulk_legacy,
                            read_experiments, read_registered_models, read_model_versions]


# ----------------------------------------------------------------------------------------------- timing


def stats(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    return {"median_ms": round(statistics.median(s), 2), "p95_ms": round(s[min(len(s) - 1, math.ceil(0.95 * len(s)) - 1)], 2),
            "min_ms": round(s[0], 2), "max_ms": round(s[-1], 2), "n": len(s)}


def settle(read: Read, timeout_s: float) -> str:
    """Call until the answer is right (writes may still be landing) or ``timeout_s`` passes: the warm-up."""
    assert read.call is not None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return read.check(read.call())
        except Exception as exc:
            if time.monotonic() > deadline:
                raise Wrong(f"still wrong after {timeout_s:.0f} s: {exc}") from exc
            time.sleep(0.5)


@dataclass
class Cell:
    na: str = ""
    wrong: str = ""
    answer: str = ""
    ms: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        if self.na:
            return {"na": self.na}
        if self.wrong:
            return {"wrong": self.wrong, "answer": self.answer}
        return {**stats(self.ms), "answer": self.answer}


def time_reads(targets: dict[str, tuple[Any, httpx.Client, Loaded]], w: Workload, repeat: int, warmup: int,
               settle_s: float) -> dict[str, dict[str, Any]]:
    """Every read against every server: settle + warm-up each, then ``repeat`` rounds of one call per server."""
    out: dict[str, dict[str, Any]] = {}
    labels: dict[str, str] = {}
    for factory in READS:
        reads = {name: factory(client, http, loaded, w) for name, (client, http, loaded) in targets.items()}
        key = next(iter(reads.values())).key
        labels[key] = next(iter(reads.values())).label
        cells = {name: Cell(na=r.na) for name, r in reads.items()}
        live = {}
        for name, r in reads.items():
            if r.call is None:
                continue
            try:
                cells[name].answer = settle(r, settle_s)
                for _ in range(warmup):
                    r.call()
                live[name] = r
            except Exception as exc:
                cells[name].wrong = str(exc)[:300]
        for _ in range(repeat):
            for name, r in list(live.items()):
                assert r.call is not None
                t0 = time.perf_counter()
                try:
                    answer = r.call()
                    cells[name].ms.append((time.perf_counter() - t0) * 1000)
                    r.check(answer)
                except Exception as exc:
                    cells[name].wrong = f"{type(exc).__name__}: {str(exc)[:300]}"
                    del live[name]
        out[key] = {"label": labels[key], **{name: c.summary() for name, c in cells.items()}}
        log(f"  {labels[key]}: " + "; ".join(f"{n} {fmt_cell(out[key][n])}" for n in targets))
    return out


# ----------------------------------------------------------------------------------------------- report


def fmt_ms(v: float) -> str:
    return f"{v:,.1f}" if v < 1000 else f"{v:,.0f}"


def fmt_cell(c: dict[str, Any] | None) -> str:
    if c is None:
        return "–"
    if "na" in c:
        return "n/a"
    if "wrong" in c:
        return "WRONG"
    return f"{fmt_ms(c['median_ms'])} ({fmt_ms(c['p95_ms'])})"


def ratio(rl: dict[str, Any] | None, peer: dict[str, Any] | None) -> float | None:
    if not rl or not peer or "median_ms" not in rl or "median_ms" not in peer or not peer["median_ms"]:
        return None
    return round(float(rl["median_ms"]) / float(peer["median_ms"]), 3)


def table_rows(reads: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for key, row in reads.items():
        rows.append({"read": row["label"], "key": key, **{s: row.get(s) for s in SYSTEMS},
                     "runledger/fasttrackml": ratio(row.get("runledger"), row.get("fasttrackml")),
                     "runledger/mlflow": ratio(row.get("runledger"), row.get("mlflow"))})
    return rows


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    w = meta["workload"]

    def r(v: float | None) -> str:
        return "–" if v is None else f"{v:.2f}"

    lines = [f"# Reads: runledger vs FastTrackML vs MLflow — {meta['date']}", "",
             f"`{meta['command']}` on {meta['machine']}; took {meta['seconds']:.0f} s (loading "
             f"{meta['load_seconds']}); 1-minute load average {meta['load_avg_1m']['start']} at the start, "
             f"{meta['load_avg_1m']['reads_start']} when the reads began, {meta['load_avg_1m']['end']} at the end.",
             "",
             "Versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()) + ".",
             f"MLflow backend store: {meta['mlflow_store']}. FastTrackML: SQLite. runledger: embedded (chDB).",
             "",
             f"Data, identical in every server (stock `MlflowClient.log_batch`, ≤ {w['batch']} metrics a call, "
             f"{meta['load_threads']} client threads): {w['runs']} runs × {w['keys']} keys × {w['steps']:,} steps "
             f"+ {w['params']} params and 3 tags per run; {max(0, w['bulk_runs'] - w['runs'])} more runs with the "
             f"one key the bulk reads ask for ({w['bulk_runs']} runs in those reads); {w['search_runs']:,} small "
             f"runs to search (loss at steps 0–2, acc, {SEARCH_PARAMS} params, 2 tags); {w['experiments']} empty "
             f"experiments; one registered model with {w['model_versions']} versions. {meta['points']:,} metric "
             f"points per server.",
             "",
             f"Median (p95) ms over {meta['repeat']} timed calls per cell after {meta['warmup']} warm-up calls, "
             "round-robin over the servers; every answer checked against what was logged (wrong = not timed). "
             "Ratio = runledger median / peer median (< 1: runledger faster).",
             "",
             "| read | runledger | fasttrackml | mlflow | runledger/fasttrackml | runledger/mlflow |",
             "| --- | --- | --- | --- | --- | --- |"]
    for row in rows:
        lines.append(f"| {row['read']} | " + " | ".join(fmt_cell(row[s]) if s in meta["systems"] else "–"
                                                        for s in SYSTEMS)
                     + f" | {r(row['runledger/fasttrackml'])} | {r(row['runledger/mlflow'])} |")
    lines += ["", "What each answered (checked):", ""]
    for row in rows:
        parts = []
        for s in meta["systems"]:
            c = row[s]
            if c is None:
                continue
            if "na" in c:
                parts.append(f"{s}: n/a — {c['na']}")
            elif "wrong" in c:
                parts.append(f"{s}: WRONG — {c['wrong']}")
            else:
                parts.append(f"{s}: {c['answer']}")
        lines.append(f"* {row['read']}: " + "; ".join(parts))
    lines += ["", "Servers: " + "; ".join(f"{s}: {d}" for s, d in meta["servers"].items())]
    return "\n".join(lines) + "\n"


def print_table(rows: list[dict[str, Any]], systems: list[str]) -> None:
    head = ["read", *SYSTEMS, "rl/ftml", "rl/mlflow"]
    body = [[row["read"][:70], *(fmt_cell(row[s]) if s in systems else "–" for s in SYSTEMS),
             "–" if row["runledger/fasttrackml"] is None else f"{row['runledger/fasttrackml']:.2f}",
             "–" if row["runledger/mlflow"] is None else f"{row['runledger/mlflow']:.2f}"] for row in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    for line in [head, ["-" * n for n in widths], *body]:
        print("  ".join(str(x).ljust(n) for x, n in zip(line, widths)))


# ----------------------------------------------------------------------------------------------- main


def versions() -> dict[str, str]:
    def pkg(name: str) -> str:
        try:
            return md.version(name)
        except md.PackageNotFoundError:
            return "not installed"

    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True,
                             timeout=10, check=False).stdout.strip()
    except OSError:
        rev = ""
    pg = shutil.which("postgres") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"))), None)
    pg_version = ""
    if pg:
        pg_version = subprocess.run([str(pg), "--version"], capture_output=True, text=True, timeout=10,
                                    check=False).stdout.strip().removeprefix("postgres (PostgreSQL) ")
    return {"runledger": f"{pkg('runledger')} ({rev})" if rev else pkg("runledger"), "chdb": pkg("chdb"),
            "fasttrackml": fml_version(), "mlflow": pkg("mlflow"), "postgresql": pg_version or "–",
            "python": platform.python_version()}


@contextmanager
def started(system: Any) -> Iterator[Any]:
    log(f"starting {system.name}")
    system.start()
    try:
        yield system
    finally:
        system.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    d = Workload()
    ap.add_argument("--runs", type=int, default=d.runs, help="full runs (every key, every step)")
    ap.add_argument("--keys", type=int, default=d.keys, help="metric keys per full run")
    ap.add_argument("--steps", type=int, default=d.steps, help="steps per key (the full history length)")
    ap.add_argument("--params", type=int, default=d.params, help="params per full run")
    ap.add_argument("--search-runs", type=int, default=d.search_runs,
                    help="small runs in the searched experiment (so search is not over 4 runs)")
    ap.add_argument("--bulk-runs", type=int, default=d.bulk_runs,
                    help="runs in the bulk history reads (runs beyond --runs log only that one key)")
    ap.add_argument("--bulk-max-results", type=int, default=d.bulk_max_results,
                    help="max_results per run of get-history-bulk-interval")
    ap.add_argument("--experiments", type=int, default=d.experiments, help="extra empty experiments")
    ap.add_argument("--model-versions", type=int, default=d.model_versions, help="versions of the registered model")
    ap.add_argument("--repeat", type=int, default=20, help="timed calls per read and server, after the warm-up")
    ap.add_argument("--warmup", type=int, default=2, help="untimed calls per read and server before timing")
    ap.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {','.join(SYSTEMS)}")
    ap.add_argument("--mlflow-backend", choices=["auto", "postgresql", "sqlite"], default="auto",
                    help="the MLflow server's backend store (auto: PostgreSQL where it can run here, else SQLite)")
    ap.add_argument("--load-threads", type=int, default=4, help="client threads loading each server")
    ap.add_argument("--settle", type=float, default=300.0, help="seconds a read may take to become right")
    ap.add_argument("--workdir", type=Path, help="keep the servers' data here (default: a removed temp folder)")
    ap.add_argument("--hold", type=float, default=0.0, help="keep the servers up this many seconds after the reads")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for reads_vs_peers-<date>.json/.md")
    args = ap.parse_args(argv)
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    if not systems or set(systems) - set(SYSTEMS):
        ap.error(f"--systems: choose from {','.join(SYSTEMS)}")
    if args.runs < 1 or args.keys < 1 or args.steps < 2 or args.search_runs < 1 or args.repeat < 1:
        ap.error("--runs, --keys, --search-runs and --repeat must be >= 1, --steps >= 2")
    w = Workload(args.runs, args.keys, args.steps, args.params, args.search_runs, args.bulk_runs,
                 args.bulk_max_results, args.experiments, args.model_versions)
    store, why = mlflow_backend(args.mlflow_backend) if "mlflow" in systems else ("–", "not run")
    t_start, load_start = time.time(), os.getloadavg()[0]
    log(f"systems: {', '.join(systems)}; workload {asdict(w)} ({w.points:,} points per server); mlflow store: "
        f"{store} ({why})")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # else set_terminated prints + get_run
    from mlflow import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with ExitStack() as stack:
        if args.workdir is not None:
            args.workdir.mkdir(parents=True, exist_ok=True)
            workdir = args.workdir
        else:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rl-reads-")))
        servers: dict[str, Any] = {}
        for name in systems:  # all three up at once, like the issue asks: same machine, same moment
            make: dict[str, Callable[[], Any]] = {"runledger": lambda: RunledgerEmbedded(workdir),
                                                  "fasttrackml": lambda: FastTrackMLServer(workdir),
                                                  "mlflow": lambda: MlflowServer(workdir, store)}
            server = make[name]()
            servers[name] = stack.enter_context(started(server))
        loaded: dict[str, Loaded] = {}
        for name, server in servers.items():
            log(f"loading {name} ({server.tracking_uri})")
            loaded[name] = load(server.tracking_uri, w, args.load_threads)
            log(f"  -> {loaded[name].calls:,} client calls in {loaded[name].seconds:.1f} s"
                + (f"; registry: {loaded[name].registry}" if loaded[name].registry else ""))
        load_reads = os.getloadavg()[0]
        log(f"timing reads: {args.repeat} calls each after {args.warmup} warm-up, round-robin (load avg "
            f"{load_reads:.2f})")
        targets = {}
        for name, server in servers.items():
            http = stack.enter_context(httpx.Client(base_url=server.tracking_uri, timeout=300))
            targets[name] = (MlflowClient(server.tracking_uri), http, loaded[name])
        reads = time_reads(targets, w, args.repeat, args.warmup, args.settle)
        server_info = {}
        for name, server in servers.items():
            pg = ", PostgreSQL not counted" if name == "mlflow" and store == "postgresql" else ""
            server_info[name] = (f"{server.tracking_uri}, peak RSS {tree_peak_rss_mb(server.server_pid()):,.0f} MiB "
                                 f"(process tree{pg})")
        if args.hold > 0:
            log("holding the servers for profiling: " + "; ".join(
                f"{n} {s.tracking_uri} pid {s.server_pid()}" for n, s in servers.items()))
            time.sleep(args.hold)
    rows = table_rows(reads)
    date = dt.date.today().isoformat()
    meta: dict[str, Any] = {
        "date": date, "seconds": round(time.time() - t_start, 1),
        "command": " ".join(["python -m benchmarks.reads_vs_peers", *(sys.argv[1:] if argv is None else argv)]),
        "machine": f"{platform.node()} ({platform.machine()}, {os.cpu_count()} cores, Python "
                   f"{platform.python_version()})",
        "load_avg_1m": {"start": round(load_start, 2), "reads_start": round(load_reads, 2),
                        "end": round(os.getloadavg()[0], 2)},
        "load_seconds": ", ".join(f"{n} {v.seconds:.0f} s" for n, v in loaded.items()),
        "versions": versions(), "mlflow_store": f"{store} ({why})", "systems": systems, "workload": asdict(w),
        "points": w.points, "repeat": args.repeat, "warmup": args.warmup, "load_threads": args.load_threads,
        "servers": server_info,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"reads_vs_peers-{date}"
    stem.with_suffix(".json").write_text(json.dumps({**meta, "reads": reads, "table": rows,
                                                     "loaded": {n: asdict(v) | {"main_ids": v.main_ids[:3]}
                                                                for n, v in loaded.items()}}, indent=1))
    stem.with_suffix(".md").write_text(markdown(rows, meta))
    print()
    print_table(rows, systems)
    print(f"\nmedian (p95) ms; took {meta['seconds']:.0f} s; wrote {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
