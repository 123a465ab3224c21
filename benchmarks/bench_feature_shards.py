"""The feature store by store group at full scale: ``sales_long`` -> ``features`` in one process
(the baseline: the one-step asset before every count ran the same graph) against two store groups
in two processes at once, then the combining step, and against one group (the default run's
steps), in one run.

Uses the warehouse of ``bench_features.py`` (``benchmarks/.cache/full-seed42``; run that first).
Each process does what its Dagster step does: the unsharded one is the ``features`` op; a group
computes its stores' feature rows and stages them; the combining step writes every group's rows
into one file in the unsharded order, which is then compared with the unsharded file. Not measured
here: the Dagster executor's own cost of starting a process per step (a few seconds a step).
Prints the speed-up, each process's peak memory, the combining cost, and a projection to 10x and
100x the stores from the per-store costs measured.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

from workers import peak_mib, report_store_groups, run_worker, side_by_side, store_group_bench

HERE = Path(__file__).resolve().parent
INPUTS = ("long.parquet", "cal.parquet", "prices.parquet")


def _inputs(data: Path) -> tuple[Path, Path, Path]:
    """The long table, calendar and prices in ``data``, in the order the feature code takes them."""
    sales_long, calendar, prices = INPUTS
    return data / sales_long, data / calendar, data / prices


def _unsharded(data: Path, target: Path) -> dict:
    from m5_assets import warehouse
    from m5_assets.features.build import build_features

    started = time.perf_counter()
    stats = build_features(warehouse.connect(), *_inputs(data), target, storage=warehouse.Warehouse(target.parent))
    return {"seconds": time.perf_counter() - started, "rows": stats.rows, "peak_mib": peak_mib()}


def _group(data: Path, folder: Path, stores: list[str]) -> dict:
    import dataclasses

    from m5_assets import warehouse
    from m5_assets.features.shards import build_feature_group

    started = time.perf_counter()
    staged = build_feature_group(
        warehouse.connect(), *_inputs(data), folder, stores, storage=warehouse.Warehouse(folder)
    )
    return {"seconds": time.perf_counter() - started, "staged": dataclasses.asdict(staged), "peak_mib": peak_mib()}


def _combine(target: Path, unsharded: Path, staged: list[dict]) -> dict:
    import pyarrow.parquet as pq

    from m5_assets import warehouse
    from m5_assets.features.shards import StagedGroup, combine_feature_groups

    started = time.perf_counter()
    combine_feature_groups([StagedGroup(**s) for s in staged], target, storage=warehouse.Warehouse(target.parent))
    seconds = time.perf_counter() - started
    peak = peak_mib()
    # Every row group of both files, one at a time: the same schema and the same values.
    mine, theirs = pq.ParquetFile(target), pq.ParquetFile(unsharded)
    same = (
        mine.schema_arrow.equals(theirs.schema_arrow) and mine.metadata.num_row_groups == theirs.metadata.num_row_groups
    )
    for k in range(theirs.metadata.num_row_groups if same else 0):
        same = same and mine.read_row_group(k).equals(theirs.read_row_group(k))
    return {"seconds": seconds, "peak_mib": peak, "identical": bool(same)}


def main() -> int:
    workers = {
        "unsharded": lambda data, rest: _unsharded(data, Path(rest[0])),
        "group": lambda data, rest: _group(data, Path(rest[0]), rest[1].split(",")),
        "combine": lambda data, rest: _combine(Path(rest[0]), Path(rest[1]), json.loads(rest[2])),
    }
    return store_group_bench(
        __doc__.splitlines()[0], HERE / ".cache" / "full-seed42" / "warehouse", workers, _in_a_folder
    )


def _in_a_folder(stores: list[str], groups: list[list[str]]) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-feature-shards-"))
    try:
        return _compare(work, stores, groups)
    finally:
        shutil.rmtree(work, ignore_errors=True)  # three copies of the feature store


def _compare(work: Path, stores: list[str], groups: list[list[str]]) -> int:
    unsharded = run_worker(__file__, "--worker", "unsharded", str(work / "unsharded" / "data.parquet"))
    parts, parts_wall = side_by_side(
        __file__, [["--worker", "group", str(work / f"group_{k}"), ",".join(g)] for k, g in enumerate(groups)]
    )
    unsharded_file = work / "unsharded" / "data.parquet"

    def combine(name: str, staged: list[dict]) -> dict:
        return run_worker(
            __file__, "--worker", "combine", str(work / name / "data.parquet"), str(unsharded_file), json.dumps(staged)
        )

    combined = combine("combined", [p["staged"] for p in parts])
    # The default run: the same steps with one group, whose staged file is linked, not rewritten.
    alone = run_worker(__file__, "--worker", "group", str(work / "one_group"), ",".join(stores))
    linked = combine("one_group_combined", [alone["staged"]])
    title = f"sales_long -> features ({unsharded['rows']:,} rows)"
    agreement = f"combined file identical to unsharded: {combined['identical']}; one group's: {linked['identical']}"
    report_store_groups(title, stores, groups, unsharded, parts, parts_wall, combined, agreement, (alone, linked))
    return 0


if __name__ == "__main__":
    sys.exit(main())
