"""A table a blocking check refuses is never published: after a good run, a refused raw table,
long table or feature store leaves the published file byte for byte as it was, leaves no staged
file behind, and what runs downstream afterwards reads the last good table (issue 23, defect 2)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from forecasting import resource, run_pipeline

from m5_assets import tables, warehouse
from m5_assets.definitions import build_definitions
from m5_assets.defs import feature_shards as feature_shard_defs
from m5_assets.defs import long_table as long_table_defs
from m5_assets.object_store import RemoteWarehouse
from m5_assets.staging import STAGING_FOLDER
from m5_assets.table_files import StoreFiles, TableFiles, generations
from m5_assets.warehouse import table_path

STAGED = ("raw_sell_prices", "sales_long", "features")


def _hashes(data_dir: Path, names=STAGED) -> dict[str, str]:
    """Each table's data as published: its file's bytes, or its files' (a table stored by store)."""
    hashes = {}
    for name in names:
        digest = hashlib.sha256()
        for path in tables.named(name).files(data_dir / "warehouse").paths:
            digest.update(path.read_bytes())
        hashes[name] = digest.hexdigest()
    return hashes


def _staged_files(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "warehouse").rglob("*") if p.is_file() and STAGING_FOLDER in p.parts]


def _failed_checks(result: dg.ExecuteInProcessResult) -> set[tuple[str, str]]:
    return {(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations() if not e.passed}


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.materialization.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def _materialize_only(data_dir: Path, *names: str) -> dg.ExecuteInProcessResult:
    """Run just ``names`` (with their checks) over what the warehouse holds: a later run that
    reads the published tables upstream of them."""
    defs = build_definitions(resource(data_dir))
    only = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        resources=defs.resources,
        executor=dg.in_process_executor,
        jobs=[dg.define_asset_job("only", selection=dg.AssetSelection.assets(*names))],
    )
    with dg.instance_for_test() as instance:
        return only.resolve_job_def("only").execute_in_process(instance=instance, raise_on_error=False)


def _store_item(line: str) -> list[str]:
    return line.split(",")[:2]


def _zero_four_weeks_of_one_price(prices: Path) -> None:
    lines = prices.read_text().splitlines(keepends=True)
    first = next(
        k
        for k in range(10, len(lines) - 4)
        if all(_store_item(lines[k + w]) == _store_item(lines[k]) for w in range(4))
    )
    for k in range(first, first + 4):
        store, item, week, _ = lines[k].rstrip("\n").split(",")
        lines[k] = f"{store},{item},{week},0.0\n"
    prices.write_text("".join(lines))


def _assert_refused_and_nothing_replaced(result, check: tuple[str, str], good: dict[str, str], data_dir: Path) -> None:
    assert not result.success
    assert check in _failed_checks(result), _failed_checks(result)
    assert _hashes(data_dir) == good  # the refused table and everything downstream, byte for byte
    assert not _staged_files(data_dir)
    assert check[0] not in _materialized(result)


def test_a_refused_price_file_keeps_the_last_good_raw_table_and_the_long_table_is_rebuilt_from_it(data_dir):
    assert run_pipeline(data_dir).success
    good = _hashes(data_dir)
    _zero_four_weeks_of_one_price(data_dir / "raw" / "sell_prices.csv")

    refused = run_pipeline(data_dir)

    _assert_refused_and_nothing_replaced(refused, ("raw_sell_prices", "prices_valid"), good, data_dir)
    assert not _materialized(refused) & {"sales_long", "features"}
    # A later run of what reads the prices sees the good ones: the same long table and features.
    later = _materialize_only(data_dir, "sales_long", "features")
    assert later.success and _materialized(later) == {"sales_long", "features"}
    assert _hashes(data_dir) == good


def _drop_last_row(path: Path) -> None:
    table = pq.read_table(path)
    pq.write_table(table.slice(0, table.num_rows - 1), path)


def test_a_refused_long_table_keeps_the_last_good_one_and_features_are_rebuilt_from_it(data_dir, monkeypatch):
    assert run_pipeline(data_dir).success
    good = _hashes(data_dir)
    real = long_table_defs.build_sales_long

    def build_short(con, sales, calendar, prices, target, *, storage):  # a builder that loses a row
        real(con, sales, calendar, prices, target, storage=storage)
        _drop_last_row(target)

    monkeypatch.setattr(long_table_defs, "build_sales_long", build_short)
    refused = run_pipeline(data_dir)

    _assert_refused_and_nothing_replaced(refused, ("sales_long", "sales_long_complete"), good, data_dir)
    assert "features" not in _materialized(refused)
    monkeypatch.undo()
    later = _materialize_only(data_dir, "features")
    assert later.success and _hashes(data_dir) == good


def _bad_weekday_on_the_first_row(files: TableFiles) -> None:
    path = files.paths[0]
    table = pq.read_table(path)
    column = table.schema.get_field_index("day_of_week")
    bad = pc.if_else(pa.array([k == 0 for k in range(table.num_rows)]), pa.scalar(9, pa.int8()), table.column(column))
    pq.write_table(table.set_column(column, "day_of_week", bad), path)


@pytest.mark.parametrize("store_groups", [1, 2])
def test_a_refused_feature_store_keeps_the_last_good_one_and_its_metadata_describes_what_was_checked(
    data_dir, monkeypatch, store_groups
):
    first = run_pipeline(data_dir, store_groups)
    assert first.success
    good = _hashes(data_dir)
    (shown,) = [
        e.materialization.metadata for e in first.get_asset_materialization_events() if e.asset_key.path == ["features"]
    ]
    published = tables.FEATURES.files(data_dir / "warehouse")
    assert isinstance(published, StoreFiles)
    assert shown["path"].value == str(published.folder) and shown["generation"].value == published.generation
    assert shown["dagster/row_count"].value == published.rows
    # What writes the feature store: each group's step, which then holds the files it wrote to
    # the catalog's rules; the combining step refuses the generation on what they found.
    module, name = feature_shard_defs, "build_feature_group"
    real = getattr(module, name)

    def write_out_of_range(con, sales_long, calendar, prices, files, *args, **kwargs):
        staged = real(con, sales_long, calendar, prices, files, *args, **kwargs)
        _bad_weekday_on_the_first_row(files)  # a weekday no calendar has, in each group's first file
        return staged

    monkeypatch.setattr(module, name, write_out_of_range)
    refused = run_pipeline(data_dir, store_groups)

    _assert_refused_and_nothing_replaced(refused, ("features", "features_within_catalog_rules"), good, data_dir)
    (evaluation,) = [
        e for e in refused.get_asset_check_evaluations() if e.check_name == "features_within_catalog_rules"
    ]
    assert "day_of_week" in evaluation.description
    monkeypatch.undo()
    # The refused generation is gone; the good one is still the published one.
    assert set(generations(published.folder)) == {published.generation}
    later = _materialize_only(data_dir, "features")
    assert later.success and _hashes(data_dir) == good


@pytest.fixture
def mirrored_root(tmp_path, url):
    """A warehouse root mirrored to a bucket."""
    remote = RemoteWarehouse(url)
    return warehouse.ObjectStoreWarehouse(tmp_path / "warehouse", remote), remote


def test_on_an_object_store_only_a_published_table_is_pushed_and_a_refused_one_never_is(mirrored_root):
    storage, remote = mirrored_root
    root = storage.root
    target = table_path(root, "sales_long")
    with storage.staged_table(target) as good:
        storage.write_with(good.path, lambda partial: partial.write_text("good"))
        assert set(remote.manifests()) == set()  # staged, checked: not yet visible anywhere
        good.publish()
    assert set(remote.manifests()) == {"sales_long/data.parquet"}
    version = remote.manifests()["sales_long/data.parquet"].version

    with storage.staged_table(target) as refused:
        storage.write_with(refused.path, lambda partial: partial.write_text("refused"))
    # Never published: the store and the local copy still hold the good table, nothing is staged.
    assert remote.manifests()["sales_long/data.parquet"].version == version
    assert target.read_text() == "good"
    assert not [p for p in root.rglob("*") if p.is_file() and STAGING_FOLDER in p.parts]


def test_an_error_while_a_table_is_staged_removes_it_and_keeps_the_published_file(tmp_path):
    storage = warehouse.Warehouse(tmp_path)
    target = table_path(tmp_path, tables.FEATURES.name)
    storage.write_with(target, lambda partial: partial.write_text("good"))
    with pytest.raises(RuntimeError, match="builder died"), storage.staged_table(target) as staged:
        storage.write_with(staged.path, lambda partial: partial.write_text("half"))
        raise RuntimeError("builder died")
    assert target.read_text() == "good"
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and STAGING_FOLDER in p.parts]


def test_on_an_object_store_a_refused_price_file_never_reaches_another_machine(data_dir, tmp_path, url, monkeypatch):
    monkeypatch.setenv("M5_WAREHOUSE_URL", url)
    assert run_pipeline(data_dir).success
    good = _hashes(data_dir)
    _zero_four_weeks_of_one_price(data_dir / "raw" / "sell_prices.csv")

    refused = run_pipeline(data_dir)

    _assert_refused_and_nothing_replaced(refused, ("raw_sell_prices", "prices_valid"), good, data_dir)
    reader = tmp_path / "reader"
    RemoteWarehouse(url).pull(reader / "warehouse")
    assert _hashes(reader) == good
