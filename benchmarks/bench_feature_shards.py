"""The feature store by store group at full scale: ``sales_long`` -> ``features`` in one process
writing one file (the baseline: the one-step asset before the store layout) against two store
groups in two processes at once, then the combining step, and against one group (the default
run's steps), in one run.

Uses the warehouse of ``bench_features.py`` (``benchmarks/.cache/full-seed42``; run that first).
Each process does what its Dagster step does: the baseline is the ``features`` op of before
(build the file, then hold it to the catalog's rules); a group computes its stores' feature rows
into their files of a new generation and holds those to the rules; the combining step checks that
the groups fit together, merges what they found, reads back the metadata the UI shows and
publishes the generation (its manifest). Every store's rows are then compared with the baseline
file's. Not measured here: the Dagster executor's own
cost of starting a process per step (a few seconds a step). Prints the speed-up, each process's
peak memory, the combining cost, and a projection to 10x and 100x the stores from the per-store
costs measured.
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
    from m5_assets.features.catalog import FEATURES
    from m5_assets.validation.feature_rules import catalog_violations

    started = time.perf_counter()
    con = warehouse.connect()
    stats = build_features(con, *_inputs(data), target, storage=warehouse.Warehouse(target.parent))
    checking = time.perf_counter()
    assert not catalog_violations(con, target, FEATURES)
    done = time.perf_counter()
    return {"seconds": done - started, "check_seconds": done - checking, "rows": stats.rows, "peak_mib": peak_mib()}


def _group(data: Path, folder: Path, generation: str, stores: list[str]) -> dict:
    import dataclasses

    from m5_assets import warehouse
    from m5_assets.features.catalog import FEATURES
    from m5_assets.features.shards import build_feature_group
    from m5_assets.table_files import StoreFiles
    from m5_assets.validation.feature_rules import catalog_violations

    started = time.perf_counter()
    con = warehouse.connect()
    files = StoreFiles(folder, generation, stores)
    staged = build_feature_group(
        con, *_inputs(data), files, folder.parent / "_shards" / stores[0], storage=warehouse.Warehouse(folder.parent)
    )
    checking = time.perf_counter()
    assert not catalog_violations(con, files, FEATURES)
    done = time.perf_counter()
    return {
        "seconds": done - started,
        "check_seconds": done - checking,
        "staged": dataclasses.asdict(staged),
        "peak_mib": peak_mib(),
    }


def _combine(folder: Path, unsharded: Path, staged: list[dict]) -> dict:
    from m5_assets import warehouse
    from m5_assets.defs.features import FeatureBuild, describe_features
    from m5_assets.features.shards import StagedGroup, combine_feature_groups
    from m5_assets.table_files import StoreFiles, publish_store_files
    from m5_assets.validation.violations import merged

    started = time.perf_counter()
    groups = [StagedGroup(**{**s, "stores": tuple(s["stores"])}) for s in staged]
    files = StoreFiles(folder, groups[0].generation, [store for g in groups for store in g.stores])
    build = FeatureBuild(combine_feature_groups(groups, files), merged([] for _ in groups))
    describe_features(warehouse.connect(), files, build)  # what the UI shows, read back from the files
    publish_store_files(warehouse.Warehouse(folder.parent), files)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_mib": peak_mib(), "identical": _same_rows(files, unsharded)}


def _same_rows(files, unsharded: Path) -> bool:
    """Each store's rows, put in (id, date) order, equal the baseline file's rows of that store
    (which are in that order), value for value and type for type."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    def plain(table: pa.Table) -> pa.Table:
        return table.cast(
            pa.schema([f.with_type(f.type.value_type) if pa.types.is_dictionary(f.type) else f for f in table.schema])
        )

    same = files.schema.equals(pq.read_schema(unsharded), check_metadata=False)
    for store, path in zip(files.stores, files.paths, strict=True):
        mine = plain(pq.read_table(path))
        mine = mine.take(pc.sort_indices(mine, sort_keys=[("id", "ascending"), ("date", "ascending")]))
        theirs = plain(pq.read_table(unsharded, filters=pc.field("store_id") == store))
        same = same and mine.equals(theirs)
    return bool(same)


def main() -> int:
    workers = {
        "unsharded": lambda data, rest: _unsharded(data, Path(rest[0])),
        "group": lambda data, rest: _group(data, Path(rest[0]), rest[1], rest[2].split(",")),
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
    from m5_assets.table_files import new_generation

    unsharded = run_worker(__file__, "--worker", "unsharded", str(work / "unsharded" / "data.parquet"))
    unsharded_file = work / "unsharded" / "data.parquet"

    def group_command(name: str, generation: str, group: list[str]) -> list[str]:
        return ["--worker", "group", str(work / name / "features"), generation, ",".join(group)]

    def combine(name: str, staged: list[dict]) -> dict:
        folder = str(work / name / "features")
        return run_worker(__file__, "--worker", "combine", folder, str(unsharded_file), json.dumps(staged))

    generation = new_generation()
    parts, parts_wall = side_by_side(__file__, [group_command("groups", generation, g) for g in groups])
    combined = combine("groups", [p["staged"] for p in parts])
    # The default run: the same steps with one group.
    alone = run_worker(__file__, *group_command("one_group", generation, stores))
    linked = combine("one_group", [alone["staged"]])
    title = f"sales_long -> features ({unsharded['rows']:,} rows)"
    agreement = f"every store's rows equal the one file's: {combined['identical']}; one group's: {linked['identical']}"
    report_store_groups(title, stores, groups, unsharded, parts, parts_wall, combined, agreement, (alone, linked))
    return 0


if __name__ == "__main__":
    sys.exit(main())
