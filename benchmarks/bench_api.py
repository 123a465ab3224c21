"""Full-scale API benchmark: lookups from the in-memory snapshot against a DuckDB query per request.

Run with ``make bench`` (or alone: ``.venv/bin/python benchmarks/bench_api.py``). It writes one
forecast partition of the full M5 shape (30,490 series x 28 days, and the 11 upper levels) from
the series of the cached full-scale data set, with made-up values (serving does not look at them),
then starts each server on loopback in its own process and drives it from this one:
- a fixed rate (default 500 requests a second for 10 s, open loop: latency counts from the
  moment a request was due, so a stalled server cannot hide its queue), for ``/predict``;
- as fast as it answers (closed loop, 8 connections), for ``/health`` (the ceiling),
  ``/predict``, ``/predict/batch`` with 100 items, and the baseline: the same ``/predict``
  answered by a DuckDB query over the partition's Parquet file per request;
- and the same ``/predict`` loads with Redis as the online store (redis-server on loopback).
Figures are printed as ratios to the named baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
TARGETS = {
    "p99_ms_at_500": 10.0,
    "vs_health": 0.70,
    "vs_duckdb": 10.0,
    "batch_p99_ms": 50.0,
    "load_s": 10.0,
    "load_mib": 1536,
}
FORECAST_DATE = "2016-05-23"


# --- the data -------------------------------------------------------------------------------


def write_partition(data: Path) -> pd.DataFrame:
    """A forecast partition of the full shape, with the real hierarchy columns; returns its series."""
    sys.path.insert(0, str(HERE.parent))
    from m5_assets import tables
    from m5_assets.metrics import LEVELS

    sales = pd.read_csv(
        data / "raw" / "sales_train_evaluation.csv",
        usecols=["id", "item_id", "dept_id", "cat_id", "store_id", "state_id"],
    )
    day = pd.Timestamp(FORECAST_DATE).date()
    rng = np.random.default_rng(0)
    bottom = sales.loc[sales.index.repeat(28)].reset_index(drop=True)
    bottom["date"] = np.tile(pd.date_range(FORECAST_DATE, periods=28).date, len(sales))
    bottom["horizon"] = np.tile(np.arange(1, 29, dtype=np.int16), len(sales))
    forecast = rng.gamma(1.0, 1.4, len(bottom))
    bottom["forecast"] = forecast
    for level, width in ((50, 0.5), (80, 1.0), (95, 2.0)):
        bottom[f"lo_{level}"] = np.maximum(forecast - width, 0)
        bottom[f"hi_{level}"] = forecast + width
    bottom["model_version"], bottom["mlflow_run_id"] = "1", "bench"
    values = ["forecast", "lo_50", "hi_50", "lo_80", "hi_80", "lo_95", "hi_95"]
    levels = []
    for level, name, keys in LEVELS[:-1]:
        group = (
            bottom.groupby([*keys, "date", "horizon"], sort=True)[values].sum().reset_index()
            if keys
            else bottom.groupby(["date", "horizon"], sort=True)[values].sum().reset_index()
        )
        levels.append(group.assign(level=np.int8(level), level_name=name))
    levels = pd.concat(levels, ignore_index=True).assign(model_version="1", mlflow_run_id="bench")
    for table, frame in ((tables.FORECAST_LEVELS, levels), (tables.FORECASTS, bottom)):
        path = table.path(data / "warehouse", day)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(path, index=False)
    return sales


# --- the servers ----------------------------------------------------------------------------

NAIVE_APP = """
import duckdb, threading
from fastapi import FastAPI
from pydantic import BaseModel
PATH = {path!r}
app = FastAPI()
local = threading.local()
class Q(BaseModel):
    item_id: str
    store_id: str
    date: str
@app.get("/health")
def health():
    return {{"ready": True}}
@app.post("/predict")
def predict(q: Q):
    if not hasattr(local, "con"):
        local.con = duckdb.connect()
    row = local.con.execute(
        f"SELECT forecast, lo_95, hi_95, horizon FROM read_parquet('{{PATH}}') WHERE item_id = ? AND store_id = ? AND date = ?",
        [q.item_id, q.store_id, q.date]).fetchone()
    return {{"predicted_sales": row[0], "prediction_interval": {{"lower": row[1], "upper": row[2], "level": 95}}, "horizon": row[3]}}
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024
    return 0


def start_server(args: list[str], env: dict, port: int) -> tuple[subprocess.Popen, float]:
    """Start a server and wait until /health answers 200; seconds until then."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    while time.perf_counter() - started < 120:
        if proc.poll() is not None:
            assert proc.stderr is not None  # stderr=PIPE above
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                if b" 200 " in s.recv(4096).split(b"\r\n")[0] + b" ":
                    return proc, time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server did not become ready in 120 s")


def stop_server(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def start_redis() -> tuple[subprocess.Popen, str]:
    """Debian's redis-server on loopback, persisting nothing; stopped by its PID with stop_server."""
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.perf_counter() + 30
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    stop_server(proc)
    raise RuntimeError("redis-server did not answer in 30 s")


# --- the load generator: raw HTTP/1.1 keep-alive connections on asyncio -------------------------


def _request(method: str, path: str, body: bytes | None) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    if body is not None:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + (body or b"")


async def _exchange(reader, writer, payload: bytes) -> int:
    writer.write(payload)
    await writer.drain()
    status_line = await reader.readline()
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    await reader.readexactly(length)
    return int(status_line.split()[1])


async def closed_loop(port: int, requests: list[bytes], seconds: float, connections: int = 8) -> dict:
    latencies, errors = [], 0
    deadline = time.perf_counter() + seconds

    async def worker(k: int):
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        i = k
        while time.perf_counter() < deadline:
            t = time.perf_counter()
            status = await _exchange(reader, writer, requests[i % len(requests)])
            latencies.append(time.perf_counter() - t)
            errors += status != 200
            i += connections
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(k) for k in range(connections)))
    return _summary(latencies, errors, time.perf_counter() - started)


async def open_loop(port: int, requests: list[bytes], rate: float, seconds: float, connections: int = 32) -> dict:
    """Requests due at a fixed rate; latency from when each was due."""
    latencies, errors = [], 0
    due = [k / rate for k in range(int(rate * seconds))]
    queue: asyncio.Queue = asyncio.Queue()
    start = time.perf_counter()

    async def scheduler():
        for k, offset in enumerate(due):
            delay = start + offset - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((start + offset, requests[k % len(requests)]))
        for _ in range(connections):
            queue.put_nowait(None)

    async def worker():
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while (item := await queue.get()) is not None:
            when, payload = item
            status = await _exchange(reader, writer, payload)
            latencies.append(time.perf_counter() - when)
            errors += status != 200
        writer.close()

    await asyncio.gather(scheduler(), *(worker() for _ in range(connections)))
    return _summary(latencies, errors, time.perf_counter() - start)


def _summary(latencies: list[float], errors: int, seconds: float) -> dict:
    ms = np.array(latencies) * 1000
    return {
        "requests": len(ms),
        "errors": int(errors),
        "rps": len(ms) / seconds,
        "p50": float(np.percentile(ms, 50)),
        "p95": float(np.percentile(ms, 95)),
        "p99": float(np.percentile(ms, 99)),
    }


# --- the driver -----------------------------------------------------------------------------


def _run(coroutine):
    """uvloop where installed (uvicorn brings it): the generator shares the 2 cores with the server,
    so the cheaper its own loop, the more of what is measured is the server."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def run_online(env: dict, predict: list[bytes], batch: list[bytes], args, results: dict) -> float:
    """The /predict loads against a server whose snapshot is in Redis; seconds until it was ready."""
    redis_server, redis_url = start_redis()
    try:
        port = _free_port()
        online, online_load_s = start_server(
            [sys.executable, "-m", "m5_serving", "--port", str(port)], env | {"M5_API_REDIS_URL": redis_url}, port
        )
        try:
            results |= {
                "/predict, Redis": _run(closed_loop(port, predict, args.seconds)),
                f"/predict at {args.rate:.0f}/s, Redis": _run(open_loop(port, predict, args.rate, args.seconds)),
                "/predict/batch (100), Redis": _run(closed_loop(port, batch, args.seconds, connections=2)),
            }
        finally:
            stop_server(online)
    finally:
        stop_server(redis_server)
    return online_load_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=500.0)
    args = parser.parse_args()

    data = HERE / ".cache" / "api-full"
    raw = HERE / ".cache" / "full-seed42" / "raw"
    if not raw.exists():
        print("generating the full data set once (as bench_features does) ...", flush=True)
        subprocess.run(
            [sys.executable, "-m", "m5_assets.cli", "generate", "--scale", "full", "--out", str(raw)], check=True
        )
    (data / "raw").mkdir(parents=True, exist_ok=True)
    if not (data / "raw" / "sales_train_evaluation.csv").exists():
        os.symlink(raw / "sales_train_evaluation.csv", data / "raw" / "sales_train_evaluation.csv")
    series = write_partition(data)
    # The snapshot also holds each series' newest feature row: with the full-scale feature store
    # of bench_features (if it ran), the load time includes reading them.
    features = HERE / ".cache" / "full-seed42" / "warehouse" / "features"
    target = data / "warehouse" / "features"
    if features.is_dir() and not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(features, target)
    rng = random.Random(0)
    days = pd.date_range(FORECAST_DATE, periods=28).strftime("%Y-%m-%d").tolist()
    lookups = [
        {"item_id": r.item_id, "store_id": r.store_id, "date": rng.choice(days)}
        for r in series.sample(5000, random_state=1).itertuples()
    ]
    predict = [_request("POST", "/predict", json.dumps(q).encode()) for q in lookups]
    batch = [
        _request("POST", "/predict/batch", json.dumps({"items": lookups[k : k + 100]}).encode())
        for k in range(0, 5000, 100)
    ]
    health = [_request("GET", "/health", None)]

    env = os.environ | {"M5_DATA_DIR": str(data), "M5_API_RATE_LIMIT": "0", "M5_API_RELOAD_SECONDS": "0"}
    env.pop("M5_API_KEYS", None)
    port = _free_port()
    ours, load_s = start_server([sys.executable, "-m", "m5_serving", "--port", str(port)], env, port)
    try:
        load_mib = _rss_mib(ours.pid)
        results = {
            "/health (ceiling)": _run(closed_loop(port, health, args.seconds)),
            "/predict": _run(closed_loop(port, predict, args.seconds)),
            f"/predict at {args.rate:.0f}/s": _run(open_loop(port, predict, args.rate, args.seconds)),
            "/predict/batch (100)": _run(closed_loop(port, batch, args.seconds, connections=2)),
        }
        peak_mib = _rss_mib(ours.pid)
    finally:
        stop_server(ours)

    # The same server with Redis as its online store (one HGET per lookup), in the same run.
    online_load_s = None
    if shutil.which("redis-server") is None:
        print("redis-server is not installed (Debian's redis-server package): the Redis loads are left out", flush=True)
    else:
        online_load_s = run_online(env, predict, batch, args, results)

    naive_file = HERE / ".cache" / "naive_app.py"
    naive_file.write_text(
        NAIVE_APP.format(path=str(data / "warehouse" / "forecasts" / f"forecast_date={FORECAST_DATE}" / "data.parquet"))
    )
    port = _free_port()
    naive, _ = start_server(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "naive_app:app",
            "--app-dir",
            str(naive_file.parent),
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env,
        port,
    )
    try:
        results["/predict, DuckDB per request (baseline)"] = _run(closed_loop(port, predict, args.seconds))
    finally:
        stop_server(naive)

    print(f"\n== API on loopback, 1 server process, full-scale snapshot ({len(series):,} series x 28 days + levels) ==")
    with_features = (
        "with"
        if (data / "warehouse" / "features" / "_manifest.json").exists()  # table_files.MANIFEST
        else "WITHOUT (run bench_features.py first)"
    )
    print(
        f"snapshot {with_features} the newest feature rows: ready {load_s:.1f} s after start (process start, imports and load), "
        f"{load_mib} MiB resident then, {peak_mib} MiB peak"
    )
    print(f"{'load':42s} {'requests':>9s} {'errors':>7s} {'req/s':>8s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s}")
    for name, r in results.items():
        print(
            f"{name:42s} {r['requests']:9d} {r['errors']:7d} {r['rps']:8.0f} {r['p50']:8.2f} {r['p95']:8.2f} {r['p99']:8.2f}"
        )
    fixed = results[f"/predict at {args.rate:.0f}/s"]
    vs_health = results["/predict"]["rps"] / results["/health (ceiling)"]["rps"]
    vs_duckdb = results["/predict"]["rps"] / results["/predict, DuckDB per request (baseline)"]["rps"]
    checks = [
        (
            f"/predict p99 at {args.rate:.0f}/s < {TARGETS['p99_ms_at_500']} ms, no errors",
            f"{fixed['p99']:.2f} ms, {fixed['errors']} errors",
            fixed["p99"] < TARGETS["p99_ms_at_500"] and fixed["errors"] == 0,
        ),
        (
            f"/predict throughput >= {TARGETS['vs_health']:.0%} of /health's",
            f"{vs_health:.2f}x",
            vs_health >= TARGETS["vs_health"],
        ),
        (
            f"/predict >= {TARGETS['vs_duckdb']:.0f}x the DuckDB-per-request baseline",
            f"{vs_duckdb:.1f}x",
            vs_duckdb >= TARGETS["vs_duckdb"],
        ),
        (
            f"batch of 100 p99 < {TARGETS['batch_p99_ms']} ms",
            f"{results['/predict/batch (100)']['p99']:.1f} ms",
            results["/predict/batch (100)"]["p99"] < TARGETS["batch_p99_ms"],
        ),
        (
            f"snapshot ready < {TARGETS['load_s']} s, < {TARGETS['load_mib']} MiB",
            f"{load_s:.1f} s, {load_mib} MiB",
            load_s < TARGETS["load_s"] and load_mib < TARGETS["load_mib"],
        ),
    ]
    if online_load_s is not None:
        checks.append(redis_summary(results, args.rate, online_load_s))
    for goal, measured, met in checks:
        print(f"{goal:60s} {measured:>20s}  {'met' if met else 'MISSED'}")
    return 0


def redis_summary(results: dict, rate: float, online_load_s: float) -> tuple[str, str, bool]:
    """Prints the Redis figures as ratios to the in-memory ones; the Redis target's check."""
    in_memory, in_redis = results[f"/predict at {rate:.0f}/s"], results[f"/predict at {rate:.0f}/s, Redis"]
    print(
        f"Redis online store: ready {online_load_s:.1f} s after start (publishing the snapshot included); /predict p99 at "
        f"{rate:.0f}/s {in_redis['p99']:.2f} ms = {in_redis['p99'] / in_memory['p99']:.2f}x the in-memory snapshot's; "
        f"closed loop {results['/predict, Redis']['rps'] / results['/predict']['rps']:.2f}x its requests/s; batch of 100 p99 "
        f"{results['/predict/batch (100), Redis']['p99'] / results['/predict/batch (100)']['p99']:.2f}x"
    )
    return (
        f"Redis /predict p99 at {rate:.0f}/s < {TARGETS['p99_ms_at_500']} ms, no errors",
        f"{in_redis['p99']:.2f} ms, {in_redis['errors']} errors",
        in_redis["p99"] < TARGETS["p99_ms_at_500"] and in_redis["errors"] == 0,
    )


if __name__ == "__main__":
    sys.exit(main())
