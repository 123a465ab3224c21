"""The feature store built by store group: the same file as the unsharded build (rows, values,
schema, row groups), and a group killed mid-write publishes nothing until its retry."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
from forecasting import run_pipeline
from shard_job import killing_group_1

from m5_assets import tables, warehouse
from m5_assets.definitions import build_definitions
from m5_assets.defs.resources import M5Data
from m5_assets.features import build
from m5_assets.features.shards import build_feature_group, combine_feature_groups
from m5_assets.forecast.shards import store_groups_of
from m5_assets.warehouse import SHARDS_FOLDER


def _inputs(root: Path) -> tuple[Path, Path, Path]:
    return tables.SALES_LONG.path(root), tables.RAW_CALENDAR.path(root), tables.RAW_SELL_PRICES.path(root)


def _assert_same_file(expected: Path, got: Path) -> None:
    a, b = pq.read_table(expected), pq.read_table(got)
    assert a.schema.equals(b.schema, check_metadata=False)
    assert a.num_rows == b.num_rows and a.equals(b)
    assert pq.ParquetFile(expected).metadata.num_row_groups == pq.ParquetFile(got).metadata.num_row_groups


def _graph_as_shown(store_groups: int) -> dict:
    graph = build_definitions(M5Data(data_dir="/nonexistent", store_groups=store_groups)).resolve_asset_graph()
    return {
        key.to_user_string(): (
            graph.get(key).group_name,
            sorted(p.to_user_string() for p in graph.get(key).parent_keys),
        )
        for key in graph.get_all_asset_keys()
    } | {"checks": sorted(c.to_user_string() for c in graph.asset_check_keys)}


def test_store_groups_change_how_assets_run_not_what_the_ui_shows():
    # Groups, upstream edges and checks as with one step. Known exception: issued by store group,
    # forecast_levels comes out of the same graph as forecasts, so it shows forecasts' inputs.
    one, many = _graph_as_shown(1), _graph_as_shown(3)
    assert one.pop("forecast_levels") == ("forecasts", ["forecasts"])
    assert many.pop("forecast_levels") == ("forecasts", many["forecasts"][1])
    assert one == many
    assert many["features"] == ("features", ["feature_catalog", "raw_calendar", "raw_sell_prices", "sales_long"])


@pytest.mark.parametrize("rows_per_block", [build.ROWS_PER_BLOCK, 3_000])
def test_combined_groups_equal_the_whole_build_even_when_a_block_spans_groups(
    built, tmp_path, monkeypatch, rows_per_block
):
    # 3,000 rows is one or two series a block: blocks start and end inside every group.
    monkeypatch.setattr(build, "ROWS_PER_BLOCK", rows_per_block)
    inputs, con = _inputs(built["small"]), warehouse.connect()
    local = warehouse.Warehouse(tmp_path)
    build.build_features(con, *inputs, tmp_path / "whole" / "data.parquet", storage=local)
    stores = pq.read_table(inputs[0], columns=["store_id"]).column("store_id").unique().to_pylist()
    # Groups staged in reverse order: combining must not depend on the order they come in.
    groups = store_groups_of(stores, 3)[::-1]
    staged = [
        build_feature_group(con, *inputs, tmp_path / "stage" / f"g{k}", g, storage=local) for k, g in enumerate(groups)
    ]
    stats = combine_feature_groups(staged, tmp_path / "combined" / "data.parquet", storage=local)
    _assert_same_file(tmp_path / "whole" / "data.parquet", tmp_path / "combined" / "data.parquet")
    assert stats.series == len(pq.read_table(tmp_path / "whole" / "data.parquet", columns=["id"]).column("id").unique())


def test_combining_refuses_groups_that_share_a_series_or_miss_every_store(built, tmp_path):
    inputs, con, local = _inputs(built["tiny"]), warehouse.connect(), warehouse.Warehouse(tmp_path)
    store = pq.read_table(inputs[0], columns=["store_id"]).column("store_id")[0].as_py()
    twice = [build_feature_group(con, *inputs, tmp_path / name, [store], storage=local) for name in ("a", "b")]
    with pytest.raises(ValueError, match="feature groups share series"):
        combine_feature_groups(twice, tmp_path / "out" / "data.parquet", storage=local)
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"no series of stores \['XX_9'\]"):
        build_feature_group(con, *inputs, tmp_path / "c", ["XX_9"], storage=local)


def test_the_feature_store_job_by_store_group_publishes_the_unsharded_file(data_dir, tmp_path):
    assert run_pipeline(data_dir).success
    features = tables.FEATURES.path(data_dir / "warehouse")
    shutil.copy(features, tmp_path / "unsharded.parquet")
    result = run_pipeline(data_dir, store_groups=2)
    assert result.success
    _assert_same_file(tmp_path / "unsharded.parquet", features)
    steps = {e.step_key for e in result.get_step_success_events()}
    assert {
        "features.compute_feature_group[group_0]",
        "features.compute_feature_group[group_1]",
        "features.combine_feature_groups",
    } <= steps
    (shown,) = [
        e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["features"]
    ]
    assert (
        shown["dagster/row_count"].value == pq.ParquetFile(features).metadata.num_rows
        and shown["store_groups"].value == 2
    )
    (check,) = [
        c for c in result.get_asset_check_evaluations() if c.asset_check_key.name == "features_within_catalog_rules"
    ]
    assert check.passed
    assert not (data_dir / "warehouse" / SHARDS_FOLDER).exists()  # staged files are gone once published


def test_a_feature_group_killed_mid_write_publishes_nothing_and_its_retry_completes_the_run(
    data_dir, tmp_path, monkeypatch
):
    assert run_pipeline(data_dir).success
    features = tables.FEATURES.path(data_dir / "warehouse")
    shutil.move(features, tmp_path / "unsharded.parquet")
    marker = tmp_path / "killed"
    job = killing_group_1(monkeypatch, data_dir, marker, "feature_store_job")
    with dg.instance_for_test() as instance:
        with dg.execute_job(job, instance, raise_on_error=False) as first:
            assert not first.success and marker.exists()
            failed = {e.step_key for e in first.get_step_failure_events()}
        assert "features.compute_feature_group[group_1]" in failed, failed
        assert not features.exists()  # nothing published
        options = dg.ReexecutionOptions.from_failure(first.run_id, instance)
        with dg.execute_job(job, instance, reexecution_options=options, raise_on_error=False) as retry:
            assert retry.success
            reran = {e.step_key for e in retry.get_step_success_events()}
    assert (
        "features.compute_feature_group[group_1]" in reran and "features.compute_feature_group[group_0]" not in reran
    ), reran
    _assert_same_file(tmp_path / "unsharded.parquet", features)
    assert not (data_dir / "warehouse" / SHARDS_FOLDER).exists()
