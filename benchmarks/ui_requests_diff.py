"""Record the requests MLflow's web UI makes against a stock ``mlflow server`` and against runledger, and diff.

Starts both (stock: SQLite in a temporary folder, proxied artifacts; runledger: embedded), logs the same
data into each with the stock client (3 runs with params, a 50-step metric, tags, artifacts, a registered
model version), opens the same pages in headless Chromium (Debian's, no download) and prints, per page,
every distinct ``METHOD path -> status`` the page asked for on either server, marked ``=`` (same on both),
``stock only``, ``runledger only`` or ``differs``. Used to write docs/UI.md.

    .venv/bin/python benchmarks/ui_requests_diff.py [--settle-s 4]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from browser import NetworkLog, new_driver
from mlflow import MlflowClient
from servers import ServerProcess, free_port, wait_http


def seed(url: str) -> dict[str, object]:
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    exp = client.create_experiment("ui-diff")
    runs = []
    for i in range(3):
        rid = client.create_run(exp, run_name=f"run-{i}").info.run_id
        client.log_param(rid, "lr", str(0.1 * (i + 1)))
        for s in range(50):
            client.log_metric(rid, "loss", 1.0 / (s + 1) + i, step=s)
        client.set_tag(rid, "team", "vision")
        client.log_text(rid, "hello\n", "notes/readme.txt")
        client.log_text(rid, "artifact_path: model\nflavors: {}\n", "model/MLmodel")
        client.set_terminated(rid)
        runs.append(rid)
    client.create_registered_model("ui-diff-model")
    client.create_model_version("ui-diff-model", f"runs:/{runs[0]}/model", run_id=runs[0])
    return {"exp": exp, "runs": runs}


def pages(d: dict[str, object]) -> list[str]:
    exp, runs = d["exp"], d["runs"]
    assert isinstance(runs, list)
    return [
        "#/experiments", f"#/experiments/{exp}/runs", f"#/experiments/{exp}/runs?compareRunsMode=CHART",
        f"#/experiments/{exp}/runs/{runs[0]}", f"#/experiments/{exp}/runs/{runs[0]}/model-metrics",
        f"#/experiments/{exp}/runs/{runs[0]}/artifacts",
        f"#/compare-runs?runs={json.dumps(runs)}&experiments={json.dumps([exp])}",
        "#/models", "#/models/ui-diff-model", "#/models/ui-diff-model/versions/1",
    ]


def record(url: str, settle_s: float) -> dict[int, Counter[str]]:
    data = seed(url)
    driver = new_driver()
    out: dict[int, Counter[str]] = {}
    try:
        driver.get(url + "/")
        driver.execute_script(
            "localStorage.setItem('mlflow.workflowType_v1', JSON.stringify('machine_learning'));"
            "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
            "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');")
        network = NetworkLog(driver)
        for i, page in enumerate(pages(data)):
            since = network.mark()
            driver.get(f"{url}/{page}")
            driver.refresh()
            time.sleep(settle_s)
            got = network.settle(since, quiet_s=1.0, timeout_s=60)
            out[i] = Counter(f"{r.method} {r.path} -> {r.status if r.status is not None else r.error or 'pending'}"
                             for r in got if "/static-files/" not in r.path)
    finally:
        driver.quit()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--settle-s", type=float, default=4.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        stock = subprocess.Popen(
            [str(Path(sys.executable).parent / "mlflow"), "server", "--port", str(port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination", f"{tmp}/artifacts"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ours = ServerProcess(Path(tmp) / "data").start()
        try:
            wait_http(f"http://127.0.0.1:{port}/health", 120, stock)
            got_stock = record(f"http://127.0.0.1:{port}", args.settle_s)
            got_ours = record(ours.url, args.settle_s)
        finally:
            ours.stop()
            stock.terminate()
            stock.wait(30)
    names = pages({"exp": "<exp>", "runs": ["<run0>", "<run1>", "<run2>"]})
    for i, name in enumerate(names):
        print(f"\n## {name}")
        a, b = got_stock.get(i, Counter()), got_ours.get(i, Counter())
        keys = sorted({k.rsplit(" -> ", 1)[0] for k in (*a, *b)})
        for key in keys:
            sa = sorted(k.rsplit(" -> ", 1)[1] for k in a.elements() if k.rsplit(" -> ", 1)[0] == key)
            sb = sorted(k.rsplit(" -> ", 1)[1] for k in b.elements() if k.rsplit(" -> ", 1)[0] == key)
            if not sb:
                mark = "stock only"
            elif not sa:
                mark = "runledger only"
            else:
                mark = "=" if set(sa) == set(sb) else "differs"
            print(f"- {mark:14} {key}  stock: {','.join(sa) or '-'} ({len(sa)}x)  runledger: {','.join(sb) or '-'} "
                  f"({len(sb)}x)")


if __name__ == "__main__":
    main()
