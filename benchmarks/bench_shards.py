"""Forecast issuing by store group at full scale: a 30-partition backfill, issued in one process
(the baseline: what the one-step asset did before every count ran the same graph) against two
store groups in two processes at once, then the combining in two processes (one per group of
days), and against one group (the default run's steps, one after another), in one run.

Uses the warehouse and the benchmark model of ``bench_forecast.py`` (trained there if missing).
Each process does what its Dagster step does: the unsharded one what the one-step ``forecasts`` op
did (read the feature rows, predict, issue, sum to the levels, publish); a group reads its stores' rows,
predicts and stages its bottom level per day; a combining step puts the groups together for its
days, builds the levels, checks that they add up and publishes. Not measured here: the Dagster
executor's own cost of starting a process per step and loading the code location, a few seconds a
step (see the README). Prints the speed-up, each process's peak memory, the combining cost, and
a projection to 10x and 100x the stores from the per-store costs measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench_forecast import _issue, load_model, model_folder, ready_model
from workers import feature_store, peak_mib, print_projection, run_worker, side_by_side

HERE = Path(__file__).resolve().parent
DAYS = 30
COMBINING_PARTS = (
    "reading and ordering the groups' rows",
    "building the levels",
    "checking they add up",
    "writing the levels",
    "writing the bottom level",
)


def _shard(data: Path, model_dir: Path, first: dt.date, stores: list[str], out: Path) -> dict:
    from m5_assets import tables
    from m5_assets.forecast.issue import issue_bottom, read_forecast_rows
    from m5_assets.forecast.shards import staged_path

    model = load_model(model_dir)
    started = time.perf_counter()
    rows = read_forecast_rows(feature_store(data), first, first + dt.timedelta(days=DAYS - 1), model, stores)
    read = time.perf_counter() - started
    predictions = model.booster.predict(rows.matrix)
    n = 0
    for k in range(DAYS):
        day = first + dt.timedelta(days=k)
        bottom = issue_bottom(feature_store(data), day, model, rows, predictions)
        staged_path(out, day).parent.mkdir(parents=True, exist_ok=True)
        tables.FORECASTS.write_partition_file(bottom, staged_path(out, day))
        n += len(bottom)
    return {"seconds": time.perf_counter() - started, "read_seconds": read, "rows": n, "peak_mib": peak_mib()}


def _combine(model_dir: Path, first: dt.date, days: int, folders: list[str], unsharded: Path) -> dict:
    import numpy as np

    from m5_assets import tables, warehouse
    from m5_assets.forecast.issue import levels_of
    from m5_assets.forecast.shards import combine_shards, staged_path
    from m5_assets.hierarchy import level_sum_problems
    from m5_assets.reader import read_partition

    model = load_model(model_dir)
    out = Path(tempfile.mkdtemp(prefix="bench-combined-"))
    started = time.perf_counter()
    problems = 0
    # Where a partition-day's combining goes: what storing the bottom level by store would save
    # (putting the groups' rows in order, writing them again) against what it would not (levels).
    parts = dict.fromkeys(COMBINING_PARTS, 0.0)
    for k in range(days):
        day = first + dt.timedelta(days=k)
        clock = time.perf_counter()

        def lap(part: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            parts[part] += now - clock
            clock = now

        bottom = combine_shards(folders, day)
        lap("reading and ordering the groups' rows")
        levels = levels_of(bottom, day, model.calibration)
        lap("building the levels")
        problems += len(level_sum_problems(bottom, levels))
        lap("checking they add up")
        tables.FORECAST_LEVELS.write_partition(warehouse.Warehouse(out), day, levels)
        lap("writing the levels")
        if len(folders) == 1:  # an only group's staged file is the partition's, published as it is
            tables.FORECASTS.publish_partition_file(warehouse.Warehouse(out), day, staged_path(Path(folders[0]), day))
        else:
            tables.FORECASTS.write_partition(warehouse.Warehouse(out), day, bottom)
        lap("writing the bottom level")
    seconds = time.perf_counter() - started
    # The sharded result against the unsharded one, on the last day: every value.
    mine, theirs = read_partition(out, tables.FORECASTS, day), read_partition(unsharded, tables.FORECASTS, day)
    same_rows = mine[["id", "date"]].equals(theirs[["id", "date"]])
    values = ["forecast", "lo_95", "hi_95"]
    max_diff = float(np.abs(mine[values].to_numpy() - theirs[values].to_numpy()).max()) if same_rows else float("inf")
    shutil.rmtree(out, ignore_errors=True)
    return {
        "seconds": seconds,
        "per_day": {part: spent / days for part, spent in parts.items()},
        "peak_mib": peak_mib(),
        "problems": problems,
        "same_rows": same_rows,
        "max_abs_diff": max_diff,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cutoff", default="2016-04-01")
    parser.add_argument("--first", default="2016-04-01")
    parser.add_argument("--rounds", type=int, default=176)
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = HERE / ".cache" / "full-seed42" / "warehouse"
    model_dir = model_folder(data, args.cutoff, args.rounds)
    first = dt.date.fromisoformat(args.first)
    if args.worker:
        kind, *rest = args.worker
        if kind == "unsharded":
            report = _issue(data, model_dir, first, DAYS, keep=Path(rest[0]))
        elif kind == "shard":
            report = _shard(data, model_dir, first, rest[1].split(","), Path(rest[0]))
        else:
            start, count = dt.date.fromisoformat(rest[1]), int(rest[2])
            report = _combine(model_dir, start, count, rest[3:], Path(rest[0]))
        print(json.dumps(report))
        return 0
    if not ready_model(data, args.cutoff, args.rounds):
        return 1

    from m5_assets.forecast.shards import store_groups_of

    stores = list(feature_store(data).stores)
    groups = store_groups_of(stores, args.groups)
    base = ["--cutoff", args.cutoff, "--first", args.first, "--rounds", str(args.rounds), "--worker"]
    work = Path(tempfile.mkdtemp(prefix="bench-shards-"))
    try:
        return _compare(work, args, stores, groups, base, first)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # the unsharded and the staged partitions


def _compare(work: Path, args, stores: list[str], groups: list[list[str]], base: list[str], first: dt.date) -> int:
    from m5_assets.forecast.shards import split_evenly

    unsharded = run_worker(__file__, *base, "unsharded", str(work / "unsharded"))
    folders = [str(work / f"group_{k}") for k in range(len(groups))]
    shards, shards_wall = side_by_side(
        __file__, [[*base, "shard", folders[k], ",".join(g)] for k, g in enumerate(groups)]
    )
    # Days are independent: the combining step is fanned out by day groups too, as the asset does.
    day_groups = split_evenly(range(DAYS), len(groups))
    combines, combine_wall = side_by_side(
        __file__,
        [
            [
                *base,
                "combine",
                str(work / "unsharded"),
                (first + dt.timedelta(days=part[0])).isoformat(),
                str(len(part)),
                *folders,
            ]
            for part in day_groups
        ],
    )
    combined = {
        "seconds": combine_wall,
        "peak_mib": max(c["peak_mib"] for c in combines),
        "problems": sum(c["problems"] for c in combines),
        "same_rows": all(c["same_rows"] for c in combines),
        "max_abs_diff": max(c["max_abs_diff"] for c in combines),
    }
    sharded_total = shards_wall + combine_wall
    # The default run: the same graph with one group (every store, then every day), step by step.
    whole = str(work / "one_group")
    one_issue = run_worker(__file__, *base, "shard", whole, ",".join(stores))
    one_combine = run_worker(__file__, *base, "combine", str(work / "unsharded"), first.isoformat(), str(DAYS), whole)
    one_group_total = one_issue["seconds"] + one_combine["seconds"]

    print(
        f"\n== forecast backfill of {DAYS} partitions, full scale ({len(stores)} stores), {len(groups)} store groups on 2 cores =="
    )
    print(
        f"unsharded, one process: {unsharded['seconds']:.1f} s (reading {unsharded['read_seconds']:.1f} s), peak {unsharded['peak_mib']} MiB"
    )
    for k, (group, shard) in enumerate(zip(groups, shards, strict=True)):
        print(
            f"group {k} ({', '.join(group)}): {shard['seconds']:.1f} s (reading {shard['read_seconds']:.1f} s), peak {shard['peak_mib']} MiB"
        )
    each = ", ".join(f"{c['seconds']:.1f}" for c in combines)
    print(
        f"groups side by side: {shards_wall:.1f} s wall; combining {DAYS} days in {len(day_groups)} day groups side by side: "
        f"{combine_wall:.1f} s wall ({each} s each), peak {combined['peak_mib']} MiB"
    )
    print(
        f"sharded total {sharded_total:.1f} s = {unsharded['seconds'] / sharded_total:.2f}x faster than unsharded; "
        f"same rows as unsharded: {combined['same_rows']}, largest difference {combined['max_abs_diff']:.2e}; levels off: {combined['problems']}"
    )
    print(
        f"one group (the default run, same graph): issuing {one_issue['seconds']:.1f} s + combining "
        f"{one_combine['seconds']:.1f} s = {one_group_total:.1f} s, {unsharded['seconds'] / one_group_total:.2f}x the "
        f"one-process speed; peak {max(one_issue['peak_mib'], one_combine['peak_mib'])} MiB; "
        f"same rows: {one_combine['same_rows']}, largest difference {one_combine['max_abs_diff']:.2e}"
    )
    for name, steps in (("two groups", combines), ("one group", [one_combine])):
        spent = {part: sum(c["per_day"][part] for c in steps) / len(steps) for part in COMBINING_PARTS}
        print(
            f"combining a partition-day ({name}), {sum(spent.values()):.2f} s: "
            + ", ".join(f"{part} {seconds:.2f} s" for part, seconds in spent.items())
        )
    per_store = sum(s["seconds"] for s in shards) / len(stores)
    combine_per_store = sum(c["seconds"] for c in combines) / len(stores)
    print(f"per store: {per_store:.2f} s of group work, {combine_per_store:.2f} s of combining (one process)")
    print_projection(
        per_store, combine_per_store, len(stores), combine_spread_limit=DAYS
    )  # combining by day, one day a worker at most
    return 0


if __name__ == "__main__":
    sys.exit(main())
