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
from m5_assets.defs.resources import M5Data, StoreGroups
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


def _definitions_as_shown(store_groups: int) -> dict:
    """What the UI and a run's plan are made of: every asset (group, kinds, inputs), every check
    (blocking or not), and every job's graph, ops and executor."""
    defs = build_definitions(M5Data(data_dir="/nonexistent"), StoreGroups(count=store_groups))
    graph = defs.resolve_asset_graph()
    shown: dict = {
        key.to_user_string(): (
            graph.get(key).group_name,
            sorted(graph.get(key).kinds),
            sorted(p.to_user_string() for p in graph.get(key).parent_keys),
        )
        for key in graph.get_all_asset_keys()
    }
    for assets in defs.resolve_all_asset_specs():
        shown[f"description of {assets.key.to_user_string()}"] = assets.description
    shown["checks"] = sorted(
        (spec.key.to_user_string(), spec.blocking)
        for key in graph.get_all_asset_keys()
        if graph.get(key).is_materializable
        for spec in defs.resolve_assets_def(key).check_specs
        if spec.asset_key == key
    )
    for job in defs.resolve_all_job_defs():
        snap = job.get_job_snapshot()
        # The whole snapshot but its config schema, where the store_groups resource's configured
        # default (the count itself) is.
        shown[job.name] = (
            snap.dep_structure_snapshot,
            snap.node_defs_snapshot,
            snap.lineage_snapshot,
            snap.tags,
            job.executor_def.name,
        )
    return shown


def test_any_store_group_count_has_the_same_assets_checks_and_jobs():
    one, three = _definitions_as_shown(1), _definitions_as_shown(3)
    assert one == three
    assert one["features"] == (
        "features",
        ["numpy", "parquet"],
        ["feature_catalog", "raw_calendar", "raw_sell_prices", "sales_long"],
    )
    assert one["forecast_levels"][0] == "forecasts"
    assert ("forecast_levels:levels_add_up", True) in one["checks"]


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


def _steps(result: dg.ExecuteInProcessResult) -> set[str | None]:
    return {e.step_key for e in result.get_step_success_events()}


def test_the_feature_store_job_by_store_group_publishes_the_one_group_file(data_dir, tmp_path):
    one_group = run_pipeline(data_dir)
    assert one_group.success
    features = tables.FEATURES.path(data_dir / "warehouse")
    shutil.copy(features, tmp_path / "one_group.parquet")
    # The group count is the run's (its run config), on the same definitions.
    result = run_pipeline(data_dir, store_groups=2)
    assert result.success
    _assert_same_file(tmp_path / "one_group.parquet", features)
    # The same steps, but for the fan-out.
    assert _steps(result) - _steps(one_group) == {"features.compute_feature_group[group_1]"}
    assert _steps(one_group) - _steps(result) == set()
    assert {
        "features.compute_feature_group[group_0]",
        "features.compute_feature_group[group_1]",
        "features.combine_feature_groups",
    } <= _steps(result)
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
