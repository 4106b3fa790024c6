"""Debian's headless Chromium through selenium, for the web UI tests and the request recorder.

No browser is ever downloaded: the driver is ``/usr/bin/chromedriver`` and the browser ``/usr/bin/chromium``
(selenium-manager is turned off). The Chromium performance log (``goog:loggingPrefs``) gives every
request the page made with its HTTP status; the browser log gives JavaScript console errors.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

__all__ = ["CHROMIUM", "CHROMEDRIVER", "browser_missing", "new_driver", "Request", "NetworkLog",
           "console_errors"]

CHROMIUM = os.environ.get("RUNLEDGER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("RUNLEDGER_CHROMEDRIVER", "/usr/bin/chromedriver")


def browser_missing() -> str | None:
    """Why the browser cannot start here (None when it can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).is_file() and os.access(path, os.X_OK)) and shutil.which(path) is None:
            return f"{path} is missing: apt-get install -y chromium chromium-driver"
    return None


def new_driver(width: int = 1440, height: int = 1000) -> webdriver.Chrome:
    os.environ["SE_MANAGER_PATH"] = "/bin/false"  # never let selenium-manager download anything
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--disable-extensions", "--no-first-run",
                "--disable-background-networking", "--disable-component-update"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    status: int | None
    """None when no response arrived (failed, blocked or still pending)."""
    error: str = ""

    @property
    def in_worker(self) -> bool:
        """A web worker's script: its response is reported in the worker's own target, not the page's."""
        return self.path.endswith(".worker.js")

    @property
    def path(self) -> str:
        return urlsplit(self.url).path

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status if self.status is not None else self.error or 'no answer'}"


class NetworkLog:
    """Every HTTP(S) request the browser sent, with its status, gathered from the performance log.

    The log is drained as it is read, and a response often arrives in a later read than its request, so
    the state is kept across reads: :meth:`poll` adds what is new, :meth:`requests` lists everything
    (or everything since a :meth:`mark`) in the order sent.
    """

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self._sent: dict[str, tuple[str, str]] = {}
        self._order: list[str] = []
        self._status: dict[str, int] = {}
        self._failed: dict[str, str] = {}

    def poll(self) -> int:
        """Read the new log entries; returns how many requests were new."""
        new = 0
        for entry in self.driver.get_log("performance"):
            msg: dict[str, Any] = json.loads(entry["message"])["message"]
            params = msg.get("params", {})
            method = msg.get("method")
            if method == "Network.requestWillBeSent":
                rid = params["requestId"]
                req = params["request"]
                if rid not in self._sent and req["url"].startswith("http"):
                    self._order.append(rid)
                    new += 1
                self._sent[rid] = (req["method"], req["url"])
            elif method == "Network.responseReceived":
                self._status[params["requestId"]] = int(params["response"]["status"])
            elif method == "Network.loadingFailed":
                self._failed[params["requestId"]] = params.get("errorText", "failed")
        return new

    def mark(self) -> int:
        self.poll()
        return len(self._order)

    def requests(self, since: int = 0) -> list[Request]:
        return [Request(*self._sent[r], self._status.get(r), self._failed.get(r, "")) for r in self._order[since:]]

    def settle(self, since: int = 0, quiet_s: float = 0.8, timeout_s: float = 30.0) -> list[Request]:
        """Wait until every request since ``since`` was answered and none was sent for ``quiet_s``."""
        deadline = time.monotonic() + timeout_s
        last_new = time.monotonic()
        while time.monotonic() < deadline:
            if self.poll():
                last_new = time.monotonic()
            pending = [r for r in self.requests(since) if r.status is None and not r.error and not r.in_worker]
            if not pending and time.monotonic() - last_new >= quiet_s:
                break
            time.sleep(0.2)
        return self.requests(since)


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """SEVERE entries of the browser console since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
