"""MLflow's own web UI on runledger, in Debian's headless Chromium (selenium, no browser download).

Data is logged with the stock mlflow client; every page the issue names is opened through its hash route,
its content is waited for and asserted, and every request the page made is checked: a status >= 400, a
failed load or a SEVERE console error fails the test — except the one probe the stock server answers with
404 itself when authentication is off (``users/current``, see docs/UI.md). The UI writes (rename a run,
add and edit a run tag, transition a stage, set an alias) are done as a user does them: clicking the UI's
menus and buttons and typing into its modals, with the browser authenticated as ``ana`` (HTTP Basic on
every request, as behind an auth proxy); each write's request is checked, the page shows the change (and
again after a reload) and the audit trail names ``ana``. Screenshots go to docs/screenshots/.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import NetworkLog, Request, browser_missing, console_errors, new_driver
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.webdriver import WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions
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


def xpath_literal(text: str) -> str:
    """``text`` as an XPath 1.0 string literal (XPath has no escapes: quoted with the quote it lacks)."""
    assert not ('"' in text and "'" in text), text
    return f"'{text}'" if '"' in text else f'"{text}"'


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

    def find(self, css: str, timeout_s: float = 20.0) -> WebElement:
        """The first displayed element matching ``css``, waited for."""
        return self._shown(By.CSS_SELECTOR, css, timeout_s)

    def find_xpath(self, xpath: str, timeout_s: float = 20.0) -> WebElement:
        """The first displayed element matching ``xpath``, waited for."""
        return self._shown(By.XPATH, xpath, timeout_s)

    def _shown(self, by: str, selector: str, timeout_s: float) -> WebElement:
        def shown(d: WebDriver) -> WebElement | None:
            return next((e for e in d.find_elements(by, selector) if e.is_displayed()), None)
        try:
            el: WebElement = WebDriverWait(self.d, timeout_s, poll_frequency=0.2).until(shown)
        except TimeoutException:
            raise AssertionError(f"{self.d.current_url}: no visible {selector}; page text:\n{self.body()[:2000]}") from None
        return el

    def wait_for(self, what: str, condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
        """Wait until ``condition()`` holds (elements the page re-rendered meanwhile are looked up again)."""
        try:
            WebDriverWait(self.d, timeout_s, poll_frequency=0.2, ignored_exceptions=[StaleElementReferenceException]
                          ).until(lambda d: condition())
        except TimeoutException:
            raise AssertionError(f"{self.d.current_url}: {what} never happened; page text:\n{self.body()[:2000]}") from None

    def dialog(self, title: str) -> WebElement:
        """The open modal whose title is ``title``."""
        return self.find_xpath(f"//*[@role='dialog'][.//*[normalize-space(text())={xpath_literal(title)}]]")

    def submit(self, dialog: WebElement, button: str, timeout_s: float = 20.0) -> None:
        """Click the modal's ``button`` and wait until the modal closed (the UI closes it once the write
        was answered)."""
        dialog.find_element(By.XPATH, f".//button[normalize-space()={xpath_literal(button)}]").click()
        closed = expected_conditions.invisibility_of_element(dialog)  # also when the modal left the page
        self.wait_for(f"the modal closing after {button!r}", lambda: bool(closed(self.d)), timeout_s)

    def choose(self, option: str, timeout_s: float = 20.0) -> None:
        """Click the option ``option`` of the open dropdown, drawn at the end of the page (after the modal
        that opened it); the select's own hidden list of options for screen readers is not displayed."""
        text = xpath_literal(option)
        xpath = f"//*[normalize-space()={text}][not(*[normalize-space()={text}])]"
        self.wait_for(f"the option {option!r}",
                      lambda: any(e.is_displayed() for e in self.d.find_elements(By.XPATH, xpath)), timeout_s)
        [e for e in self.d.find_elements(By.XPATH, xpath) if e.is_displayed()][-1].click()

    def type_into(self, field: WebElement, text: str) -> None:
        """Replace what ``field`` holds with ``text``, keystroke by keystroke."""
        field.send_keys(Keys.CONTROL, "a")
        field.send_keys(Keys.DELETE)
        field.send_keys(text)

    def field(self, label: str) -> WebElement:
        """The descriptions row ``label`` of a registry page (its value)."""
        return self.find_xpath(f"//*[@data-testid='descriptions-item'][*[@data-testid='descriptions-item-label']"
                               f"[normalize-space()={xpath_literal(label)}]]/*[@data-testid='descriptions-item-content']")

    def new_registry_ui(self, on: bool) -> None:
        """Turn the registry's "New model registry UI" switch ``on`` or off as a user does: stages can only
        be changed with it off (the new UI shows them read-only, as deprecated); aliases only with it on."""
        switch = self.find("[role=switch][aria-label='New model registry UI']")
        if (switch.get_attribute("aria-checked") == "true") == on:
            return
        switch.click()
        if not on:
            self.submit(self.dialog("Disable the new model stages"), "Disable")
        self.wait_for(f"the new registry UI switched {'on' if on else 'off'}",
                      lambda: (switch.get_attribute("aria-checked") == "true") == on)

    def sent(self, method: str, path: str) -> list[Request]:
        """The requests ``method path`` of this visit so far (answers checked by :meth:`settle`)."""
        self.network.poll()
        return [r for r in self.network.requests(self.since) if r.method == method and r.path == path]

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


def run_events(data: dict[str, Any], rid: str) -> list[dict[str, Any]]:
    """The run's audit trail."""
    out: list[dict[str, Any]] = httpx.get(f"{data['url']}/api/v1/runs/{rid}/history", timeout=30).json()["events"]
    return out


def version_trail(data: dict[str, Any], version: int) -> list[dict[str, Any]]:
    """The audit trail of the test model's ``version``."""
    out: list[dict[str, Any]] = httpx.get(f"{data['url']}/api/v1/registry/models/{data['model']}/history",
                                          params={"version": version}, timeout=30).json()["entries"]
    return out


def test_ui_rename_run_lands_in_the_audit_trail_with_the_actor(page: Page, data: dict[str, Any]) -> None:
    rid = data["runs"][5]
    route = f"#/experiments/{data['exp']}/runs/{rid}"
    page.open(route, "run-5")
    page.find("[data-testid=overflow-menu-trigger]").click()  # the run header's "..." menu
    page.find_xpath("//*[@role='menuitem'][normalize-space()='Rename']").click()
    dialog = page.dialog("Rename Run")
    page.type_into(dialog.find_element(By.CSS_SELECTOR, "[data-testid=rename-modal-input]"), "renamed-in-ui")
    page.submit(dialog, "Save")
    page.wait_for("the new name in the run's header", lambda: page.find("[data-testid=runs-header]").text == "renamed-in-ui")
    page.settle()
    assert [r.status for r in page.sent("POST", "/ajax-api/2.0/mlflow/runs/update")] == [200]
    page.open(route, "renamed-in-ui", reload=True)
    page.settle()
    events = run_events(data, rid)
    assert ("run_renamed", ACTOR, {"name": "renamed-in-ui"}) in [(e["type"], e["actor"], e["body"]) for e in events], events


def _save_tag(page: Page, key: str, option: str, value: str) -> None:
    """The run page's tag editor as a user works it: Edit tags, type the key, pick ``option`` from the key
    list (a new key's "Add tag ..." or an existing key), set the value, Add tag, Save tags."""
    page.find("button[aria-label='Edit tags']").click()
    dialog = page.dialog("Add/Edit tags")
    dialog.find_element(By.CSS_SELECTOR, "input[role=combobox]").send_keys(key)
    page.choose(option)
    page.type_into(dialog.find_element(By.CSS_SELECTOR, "input[aria-label='Value']"), value)
    dialog.find_element(By.CSS_SELECTOR, "button[aria-label='Add tag']").click()
    page.submit(dialog, "Save tags")


def test_ui_add_run_tag_lands_in_the_audit_trail_with_the_actor(page: Page, data: dict[str, Any]) -> None:
    rid = data["runs"][6]
    route = f"#/experiments/{data['exp']}/runs/{rid}"
    page.open(route, "run-6", "team", "vision")
    _save_tag(page, "reviewed", 'Add tag "reviewed"', "yes")  # Key: a new one
    page.wait_text("reviewed", ": yes", "team", ": vision")
    page.settle()
    assert [r.status for r in page.sent("POST", "/ajax-api/2.0/mlflow/runs/set-tag")] == [200]
    page.open(route, "reviewed", ": yes", reload=True)
    page.settle()
    events = run_events(data, rid)
    assert ("tags_set", ACTOR, {"tags": {"reviewed": "yes"}}) in [(e["type"], e["actor"], e["body"]) for e in events], events


def test_ui_edit_run_tag_lands_in_the_audit_trail_with_the_actor(page: Page, data: dict[str, Any]) -> None:
    rid = data["runs"][7]
    route = f"#/experiments/{data['exp']}/runs/{rid}"
    page.open(route, "run-7", "team", ": vision")
    _save_tag(page, "team", "team", "robotics")  # Key: the existing one
    page.wait_text("team", ": robotics")
    page.settle()
    assert [r.status for r in page.sent("POST", "/ajax-api/2.0/mlflow/runs/set-tag")] == [200]
    page.open(route, "team", ": robotics", reload=True)
    assert ": vision" not in page.body()
    page.settle()
    events = run_events(data, rid)
    assert ("tags_set", ACTOR, {"tags": {"team": "robotics"}}) in [(e["type"], e["actor"], e["body"]) for e in events], events


def test_ui_set_alias_lands_in_the_audit_trail_with_the_actor(page: Page, data: dict[str, Any]) -> None:
    route = f"#/models/{data['model']}/versions/2"
    page.open(route, "Version 2")
    page.new_registry_ui(True)
    page.field("Aliases").find_element(By.XPATH, ".//button[normalize-space()='Add']").click()
    dialog = page.dialog("Add/Edit alias for model version 2")
    dialog.find_element(By.CSS_SELECTOR, "input[role=combobox]").send_keys("champion")
    page.choose("champion")
    page.submit(dialog, "Save aliases")
    page.wait_for("the alias on the version", lambda: "champion" in page.field("Aliases").text)
    page.settle()
    assert [r.status for r in page.sent("POST", "/ajax-api/2.0/mlflow/registered-models/alias")] == [200]
    page.open(route, "Version 2", reload=True)
    page.wait_for("the alias on the version", lambda: "champion" in page.field("Aliases").text)
    page.settle()
    trail = version_trail(data, 2)
    assert ("registered_model_alias_set", ACTOR, [{"field": "alias.champion", "before": None, "after": 2}]) in [
        (e["type"], e["actor"], e["changes"]) for e in trail], trail


def test_ui_transition_stage_lands_in_the_audit_trail_with_the_actor(page: Page, data: dict[str, Any]) -> None:
    route = f"#/models/{data['model']}/versions/2"
    page.open(route, "Version 2")
    page.new_registry_ui(False)
    page.field("Stage").find_element(By.CSS_SELECTOR, "[role=status]").click()  # the stage: its dropdown
    page.find_xpath("//*[@role='menuitem'][contains(., 'Transition to') and contains(., 'Production')]").click()
    dialog = page.dialog("Stage transition")
    page.wait_for("the modal opened and the menu closed (their animations ended)", lambda: page.d.execute_script(
        "return document.getAnimations().every(a => a.effect.getComputedTiming().endTime === Infinity)"))
    page.shot("registry-stage-transition-modal")
    page.submit(dialog, "OK")
    page.wait_for("the new stage on the version", lambda: page.field("Stage").text == "Production")
    page.settle()
    sent = page.sent("POST", "/ajax-api/2.0/mlflow/model-versions/transition-stage")
    assert [r.status for r in sent] == [200]
    page.new_registry_ui(True)  # back to the UI's default (it is kept in the browser's local storage)
    page.open(route, "Stage (deprecated)", "Production", reload=True)
    page.settle()
    page.shot("registry-version-after-writes")
    trail = version_trail(data, 2)
    assert ("model_version_stage_transitioned", ACTOR, [{"field": "stage", "before": "None", "after": "Production"}]) in [
        (e["type"], e["actor"], e["changes"]) for e in trail], trail
