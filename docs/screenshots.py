"""Take the README's screenshots from a real run: every dashboard page and the Dagster asset graph.

    make run && .venv/bin/python docs/screenshots.py      # over $M5_DATA_DIR (default ./data)

Starts the dashboard and the Dagster webserver on free loopback ports over the data folder, opens
each page in headless Chromium (Debian's chromium and chromedriver), writes ``docs/<name>.png`` and
stops both servers by PID.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from shutil import which

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD_PAGES = {  # file name -> (path, text the page shows once drawn)
    "dashboard-home": ("", "Next 28 days from"),
    "dashboard-forecasting": ("forecasting", "same weekdays last year"),
    "dashboard-performance": ("performance", "WAPE, bias and interval coverage per level"),
    "dashboard-inventory": ("inventory", "Most exposed"),
    "dashboard-data": ("data_quality", "Sales explorer"),
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def _server(command: list[str], ready: str, env: dict[str, str]) -> Iterator[None]:
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                urllib.request.urlopen(ready, timeout=2)
                break
            time.sleep(1)
        else:
            raise RuntimeError(f"{command[0]} did not answer {ready}")
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def _browser() -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = which("chromium") or "chromium"
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1440,1800", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(which("chromedriver") or "chromedriver"), options=options)


def _wait_for(driver: webdriver.Chrome, text: str) -> None:
    deadline = time.monotonic() + 90
    while text not in driver.find_element(By.TAG_NAME, "body").text:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{driver.current_url} never showed {text!r}")
        time.sleep(0.5)
    time.sleep(2)  # charts draw after the text


def main() -> int:
    env = dict(os.environ)
    bin_dir = Path(sys.executable).parent
    dashboard, webserver = _free_port(), _free_port()
    streamlit = [sys.executable, "-m", "streamlit", "run", "m5_dashboard/app.py", "--server.headless", "true"]
    streamlit += [
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(dashboard),
        "--browser.gatherUsageStats",
        "false",
    ]
    dagster = [str(bin_dir / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(webserver), "-w", "workspace.yaml"]
    with (
        _server(streamlit, f"http://127.0.0.1:{dashboard}/_stcore/health", env),
        _server(dagster, f"http://127.0.0.1:{webserver}/server_info", env),
    ):
        driver = _browser()
        try:
            for name, (path, text) in DASHBOARD_PAGES.items():
                driver.get(f"http://127.0.0.1:{dashboard}/{path}")
                _wait_for(driver, text)
                driver.save_screenshot(str(ROOT / "docs" / f"{name}.png"))
                print(f"docs/{name}.png")
            driver.get(f"http://127.0.0.1:{webserver}/locations/m5_assets/asset-groups/forecasts")
            deadline = time.monotonic() + 90
            while "forecast_levels" not in driver.page_source:  # the graph's labels sit in SVG
                if time.monotonic() > deadline:
                    driver.save_screenshot("/tmp/graph-failed.png")
                    raise RuntimeError(f"the Dagster asset graph never drew at {driver.current_url}")
                time.sleep(1)
            time.sleep(3)
            for skip in driver.find_elements(By.XPATH, "//button[normalize-space()='Skip']"):
                skip.click()  # the community sign-up dialog of a fresh instance
            time.sleep(2)
            driver.save_screenshot(str(ROOT / "docs" / "dagster-asset-graph.png"))
            print("docs/dagster-asset-graph.png")
        finally:
            driver.quit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
