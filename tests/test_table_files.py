"""A table stored a file per store: readers see one whole generation, publishing keeps the one
replaced for readers still on it, and a warehouse written before the move is refused by name and
moved by `m5 migrate-warehouse` with every row and value kept."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from forecasting import assert_store_file_layout, copy_data, feature_rows

from m5_assets import tables, warehouse
from m5_assets.cli import main
from m5_assets.features import build
from m5_assets.reader import WarehouseReader
from m5_assets.settings import data_paths
from m5_assets.staging import STALE_AFTER_SECONDS
from m5_assets.table_files import (
    MANIFEST,
    MIGRATE_COMMAND,
    LegacyLayout,
    StoreFiles,
    generations,
    publish_store_files,
    read_store_files,
)

STORES = ("CA_1", "TX_1")


def _written(storage: warehouse.Warehouse, generation: str, value: int) -> StoreFiles:
    files = StoreFiles(storage.root / "t", generation, STORES)
    for store in STORES:
        table = pa.table({"store_id": [store], "value": [value]})

        def write(partial: Path, table: pa.Table = table) -> None:
            pq.write_table(table, partial)

        storage.write_with(files.path(store), write)
    return files


def test_readers_see_the_published_generation_whole_until_the_next_is_published(tmp_path):
    storage = warehouse.Warehouse(tmp_path)
    with pytest.raises(FileNotFoundError, match="not been published"):
        read_store_files(tmp_path / "t")
    first = _written(storage, "20261201T000000-a", 1)
    publish_store_files(storage, first)
    second = _written(storage, "20261202T000000-b", 2)  # written, not published
    seen = read_store_files(tmp_path / "t")
    assert seen == first and seen.read().column("value").to_pylist() == [1, 1]
    publish_store_files(storage, second)
    assert read_store_files(tmp_path / "t").read().column("value").to_pylist() == [2, 2]
    assert read_store_files(tmp_path / "t").of_stores(["TX_1"]).read().column("store_id").to_pylist() == ["TX_1"]
    with pytest.raises(ValueError, match=r"no store \['WI_9'\]"):
        read_store_files(tmp_path / "t").of_stores(["WI_9"])


def test_publishing_keeps_the_replaced_and_younger_generations_and_drops_the_rest(tmp_path):
    storage = warehouse.Warehouse(tmp_path)
    names = [f"2026120{day}T000000-x" for day in range(1, 5)]
    first, second, third = (_written(storage, name, k) for k, name in enumerate(names[:3]))
    killed = _written(storage, "20261101T000000-killed", 9)  # a killed run's: never published, old
    old = time.time() - STALE_AFTER_SECONDS - 60
    os.utime(killed.generation_folder, (old, old))
    publish_store_files(storage, first)
    publish_store_files(storage, second)
    assert set(generations(tmp_path / "t")) == {first.generation, second.generation, third.generation}
    running = _written(storage, names[3], 4)  # another run's, younger than the one published next
    publish_store_files(storage, third)
    # second stays for a reader that opened it before; first goes; the running run's stays.
    assert set(generations(tmp_path / "t")) == {second.generation, third.generation, running.generation}
    with pytest.raises(FileNotFoundError, match="lacks"):
        publish_store_files(storage, StoreFiles(tmp_path / "t", "20261205T000000-y", STORES))
    assert read_store_files(tmp_path / "t") == third


@pytest.fixture
def legacy_data(built, tmp_path):
    """The tiny warehouse as it was before the feature store was stored by store: one file in id
    and date order, written by the builder of that layout."""
    data = copy_data(built["tiny"].parent, tmp_path / "legacy")
    root = data / "warehouse"
    folder = tables.FEATURES.folder(root)
    shutil.rmtree(folder)
    inputs = (tables.SALES_LONG.path(root), tables.RAW_CALENDAR.path(root), tables.RAW_SELL_PRICES.path(root))
    build.build_features(warehouse.connect(), *inputs, folder / "data.parquet", storage=warehouse.Warehouse(root))
    return data


def test_a_warehouse_from_before_the_move_is_refused_by_name_then_migrated_row_for_row(
    legacy_data, built, monkeypatch, capsys
):
    root = legacy_data / "warehouse"
    expected = feature_rows(root / "features" / "data.parquet")
    for read in (
        lambda: tables.FEATURES.files(root),
        lambda: WarehouseReader(data_paths(legacy_data)).feature_rows(expected["date"].iloc[0]),
    ):
        with pytest.raises(LegacyLayout, match=MIGRATE_COMMAND):
            read()

    monkeypatch.setenv("M5_DATA_DIR", str(legacy_data))
    # Stores of several runs of series (the tiny data's ten a store in runs of 3 or 4), as at
    # full scale, in row groups of 28 days: the migration lays them out as a build does.
    monkeypatch.setattr(build, "ROWS_PER_BLOCK", 4 * 528)
    monkeypatch.setattr(build, "MIN_ROWS_PER_ROW_GROUP", 1)
    assert main(["migrate-warehouse"]) == 0
    assert "features: " in capsys.readouterr().out
    files = tables.FEATURES.files(root)
    assert isinstance(files, StoreFiles) and not (root / "features" / "data.parquet").exists()
    pd.testing.assert_frame_equal(feature_rows(root), expected)
    # As a build writes them: the same stores and schema, each file in runs of series by blocks of days.
    built_files = tables.FEATURES.files(built["tiny"])
    assert files.stores == built_files.stores and files.schema.equals(built_files.schema, check_metadata=False)
    assert_store_file_layout(files)
    assert all(pq.ParquetFile(path).metadata.num_row_groups == 3 * 19 for path in files.paths)
    day = expected["date"].iloc[-1]
    assert len(WarehouseReader(data_paths(legacy_data)).feature_rows(day)) == (expected["date"] == day).sum()
    # Twice is harmless.
    assert main(["migrate-warehouse"]) == 0 and tables.FEATURES.files(root) == files
    assert (root / "features" / MANIFEST).exists()


def test_block_writer_keeps_statistics_a_reader_can_skip_by_and_only_those_of_text_keys(tmp_path):
    """Row groups are skipped by their min/max: the date and the named text keys keep theirs;
    other dictionary columns (costly to summarise, never filtered on) have none."""
    dates = pa.array(pd.date_range("2016-01-01", periods=6).date)

    def block(store: str, first: int) -> pa.Table:
        return pa.table(
            {
                "id": pa.array([f"{store}_{k}" for k in range(first, first + 6)]).dictionary_encode(),
                "store_id": pa.array([store] * 6).dictionary_encode(),
                "dept_id": pa.array(["FOODS_1"] * 6).dictionary_encode(),
                "date": dates,
                "units": pa.array([1.0, None, 3.0, 4.0, 5.0, 6.0], pa.float32()),
            }
        )

    path = tmp_path / "blocks.parquet"
    warehouse.Warehouse(tmp_path).write_parquet_blocks(
        path,
        iter([block("CA_1", 0), block("TX_1", 6)]),
        dictionary_columns=["id", "store_id", "dept_id"],
        skipped_by=("id", "store_id"),
    )
    group = pq.ParquetFile(path).metadata.row_group(1)
    stats = {group.column(k).path_in_schema: group.column(k).statistics for k in range(group.num_columns)}
    assert (stats["store_id"].min, stats["store_id"].max) == ("TX_1", "TX_1")
    assert stats["id"].min == "TX_1_10" and stats["units"].null_count == 1
    assert stats["dept_id"] is None or not stats["dept_id"].has_min_max
    skipped = pq.read_table(path, filters=[("store_id", "=", "CA_1")])
    assert skipped.num_rows == 6
