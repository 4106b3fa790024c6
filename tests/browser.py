"""Debian's headless Chromium through selenium, for the web UI tests and the request recorder.

No browser is ever downloaded: the driver is ``/usr/bin/chromedriver`` and the browser ``/usr/bin/chromium``
(selenium-manager is turned off). The Chromium performance log (``goog:loggingPrefs``) gives every
request the page made with its HTTP status; the browser log gives JavaScript console errors.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

__all__ = ["CHROMIUM", "CHROMEDRIVER", "browser_missing", "new_driver", "Request", "drain_requests",
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
    def path(self) -> str:
        return urlsplit(self.url).path

    def __str__(self) -> str:
        return f"{self.method} {self.path} -> {self.status if self.status is not None else self.error or 'no answer'}"


def drain_requests(driver: webdriver.Chrome) -> list[Request]:
    """The HTTP(S) requests since the last drain, in the order they were sent, with their status."""
    sent: dict[str, tuple[str, str]] = {}
    order: list[str] = []
    status: dict[str, int] = {}
    failed: dict[str, str] = {}
    for entry in driver.get_log("performance"):
        msg: dict[str, Any] = json.loads(entry["message"])["message"]
        params = msg.get("params", {})
        method = msg.get("method")
        if method == "Network.requestWillBeSent":
            rid = params["requestId"]
            req = params["request"]
            if rid not in sent:
                order.append(rid)
            sent[rid] = (req["method"], req["url"])
        elif method == "Network.responseReceived":
            status[params["requestId"]] = int(params["response"]["status"])
        elif method == "Network.loadingFailed":
            failed[params["requestId"]] = params.get("errorText", "failed")
    return [Request(sent[r][0], sent[r][1], status.get(r), failed.get(r, ""))
            for r in order if sent[r][1].startswith("http")]


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """SEVERE entries of the browser console since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
