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


def rss_mib() -> int:
    """This process's resident memory now, MiB (``peak_mib`` is its high-water mark)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) // 1024
    return 0


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
        plans = ", ".join(
            f"{w} workers {n / w * per_store + n * combine_per_store / min(w, combine_spread_limit):,.0f} s"
            for w in (2, 10, 100)
        )
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


def report_store_groups(
    title: str,
    stores: list,
    groups: list[list[str]],
    unsharded: dict,
    parts: list[dict],
    parts_wall: float,
    combined: dict,
    agreement: str,
    one_group: tuple[dict, dict] | None = None,
) -> None:
    """The figures of a one-process run against store groups side by side then one combining
    process: times, peaks, the speed-up, ``agreement`` (how the results compare), per-store
    costs and the projection; and, given ``one_group`` (its group step's and its combining step's
    figures), what the default run of the same graph costs against the one process."""
    total = parts_wall + combined["seconds"]
    print(f"\n== {title}, full scale ({len(stores)} stores), {len(groups)} store groups on 2 cores ==")
    print(
        f"unsharded, one process: {unsharded['seconds']:.1f} s{_checking(unsharded)}, peak {unsharded['peak_mib']} MiB"
    )
    for k, (group, part) in enumerate(zip(groups, parts, strict=True)):
        staged = f", staged {part['staged_mib']} MiB" if "staged_mib" in part else ""
        print(
            f"group {k} ({', '.join(group)}): {part['seconds']:.1f} s{_checking(part)}, peak {part['peak_mib']} MiB{staged}"
        )
    print(
        f"groups side by side: {parts_wall:.1f} s wall; combining: {combined['seconds']:.1f} s, peak {combined['peak_mib']} MiB"
    )
    print(
        f"sharded total {total:.1f} s = {unsharded['seconds'] / total:.2f}x the unsharded speed "
        f"(groups alone {unsharded['seconds'] / parts_wall:.2f}x); {agreement}"
    )
    if one_group is not None:
        part, joined = one_group
        alone = part["seconds"] + joined["seconds"]
        print(
            f"one group (the default run, same graph): {part['seconds']:.1f} s + combining {joined['seconds']:.1f} s "
            f"= {alone:.1f} s, {unsharded['seconds'] / alone:.2f}x the one-process speed; "
            f"peak {max(part['peak_mib'], joined['peak_mib'])} MiB"
        )
    per_store = sum(p["seconds"] for p in parts) / len(stores)
    combine_per_store = combined["seconds"] / len(stores)
    print(
        f"per store: {per_store:.2f} s of group work, {combine_per_store:.2f} s of combining (one process, not spread)"
    )
    print_projection(per_store, combine_per_store, len(stores))


def _checking(step: dict) -> str:
    """What of a step's time its checks took, when it reports them."""
    return f" (checks {step['check_seconds']:.1f} s of it)" if "check_seconds" in step else ""


def full_scale_store_groups(data, inputs: tuple[str, ...], groups: int) -> tuple[list[str], list[list[str]]] | None:
    """The stores of the full-scale warehouse ``bench_features.py`` leaves in ``data``, and their
    groups; None, having said what to run first, when it is not there."""
    if not all((data / name).is_file() for name in inputs):
        print(f"no full-scale warehouse in {data}: run benchmarks/bench_features.py first", file=sys.stderr)
        return None
    import pyarrow.parquet as pq

    from m5_assets.forecast.shards import store_groups_of

    stores = pq.read_table(data / "long.parquet", columns=["store_id"]).column("store_id").unique().to_pylist()
    return stores, store_groups_of(stores, groups)


def store_group_bench(description: str, data, workers: dict, compare) -> int:
    """A store-group benchmark's command line: ``--worker KIND ARGS...`` runs ``workers[KIND](data,
    ARGS)`` and prints its report (the side-by-side processes are this); otherwise ``compare(stores,
    groups)`` runs the comparison on ``--groups`` groups of the full-scale warehouse in ``data``."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        kind, *rest = args.worker
        print(json.dumps(workers[kind](data, rest)))
        return 0
    found = full_scale_store_groups(data, ("long.parquet", "cal.parquet", "prices.parquet"), args.groups)
    return 1 if found is None else compare(*found)


def feature_store(warehouse):
    """The published feature store ``bench_features.py`` leaves in the ``warehouse`` folder (a
    file per store); SystemExit saying what to run first when it is not there."""
    from m5_assets.table_files import read_store_files

    try:
        return read_store_files(warehouse / "features")
    except FileNotFoundError as missing:
        raise SystemExit(f"{missing}: run benchmarks/bench_features.py first") from None
