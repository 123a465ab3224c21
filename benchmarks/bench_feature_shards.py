"""The feature store by store group at full scale: ``sales_long`` -> ``features`` in one process
against two store groups in two processes at once, then the combining step, in one run.

Uses the warehouse of ``bench_features.py`` (``benchmarks/.cache/full-seed42``; run that first).
Each process does what its Dagster step does: the unsharded one is the ``features`` op; a group
computes its stores' feature rows and stages them; the combining step writes every group's rows
into one file in the unsharded order, which is then compared with the unsharded file. Not measured
here: the Dagster executor's own cost of starting a process per step (a few seconds a step).
Prints the speed-up, each process's peak memory, the combining cost, and a projection to 10x and
100x the stores from the per-store costs measured.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from workers import peak_mib, print_projection, run_worker, side_by_side

HERE = Path(__file__).resolve().parent
INPUTS = ("long.parquet", "cal.parquet", "prices.parquet")


def _unsharded(data: Path, target: Path) -> dict:
    from m5_assets import warehouse
    from m5_assets.features.build import build_features

    started = time.perf_counter()
    stats = build_features(warehouse.connect(), *(data / name for name in INPUTS), target)
    return {"seconds": time.perf_counter() - started, "rows": stats.rows, "peak_mib": peak_mib()}


def _group(data: Path, folder: Path, stores: list[str]) -> dict:
    import dataclasses

    from m5_assets import warehouse
    from m5_assets.features.shards import build_feature_group

    started = time.perf_counter()
    staged = build_feature_group(warehouse.connect(), *(data / name for name in INPUTS), folder, stores)
    return {"seconds": time.perf_counter() - started, "staged": dataclasses.asdict(staged), "peak_mib": peak_mib()}


def _combine(target: Path, unsharded: Path, staged: list[dict]) -> dict:
    import pyarrow.parquet as pq

    from m5_assets.features.shards import StagedGroup, combine_feature_groups

    started = time.perf_counter()
    combine_feature_groups([StagedGroup(**s) for s in staged], target)
    seconds = time.perf_counter() - started
    peak = peak_mib()
    # Every row group of both files, one at a time: the same schema and the same values.
    mine, theirs = pq.ParquetFile(target), pq.ParquetFile(unsharded)
    same = mine.schema_arrow.equals(theirs.schema_arrow) and mine.metadata.num_row_groups == theirs.metadata.num_row_groups
    for k in range(theirs.metadata.num_row_groups if same else 0):
        same = same and mine.read_row_group(k).equals(theirs.read_row_group(k))
    return {"seconds": seconds, "peak_mib": peak, "identical": bool(same)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--groups", type=int, default=2)
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = HERE / ".cache" / "full-seed42" / "warehouse"
    if args.worker:
        kind, *rest = args.worker
        if kind == "unsharded":
            report = _unsharded(data, Path(rest[0]))
        elif kind == "group":
            report = _group(data, Path(rest[0]), rest[1].split(","))
        else:
            report = _combine(Path(rest[0]), Path(rest[1]), json.loads(rest[2]))
        print(json.dumps(report))
        return 0
    if not all((data / name).is_file() for name in INPUTS):
        print(f"no full-scale warehouse in {data}: run benchmarks/bench_features.py first", file=sys.stderr)
        return 1

    import pyarrow.parquet as pq

    from m5_assets.forecast.shards import store_groups_of

    stores = pq.read_table(data / "long.parquet", columns=["store_id"]).column("store_id").unique().to_pylist()
    groups = store_groups_of(stores, args.groups)
    work = Path(tempfile.mkdtemp(prefix="bench-feature-shards-"))
    try:
        return _compare(work, stores, groups)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # three copies of the feature store


def _compare(work: Path, stores: list[str], groups: list[list[str]]) -> int:
    unsharded = run_worker(__file__, "--worker", "unsharded", str(work / "unsharded" / "data.parquet"))
    parts, parts_wall = side_by_side(__file__, [["--worker", "group", str(work / f"group_{k}"), ",".join(g)] for k, g in enumerate(groups)])
    combined = run_worker(__file__, "--worker", "combine", str(work / "combined" / "data.parquet"), str(work / "unsharded" / "data.parquet"),
                          json.dumps([p["staged"] for p in parts]))  # fmt: skip
    total = parts_wall + combined["seconds"]

    print(f"\n== sales_long -> features, full scale ({len(stores)} stores, {unsharded['rows']:,} rows), {len(groups)} store groups on 2 cores ==")
    print(f"unsharded, one process: {unsharded['seconds']:.1f} s, peak {unsharded['peak_mib']} MiB")
    for k, (group, part) in enumerate(zip(groups, parts, strict=True)):
        print(f"group {k} ({', '.join(group)}): {part['seconds']:.1f} s, peak {part['peak_mib']} MiB")
    print(f"groups side by side: {parts_wall:.1f} s wall; combining: {combined['seconds']:.1f} s, peak {combined['peak_mib']} MiB")
    print(f"sharded total {total:.1f} s = {unsharded['seconds'] / total:.2f}x the unsharded speed "
          f"(groups alone {unsharded['seconds'] / parts_wall:.2f}x); combined file identical to unsharded: {combined['identical']}")  # fmt: skip
    per_store = sum(p["seconds"] for p in parts) / len(stores)
    combine_per_store = combined["seconds"] / len(stores)
    print(f"per store: {per_store:.2f} s of group work, {combine_per_store:.2f} s of combining (one process, not spread)")
    print_projection(per_store, combine_per_store, len(stores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
