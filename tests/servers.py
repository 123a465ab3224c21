"""Real servers for tests, on loopback: a process group started here and stopped by its PID, and a
PostgreSQL server from Debian's packages in a temporary folder."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TypedDict


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, process: subprocess.Popen, what: str, seconds: float = 90) -> None:
    """Poll ``ready()`` until it is true; fail early, with the process's output, if it exits."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if ready():
                return
        except OSError:
            pass
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}:\n{_output(process)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not answer within {seconds:.0f} s:\n{_output(process)}")
        time.sleep(0.3)


def http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=2) as response:
        return response.status == 200


def _output(process: subprocess.Popen) -> str:
    log = getattr(process, "log_path", None)
    return Path(log).read_text(errors="replace")[-4000:] if log and Path(log).exists() else ""


class LoggedProcess(subprocess.Popen[bytes]):
    """A process whose output goes to the file ``log_path``, which failure messages quote."""

    log_path: Path


@contextlib.contextmanager
def started(
    command: list[str], env: dict, log: Path, stop_signal: int = signal.SIGTERM, **kwargs
) -> Iterator[LoggedProcess]:
    """``command`` in a process group of its own, its output in ``log``; the group is stopped by
    the leader's PID on exit (``stop_signal``, then SIGKILL after 20 s)."""
    with open(log, "wb") as out:
        process = LoggedProcess(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kwargs
        )
    process.log_path = log
    try:
        yield process
    finally:
        stop_group(process, stop_signal)


def stop_group(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


def postgres_bin(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, or where Debian's packages put it."""
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[4]))
    return versions[-1] if versions else None


class _RunAs(TypedDict, total=False):
    """The subprocess arguments that run a program as another account (empty: as this one)."""

    user: int
    group: int
    extra_groups: list[int]


@contextlib.contextmanager
def postgres_server(user: str = "dagster", password: str = "s3cret-p@ss", database: str = "dagster") -> Iterator[dict]:
    """A PostgreSQL server on 127.0.0.1 with password authentication, in a temporary folder;
    yields the DAGSTER_PG_* settings that reach it. As root it runs as the unprivileged
    ``postgres`` user (or ``nobody``), which PostgreSQL requires."""
    import psycopg2

    initdb, postgres = postgres_bin("initdb"), postgres_bin("postgres")
    assert initdb and postgres, "callers skip when the PostgreSQL server is not installed"
    run_as: _RunAs = {}
    folder = Path(tempfile.mkdtemp(prefix="m5-postgres-"))
    if os.geteuid() == 0:
        account = next(a for a in ("postgres", "nobody") if _has_user(a))
        entry = pwd.getpwnam(account)
        os.chown(folder, entry.pw_uid, entry.pw_gid)
        run_as = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    data, password_file = folder / "data", folder / "password"
    password_file.write_text(password)
    if run_as:
        os.chown(password_file, run_as["user"], run_as["group"])
    try:
        subprocess.run(
            [initdb, "-D", str(data), "-U", user, f"--pwfile={password_file}", "--auth=scram-sha-256", "--no-sync"],
            check=True,
            capture_output=True,
            cwd=folder,
            **run_as,
        )
        port = free_port()
        command = [postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(folder), "-c", "fsync=off"]
        # SIGINT is PostgreSQL's fast shutdown: it does not wait for pooled client connections.
        with started(command, dict(os.environ), folder / "server.log", signal.SIGINT, cwd=folder, **run_as) as server:

            def accepts() -> bool:
                try:
                    psycopg2.connect(
                        host="127.0.0.1", port=port, user=user, password=password, dbname="postgres"
                    ).close()
                    return True
                except psycopg2.OperationalError:
                    return False

            wait_until(accepts, server, "postgres", seconds=60)
            admin = psycopg2.connect(host="127.0.0.1", port=port, user=user, password=password, dbname="postgres")
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{database}"')
            admin.close()
            yield {
                "DAGSTER_PG_HOST": "127.0.0.1",
                "DAGSTER_PG_PORT": str(port),
                "DAGSTER_PG_USER": user,
                "DAGSTER_PG_PASSWORD": password,
                "DAGSTER_PG_DB": database,
            }
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A redis-server (Debian's package) on 127.0.0.1, persisting nothing, in a temporary folder;
    yields its URL."""
    import redis

    binary = shutil.which("redis-server")
    assert binary, "callers skip when redis-server is not installed"
    folder = Path(tempfile.mkdtemp(prefix="m5-redis-"))
    port = free_port()
    command = [
        binary,
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
        "--daemonize",
        "no",
    ]
    url = f"redis://127.0.0.1:{port}/0"
    try:
        with started(command, dict(os.environ), folder / "server.log") as server:
            client = redis.Redis.from_url(url, socket_connect_timeout=1)

            def answers() -> bool:
                try:
                    return client.ping()
                except redis.exceptions.ConnectionError:
                    return False

            wait_until(answers, server, "redis-server", seconds=30)
            client.close()
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def s3_server(bucket: str = "m5-warehouse") -> Iterator[str]:
    """moto's S3-compatible server on 127.0.0.1, in a temporary folder, with one empty bucket;
    yields the query that points pyarrow's S3 filesystem at it (append it to an s3:// URL).
    Credentials are moto's fixed test ones; the caller sets them in the environment."""
    folder = Path(tempfile.mkdtemp(prefix="m5-s3-"))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    try:
        with started(command, env, folder / "server.log") as server:
            wait_until(lambda: http_ok(f"{endpoint}/moto-api/"), server, "moto server", seconds=60)
            import pyarrow.fs as pafs

            fs = pafs.S3FileSystem(
                access_key="testing",
                secret_key="testing",
                region="us-east-1",
                scheme="http",
                endpoint_override=f"127.0.0.1:{port}",
                allow_bucket_creation=True,
            )
            fs.create_dir(bucket)
            yield f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
