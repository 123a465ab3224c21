"""The image's HEALTHCHECK: ``python healthcheck.py [ROLE]`` exits 0 when the role's server answers.

The role is the argument, or the one entrypoint.sh started (written to $M5_ROLE_FILE). The API is
healthy once it answers /health: 200 serving, or 503 while no forecast partition exists yet (it
is live and says why); a snapshot's freshness is a metric, not a reason to restart it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request


def _http(port_variable: str, default: int, path: str) -> bool:
    url = f"http://127.0.0.1:{os.environ.get(port_variable, default)}{path}"
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return response.status == 200
    except urllib.error.HTTPError as error:
        return path == "/health" and error.code == 503 and json.load(error).get("live") is True
    except OSError:
        return False


def _command(*args: str) -> bool:
    return subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20).returncode == 0


PROBES = {
    "api": lambda: _http("M5_API_PORT", 8000, "/health"),
    "webserver": lambda: _http("M5_WEBSERVER_PORT", 3000, "/server_info"),
    "dashboard": lambda: _http("M5_DASHBOARD_PORT", 8501, "/_stcore/health"),
    "code-server": lambda: _command(
        "dagster", "api", "grpc-health-check", "-h", "127.0.0.1", "-p", os.environ.get("M5_CODE_SERVER_PORT", "4000")
    ),
    # Heartbeats the daemon wrote to the instance's storage in the last minutes.
    "daemon": lambda: _command("dagster-daemon", "liveness-check"),
}


def main(argv: list[str]) -> int:
    role = argv[0] if argv else None
    if role is None:
        try:
            with open(os.environ.get("M5_ROLE_FILE", "/tmp/m5-role")) as f:
                role = f.read().strip()
        except OSError:
            return 1
    probe = PROBES.get(role)
    if probe is None:
        return 0  # a one-off command (m5 run, ...) serves nothing to probe
    return 0 if probe() else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
