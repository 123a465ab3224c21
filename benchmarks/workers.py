"""Each measurement runs in its own process, so the peak resident memory it reports is its own."""

from __future__ import annotations

import json
import resource
import subprocess
import sys


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
