"""MLflow's own web UI on runledger, in Debian's headless Chromium (selenium, no browser download).

Data is logged with the stock mlflow client; every page the issue names is opened through its hash route,
its content is waited for and asserted, and every request the page made is checked: a status >= 400, a
failed load or a SEVERE console error fails the test — except the one probe the stock server answers with
404 itself when authentication is off (``users/current``, see docs/UI.md). The UI writes (rename a run,
set a tag, transition a stage, set an alias) are sent as the exact requests the UI makes, from inside the
page (``fetch``), with the browser authenticated as ``ana`` (HTTP Basic on every request, as behind an
auth proxy); the pages then show the change and the audit trails name ``ana``. Screenshots go to
docs/screenshots/.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import NetworkLog, Request, browser_missing, console_errors, new_driver
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait
from servers import ServerProcess

pytestmark = pytest.mark.integration

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
ACTOR = "ana"
RUNS = 10
POINTS = 1000
#: Answered 404 by the stock ``mlflow server`` too when authentication is off (no users): not a failure.
STOCK_404 = frozenset({"/ajax-api/2.0/mlflow/users/current"})

_why = browser_missing()
if _why is not None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"headless Chromium is required on CI: {_why}", pytrace=False)
    pytest.skip(f"no headless Chromium here: {_why}", allow_module_level=True)


@pytest.fixture(scope="module")
def data(shared_server: ServerProcess) -> dict[str, Any]:
    client = MlflowClient(tracking_uri=shared_server.url, registry_uri=shared_server.url)
    name = f"web-ui-{time.time_ns()}"
    exp = client.create_experiment(name)
    runs = []
    now = int(time.time() * 1000)
    for i in range(RUNS):
        rid = client.create_run(exp, run_name=f"run-{i}").info.run_id
        metrics = [Metric("loss", 1.0 / (s + 1) + 0.05 * i + (3.0 if s == 700 else 0.0), now + s, s)
                   for s in range(POINTS)]
        metrics += [Metric("accuracy", 0.5 + 0.04 * i, now, 0)]
        for lo in range(0, len(metrics), 1000):
            client.log_batch(rid, metrics=metrics[lo:lo + 1000], params=[] if lo else [
                Param("lr", f"{0.01 * (i + 1):.2f}"), Param("layers", str(2 + i % 3))],
                tags=[] if lo else [RunTag("team", "vision")])
        client.log_text(rid, f"notes of run {i}\n", "notes/readme.txt")
        client.log_dict(rid, {"run": i}, "config.json")
        client.log_text(rid, "artifact_path: model\nflavors:\n  python_function:\n    loader_module: m\n",
                        "model/MLmodel")
        client.set_terminated(rid)
        runs.append(rid)
    model = f"ui-model-{time.time_ns()}"
    client.create_registered_model(model, description="a model for the UI test")
    for rid in runs[:2]:
        client.create_model_version(model, f"runs:/{rid}/model", run_id=rid)
    return {"exp": exp, "exp_name": name, "runs": runs, "model": model, "url": shared_server.url}


@pytest.fixture(scope="module")
def network(driver: WebDriver) -> NetworkLog:
    return NetworkLog(driver)


@pytest.fixture(scope="module")
def driver(data: dict[str, Any]) -> Iterator[WebDriver]:
    d = new_driver()
    try:
        credentials = base64.b64encode(f"{ACTOR}:secret".encode()).decode()
        d.execute_cdp_cmd("Network.enable", {})
        d.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {"Authorization": f"Basic {credentials}"}})
        d.get(data["url"] + "/")
        # The UI's own settings, as a user who picked "Model training" and closed the assistant panel.
        d.execute_script(
            "localStorage.setItem('mlflow.workflowType_v1', JSON.stringify('machine_learning'));"
            "localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
            "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');")
        console_errors(d)
        yield d
    finally:
        d.quit()


class Page:
    """One page visit: what it requested, checked when the page settles."""

    def __init__(self, driver: WebDriver, base: str, network: NetworkLog) -> None:
        self.d, self.base, self.network = driver, base, network
        self.since = network.mark()
        self.requests: list[Request] = []

    def open(self, route: str, *texts: str, timeout_s: float = 30.0, reload: bool = False) -> Page:
        """Go to ``route`` (``#/...``) as a link in the app does (the SPA changes its hash route; the
        JavaScript is loaded once), or with a full page load when ``reload`` or not on the app yet."""
        if reload or not self.d.current_url.startswith(self.base + "/#"):
            self.d.get(f"{self.base}/{route}")
            # let the first load finish: the refresh would abort its requests, and an aborted request may
            # never get its failure event in the performance log (seen on CI: chunks left "no answer")
            self.network.settle(self.since, quiet_s=0.5, timeout_s=30.0)
            self.d.refresh()
        else:
            self.d.execute_script("window.location.hash = arguments[0];", route.removeprefix("#"))
        self.wait_text(*texts, timeout_s=timeout_s)
        return self

    def body(self) -> str:
        return str(self.d.find_element(By.TAG_NAME, "body").text)

    def wait_text(self, *texts: str, timeout_s: float = 30.0) -> None:
        try:
            WebDriverWait(self.d, timeout_s, poll_frequency=0.2).until(
                lambda d: all(t in d.find_element(By.TAG_NAME, "body").text for t in texts))
        except TimeoutException:
            missing = [t for t in texts if t not in self.body()]
            raise AssertionError(f"{self.d.current_url}: {missing} never appeared; page text:\n{self.body()[:2000]}") from None

    def click_text(self, text: str, timeout_s: float = 20.0, last: bool = False) -> None:
        """Click the (first, or last) element whose own text is ``text``."""
        xpath = f"//*[normalize-space(text())={json.dumps(text)}]"
        el = WebDriverWait(self.d, timeout_s).until(lambda d: d.find_elements(By.XPATH, xpath))[-1 if last else 0]
        self.d.execute_script("arguments[0].scrollIntoView({block: 'center'});", el)
        el.click()

    def settle(self, quiet_s: float = 0.8, timeout_s: float = 30.0) -> list[Request]:
        """Wait until every request of this visit got its answer and none was sent for ``quiet_s``; check."""
        self.requests = self.network.settle(self.since, quiet_s, timeout_s)
        self.check()
        return self.requests

    def check(self) -> None:
        bad = [str(r) for r in self.requests
               if (r.status is not None and r.status >= 400 and not (r.status == 404 and r.path in STOCK_404))
               or (r.status is None and r.error != "net::ERR_ABORTED" and not r.in_worker)]  # aborted: by our reloads
        severe = [e for e in console_errors(self.d) if not any(p in e and "404" in e for p in STOCK_404)]
        assert not bad and not severe, f"{self.d.current_url}\nfailed requests: {bad}\nconsole errors: {severe}"

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.d.save_screenshot(str(SCREENSHOTS / f"{name}.png"))

    def fetch(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The request the UI makes, sent from inside the page (same origin, same headers)."""
        status, text = self.d.execute_async_script(
            "const [method, url, body, done] = arguments;"
            "fetch(url, {method, headers: {'Content-Type': 'application/json'}, body: JSON.stringify(body)})"
            ".then(r => r.text().then(t => done([r.status, t]))).catch(e => done([0, String(e)]));",
            method, path, body)
        assert status == 200, f"{method} {path} -> {status} {text}"
        out: dict[str, Any] = json.loads(text)
        return out

    def paths(self, where: Callable[[Request], bool] = lambda r: True) -> list[str]:
        return [r.url for r in self.requests if where(r)]


@pytest.fixture
def page(driver: WebDriver, data: dict[str, Any], network: NetworkLog) -> Page:
    return Page(driver, data["url"], network)


def test_experiments_list(page: Page, data: dict[str, Any]) -> None:
    page.open("#/experiments", data["exp_name"])
    page.settle()
    page.shot("experiments")


def test_runs_table_with_metric_and_param_columns(page: Page, data: dict[str, Any]) -> None:
    page.open(f"#/experiments/{data['exp']}/runs", "run-0", "run-9", "10 matching runs")
    page.click_text("Columns")  # the user's way to show metric and param columns
    page.wait_text("Metrics (2)", "Parameters (2)")
    for column in ("loss", "accuracy", "lr"):
        page.click_text(column, last=True)
    page.d.find_element(By.TAG_NAME, "body").send_keys(Keys.ESCAPE)
    page.wait_text("0.01", "0.10", "0.86")  # lr of run-0 and run-9, accuracy of run-9
    page.settle()
    page.d.set_window_size(2000, 1000)  # wide enough for the metric and param columns in the screenshot
    page.wait_text("lr")
    page.shot("runs-table")
    page.d.set_window_size(1440, 1000)


def test_run_page_params_metrics_tags(page: Page, data: dict[str, Any]) -> None:
    rid = data["runs"][3]
    page.open(f"#/experiments/{data['exp']}/runs/{rid}", "run-3", "lr", "0.04", "loss", "accuracy", "team",
              "vision", "layers")
    page.settle()
    assert any("/graphql" in u for u in page.paths())
    page.shot("run-overview")


def test_run_artifacts_with_preview(page: Page, data: dict[str, Any]) -> None:
    rid = data["runs"][1]
    page.open(f"#/experiments/{data['exp']}/runs/{rid}/artifacts", "notes", "config.json", "model")
    page.click_text("config.json")
    page.wait_text('"run": 1')
    page.click_text("notes")
    page.click_text("readme.txt")
    page.wait_text("notes of run 1")
    page.settle()
    assert any("/get-artifact?" in u and "readme.txt" in u for u in page.paths())
    page.shot("run-artifacts")


def test_metric_chart_of_one_run(page: Page, data: dict[str, Any]) -> None:
    rid = data["runs"][0]
    page.open(f"#/experiments/{data['exp']}/runs/{rid}/model-metrics", "loss", "accuracy")
    page.wait_text("loss")
    requests = page.settle()
    bulk = [r for r in requests if "get-history-bulk-interval" in r.url and "metric_key=loss" in r.url]
    assert bulk and all(r.status == 200 for r in bulk)
    WebDriverWait(page.d, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot, canvas, svg.main-svg"))
    page.shot("run-metric-chart")


def test_metric_charts_of_ten_runs(page: Page, data: dict[str, Any]) -> None:
    page.open(f"#/experiments/{data['exp']}/runs?compareRunsMode=CHART", "loss", "run-9")
    WebDriverWait(page.d, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot, svg.main-svg"))
    requests = page.settle(quiet_s=1.5)
    loss = [r for r in requests if "get-history-bulk-interval" in r.url and "metric_key=loss" in r.url]
    asked = {part.split("=", 1)[1] for r in loss for part in r.url.split("?", 1)[1].split("&")
             if part.startswith("run_ids=")}
    assert asked == set(data["runs"]), loss
    page.shot("ten-run-charts")


def test_compare_page(page: Page, data: dict[str, Any]) -> None:
    runs = data["runs"][:3]
    page.open(f"#/compare-runs?runs={json.dumps(runs)}&experiments={json.dumps([data['exp']])}",
              "run-0", "run-1", "run-2", "lr", "loss")
    page.settle()
    page.shot("compare-runs")


def test_registry_pages(page: Page, data: dict[str, Any]) -> None:
    model = data["model"]
    page.open("#/models", model)
    page.settle()
    page.shot("registry-models")
    page.open(f"#/models/{model}", "Version 1", "Version 2", "a model for the UI test")
    page.settle()
    page.shot("registry-model")
    page.open(f"#/models/{model}/versions/1", "Version 1", "run-0")
    page.settle()
    assert any("/model-versions/get-artifact?" in u and "MLmodel" in u for u in page.paths())
    page.shot("registry-version")


def test_ui_writes_land_in_the_audit_trail_with_the_actor(page: Page, data: dict[str, Any]) -> None:
    import httpx

    rid, model = data["runs"][5], data["model"]
    page.open(f"#/experiments/{data['exp']}/runs/{rid}", "run-5")
    page.fetch("POST", "/ajax-api/2.0/mlflow/runs/update", {"run_id": rid, "run_name": "renamed-in-ui"})
    page.fetch("POST", "/ajax-api/2.0/mlflow/runs/set-tag", {"run_id": rid, "key": "reviewed", "value": "yes"})
    page.open(f"#/experiments/{data['exp']}/runs/{rid}", "renamed-in-ui", "reviewed", "yes", reload=True)
    page.settle()
    page.open(f"#/models/{model}/versions/2", "Version 2")
    page.fetch("POST", "/ajax-api/2.0/mlflow/model-versions/transition-stage",
               {"name": model, "version": "2", "stage": "Staging", "archive_existing_versions": False})
    page.fetch("POST", "/ajax-api/2.0/mlflow/registered-models/alias",
               {"name": model, "alias": "champion", "version": "2"})
    page.open(f"#/models/{model}/versions/2", "Staging", "champion", reload=True)
    page.settle()
    page.shot("registry-version-after-writes")
    with httpx.Client(base_url=data["url"], timeout=30) as http:
        run_events = http.get(f"/api/v1/runs/{rid}/history").json()["events"]
        trail = http.get(f"/api/v1/registry/models/{model}/history", params={"version": 2}).json()["entries"]
    mine = [(e["type"], e["actor"]) for e in run_events if e["type"] in ("run_renamed", "tags_set")]
    assert ("run_renamed", ACTOR) in mine and ("tags_set", ACTOR) in mine, run_events
    by_ana = {e["type"] for e in trail if e["actor"] == ACTOR}
    assert any("stage" in t for t in by_ana) and any("alias" in t for t in by_ana), trail
