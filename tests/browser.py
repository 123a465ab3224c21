"""A real browser for the dashboard test: Debian's chromium under its chromedriver, headless."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def available() -> bool:
    return bool(CHROMIUM and CHROMEDRIVER)


def open_browser(profile: Path, offline: bool = False) -> webdriver.Chrome:
    """Headless chromium; ``offline``: every host but loopback unresolvable, as on a machine
    without internet, and every request logged (``requested_hosts``)."""
    assert CHROMIUM, "callers skip unless available()"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    if offline:
        options.add_argument("--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1")
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1440,1100",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def wait_for_text(driver: webdriver.Chrome, texts: list[str], seconds: float = 60) -> str:
    """Wait until every text shows on the page (Streamlit renders over a websocket); the page text."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        body = driver.find_element(By.TAG_NAME, "body").text
        running = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stStatusWidget"]')
        if all(t in body for t in texts) and not running:
            return body
        time.sleep(0.5)
    raise AssertionError(
        f"page never showed {texts}; it shows:\n{driver.find_element(By.TAG_NAME, 'body').text[:2000]}"
    )


def requested_hosts(driver: webdriver.Chrome) -> set[str]:
    """The hosts (host:port) of every request the page made so far (a browser opened ``offline``)."""
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = urlsplit(message["params"]["request"]["url"])
            if url.scheme in ("http", "https", "ws", "wss"):
                hosts.add(url.netloc)
    return hosts


def exception_boxes(driver: webdriver.Chrome) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')]


def new_profile() -> Path:
    return Path(tempfile.mkdtemp(prefix="chromium-profile-"))
