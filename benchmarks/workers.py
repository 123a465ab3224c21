"""Each measurement runs in its own process, so the peak resident memory it reports is its own."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time


def peak_mib() -> int:
    """This process's peak resident memory so far, MiB: its address space's high-water mark, which
    starts afresh at exec (getrusage's ru_maxrss carries the parent's peak into a child)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def run_worker(script: str, *args: str) -> dict:
    """Run ``script`` with ``args`` in a fresh interpreter; its last stdout line is a JSON report."""
    done = subprocess.run([sys.executable, script, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker {list(args)} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_projection(per_store: float, combine_per_store: float, stores: int, combine_spread_limit: int = 1) -> None:
    """Projected wall time for 10x and 100x the stores on 2, 10 and 100 workers: the groups'
    work spread over the workers, the combining over at most ``combine_spread_limit`` of them."""
    for factor in (10, 100):
        n = factor * stores
        plans = ", ".join(f"{w} workers {n / w * per_store + n * combine_per_store / min(w, combine_spread_limit):,.0f} s" for w in (2, 10, 100))
        print(f"projected, {factor}x the stores ({n}): {plans}")


def side_by_side(script: str, commands: list[list[str]]) -> tuple[list[dict], float]:
    """``script`` with each of ``commands`` in processes started at once; their JSON reports and
    the wall time until the last one ended."""
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, script, *args], stdout=subprocess.PIPE, text=True) for args in commands]
    reports = []
    for args, proc in zip(commands, procs, strict=True):
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"a worker failed: {args[-3:]}")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports, time.perf_counter() - started
