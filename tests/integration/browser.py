"""A real browser for the dashboard's tests: Debian's headless Chromium, driven through its
chromedriver with selenium (hack/chromium.sh installs both), and the dashboard itself run as
`bgjobs dashboard` in a subprocess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
# As root on a machine with no display and only package registries reachable.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1440,1000",
]
URL_LINE = re.compile(r"Dashboard of .*: (http://\S+)")

T = TypeVar("T")


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (None: they can)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return (
                f"{path} is missing: run hack/chromium.sh (Debian's chromium and chromium-driver)"
            )
    return None


def new_driver(profile: Path) -> webdriver.Chrome:
    """Headless Chromium with a fresh profile directory."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    os.environ["SE_OFFLINE"] = "true"  # selenium must not try to download a driver
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    return driver


class DashboardProcess:
    """`bgjobs dashboard --no-browser` with a kubeconfig, and the URL it printed."""

    def __init__(self, kubeconfig: str, log_path: Path, *flags: str) -> None:
        self.log_path = log_path
        env = {
            **os.environ,
            "KUBECONFIG": kubeconfig,
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                p for p in (str(REPO_ROOT / "operator"), os.environ.get("PYTHONPATH")) if p
            ),
        }
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "bgjobs"), "dashboard", "--no-browser", *flags],
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=REPO_ROOT,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + 60
        self.url = ""
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline().decode()
            if not line:
                if self.proc.poll() is not None:
                    raise AssertionError(f"bgjobs dashboard exited: {self.log_tail()}")
                continue
            match = URL_LINE.search(line)
            if match:
                self.url = match.group(1)
                break
        assert self.url, f"bgjobs dashboard printed no URL: {self.log_tail()}"
        self.base = self.url.split("?", 1)[0].rstrip("/")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()

    def log_tail(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]


def navigate(driver: webdriver.Chrome, url: str, attempts: int = 10) -> int:
    """Open ``url``, again when Chromium showed an error page instead of the dashboard (it
    aborts a load with ERR_NETWORK_CHANGED when the machine's network interfaces change, as
    they do here while other clusters start); returns how many loads were retried."""
    for attempt in range(attempts):
        driver.get(url)
        if driver.execute_script("return document.getElementById('main') !== null"):
            return attempt
        time.sleep(0.5)
    text = driver.find_element(By.TAG_NAME, "body").text[:300]
    raise AssertionError(f"{url} did not load after {attempts} tries: {text}")


def poll(what: str, probe: Callable[[], T | None], timeout: float = 60, interval: float = 0.1) -> T:
    """Call ``probe`` until it returns a truthy value (a vanished element counts as not yet)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (StaleElementReferenceException, WebDriverException) as exc:
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def find(driver: webdriver.Chrome, css: str) -> WebElement | None:
    found = driver.find_elements(By.CSS_SELECTOR, css)
    return found[0] if found else None


def texts(driver: webdriver.Chrome, css: str) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, css)]
