"""``python -m m5_serving [--host H] [--port P]``: the API under uvicorn.

Without an API key configured it serves loopback only, and refuses any other address.
"""

from __future__ import annotations

import argparse
import glob
import ipaddress
import os
import sys
import tempfile
from pathlib import Path

import uvicorn

from m5_assets import library_env
from m5_assets.settings import Settings, SettingsError
from m5_serving.config import ServingSettings
from m5_serving.security import open_bucket_file, parse_keys


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def fresh_metrics_dir(given: str | None) -> str:
    """The multiprocess metrics folder, emptied: samples of an earlier server would be added in."""
    if not given:
        return tempfile.mkdtemp(prefix="m5-api-metrics-")
    os.makedirs(given, exist_ok=True)
    for stale in glob.glob(os.path.join(given, "*.db")):
        os.remove(stale)
    return given


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m m5_serving", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--workers", type=int, default=1, help="more than 1: gunicorn with uvicorn workers (sharing one rate limit)"
    )
    args = parser.parse_args(argv)
    try:
        settings = ServingSettings.from_env()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    keys = parse_keys(settings.keys, settings.keys_file)
    if not keys and not is_loopback(args.host):
        print(
            f"refusing to serve on {args.host} without an API key: set M5_API_KEYS or M5_API_KEYS_FILE, "
            "or bind 127.0.0.1",
            file=sys.stderr,
        )
        return 2
    if not keys:
        print(f"no API key configured: serving {args.host} (loopback) only, without authentication", file=sys.stderr)
    if args.workers > 1:
        # Each worker loads its own snapshot; the logs go to stdout as JSON lines; the metrics are
        # combined over the workers through files in PROMETHEUS_MULTIPROC_DIR.
        metrics = fresh_metrics_dir(library_env.prometheus_multiproc_dir())
        library_env.hand_to_child_processes({library_env.PROMETHEUS_MULTIPROC_DIR: metrics})
        # Without Redis, the workers share their rate-limit buckets through one SQLite file; a
        # fresh one, so a restart forgets the last server's counts.
        if not settings.redis_url:
            buckets = settings.rate_limit_file or Path(tempfile.mkdtemp(prefix="m5-api-ratelimit-")) / "buckets.sqlite"
            open_bucket_file(buckets).close()  # before the workers fork: they would race to create it
            library_env.hand_to_child_processes(Settings.exported(api_rate_limit_file=buckets))
        os.execvp(
            "gunicorn",
            [
                "gunicorn",
                "m5_serving.app:create_app()",
                "--worker-class",
                "uvicorn.workers.UvicornWorker",
                "--workers",
                str(args.workers),
                "--bind",
                f"{args.host}:{args.port}",
                "--log-level",
                "warning",
                "--config",
                "python:m5_serving.gunicorn_conf",
            ],
        )
    from m5_serving.app import create_app

    uvicorn.run(create_app(settings), host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
