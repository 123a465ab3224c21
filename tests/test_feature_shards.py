"""The feature store built by store group: the rows and values of the whole build at any group
count, a file per store with date-ordered row groups, published by one manifest write; a group
killed mid-write publishes nothing until its retry."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest
from forecasting import assert_store_file_layout, feature_rows, run_pipeline
from shard_job import killing_group_1

from m5_assets import tables, warehouse
from m5_assets.definitions import build_definitions
from m5_assets.defs.resources import M5Data, StoreGroups
from m5_assets.features import build
from m5_assets.features.shards import build_feature_group, combine_feature_groups
from m5_assets.forecast.shards import store_groups_of
from m5_assets.table_files import MANIFEST, StoreFiles, generations, new_generation, read_store_files
from m5_assets.warehouse import SHARDS_FOLDER


def _inputs(root: Path) -> tuple[Path, Path, Path]:
    return tables.SALES_LONG.path(root), tables.RAW_CALENDAR.path(root), tables.RAW_SELL_PRICES.path(root)


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


def test_groups_write_the_whole_builds_rows_a_file_per_store_in_date_order(built, tmp_path, monkeypatch):
    # Stores of several runs of series (the small data's 115 series a store in runs of 38 or 39),
    # as at full scale, each run's row groups of 56 days (3,000 rows at least).
    monkeypatch.setattr(build, "ROWS_PER_BLOCK", 40 * 1969)
    monkeypatch.setattr(build, "MIN_ROWS_PER_ROW_GROUP", 3_000)
    inputs, con = _inputs(built["small"]), warehouse.connect()
    local = warehouse.Warehouse(tmp_path)
    build.build_features(con, *inputs, tmp_path / "whole" / "data.parquet", storage=local)
    stores = pq.read_table(inputs[0], columns=["store_id"]).column("store_id").unique().to_pylist()
    # Groups in reverse order: the generation does not depend on the order they come in.
    groups = store_groups_of(stores, 3)[::-1]
    generation = new_generation()
    staged = [
        build_feature_group(
            con, *inputs, StoreFiles(tmp_path / "features", generation, g), tmp_path / "stage" / f"g{k}", storage=local
        )
        for k, g in enumerate(groups)
    ]
    files = StoreFiles(tmp_path / "features", generation, stores)
    stats = combine_feature_groups(staged, files)
    pd.testing.assert_frame_equal(feature_rows(files), feature_rows(tmp_path / "whole" / "data.parquet"))
    assert files.schema.equals(pq.read_schema(tmp_path / "whole" / "data.parquet"), check_metadata=False)
    assert_store_file_layout(files)
    assert all(pq.ParquetFile(path).metadata.num_row_groups == 3 * 36 for path in files.paths)
    assert stats.rows == files.rows and stats.series == feature_rows(files)["id"].nunique()


@pytest.mark.parametrize("fails", ["computing", "writing"])
def test_a_failure_on_either_side_of_the_writer_publishes_no_file_and_raises(built, tmp_path, monkeypatch, fails):
    """Computing and encoding run on threads: an error on any stops all (no hang), the store
    file being written is not published, and neither is the generation. (A store another writer
    finished stays in the unpublished generation, as a finished group's do when another group
    fails; no reader sees it and the next publish deletes it.)"""
    monkeypatch.setattr(build, "ROWS_PER_BLOCK", 4 * 528)  # runs of 3 or 4 series: 3 runs a store
    inputs = build.load_inputs(warehouse.connect(), *_inputs(built["tiny"]))
    calls = {"n": 0}

    def third_call_fails(original):
        def wrapped(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(f"{fails} failed")
            return original(*args, **kwargs)

        return wrapped

    if fails == "computing":
        monkeypatch.setattr(build, "feature_arrays", third_call_fails(build.feature_arrays))
    else:  # the encoding thread's
        monkeypatch.setattr(pq.ParquetWriter, "write_table", third_call_fails(pq.ParquetWriter.write_table))
    files = StoreFiles(tmp_path / "features", new_generation(), sorted(set(inputs.series["store_id"])))
    with pytest.raises(OSError, match=f"{fails} failed"):
        build.write_store_features(inputs, files, storage=warehouse.Warehouse(tmp_path))
    written = [path.exists() for path in files.paths]
    assert not all(written) and not (files.folder / MANIFEST).exists()
    if fails == "computing":  # the first store's third run: no writer had a whole store
        assert not any(written)


def test_combining_refuses_groups_that_overlap_or_leave_a_store_out(built, tmp_path):
    inputs, con, local = _inputs(built["tiny"]), warehouse.connect(), warehouse.Warehouse(tmp_path)
    stores = sorted(pq.read_table(inputs[0], columns=["store_id"]).column("store_id").unique().to_pylist())
    generation = new_generation()
    twice = [
        build_feature_group(
            con, *inputs, StoreFiles(tmp_path / "f", generation, stores[:1]), tmp_path / name, storage=local
        )
        for name in ("a", "b")
    ]
    with pytest.raises(ValueError, match="the groups wrote stores"):
        combine_feature_groups(twice, StoreFiles(tmp_path / "f", generation, stores[:1]))
    with pytest.raises(ValueError, match="the groups wrote stores"):
        combine_feature_groups(twice[:1], StoreFiles(tmp_path / "f", generation, stores))
    with pytest.raises(ValueError, match=r"no series of stores \['XX_9'\]"):
        build_feature_group(
            con, *inputs, StoreFiles(tmp_path / "f", generation, ["XX_9"]), tmp_path / "c", storage=local
        )


def _steps(result: dg.ExecuteInProcessResult) -> set[str | None]:
    return {e.step_key for e in result.get_step_success_events()}


def test_the_feature_store_job_by_store_group_publishes_the_one_group_rows(data_dir, monkeypatch):
    # Row groups of 28 days even for the tiny data's ten series a store.
    monkeypatch.setattr(build, "MIN_ROWS_PER_ROW_GROUP", 1)
    warehouse_dir = data_dir / "warehouse"
    one_group = run_pipeline(data_dir)
    assert one_group.success
    first = read_store_files(tables.FEATURES.folder(warehouse_dir))
    expected = feature_rows(first)
    # The group count is the run's (its run config), on the same definitions.
    result = run_pipeline(data_dir, store_groups=2)
    assert result.success
    second = read_store_files(tables.FEATURES.folder(warehouse_dir))
    assert second.generation != first.generation and second.stores == first.stores
    pd.testing.assert_frame_equal(feature_rows(second), expected)
    assert_store_file_layout(second)
    assert all(pq.ParquetFile(path).metadata.num_row_groups >= 18 for path in second.paths)  # 528 days
    # The generation replaced stays for readers still on it; the one before that goes.
    assert set(generations(second.folder)) == {first.generation, second.generation}
    assert run_pipeline(data_dir).success
    assert set(generations(second.folder)) == {second.generation, read_store_files(second.folder).generation}
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
    assert shown["dagster/row_count"].value == second.rows == len(expected) and shown["store_groups"].value == 2
    assert shown["files"].value == len(second.stores) and shown["generation"].value == second.generation
    (check,) = [
        c for c in result.get_asset_check_evaluations() if c.asset_check_key.name == "features_within_catalog_rules"
    ]
    assert check.passed
    assert not (warehouse_dir / SHARDS_FOLDER).exists()  # staged files are gone once published


def test_a_generation_missing_a_store_of_the_long_table_is_refused_not_published(data_dir, monkeypatch):
    """The combining step names the stores a generation must hold from the long table, not from
    the groups that came back: a plan that left a group out is refused."""
    from m5_assets.defs import feature_shards as feature_shards_defs

    assert run_pipeline(data_dir).success
    folder = tables.FEATURES.folder(data_dir / "warehouse")
    before = read_store_files(folder)
    planned = feature_shards_defs.store_group_outputs

    def all_but_the_last(*args, **kwargs):
        return list(planned(*args, **kwargs))[:-1]

    monkeypatch.setattr(feature_shards_defs, "store_group_outputs", all_but_the_last)
    result = run_pipeline(data_dir, store_groups=2)
    assert not result.success
    (failure,) = result.get_step_failure_events()
    assert failure.step_key == "features.combine_feature_groups"
    assert "the groups wrote stores" in str(failure.event_specific_data.error)
    assert read_store_files(folder) == before  # the published generation stays


def test_a_feature_group_killed_mid_write_publishes_nothing_and_its_retry_completes_the_run(
    data_dir, tmp_path, monkeypatch
):
    assert run_pipeline(data_dir).success
    folder = tables.FEATURES.folder(data_dir / "warehouse")
    before = read_store_files(folder)
    expected = feature_rows(before)
    marker = tmp_path / "killed"
    # The first store of group 1 dies mid-write of its file.
    monkeypatch.setenv("M5_KILL_NAME", f".{store_groups_of(before.stores, 2)[1][0]}.parquet.")
    job = killing_group_1(monkeypatch, data_dir, marker, "feature_store_job")
    with dg.instance_for_test() as instance:
        with dg.execute_job(job, instance, raise_on_error=False) as first:
            assert not first.success and marker.exists()
            failed = {e.step_key for e in first.get_step_failure_events()}
        assert "features.compute_feature_group[group_1]" in failed, failed
        assert read_store_files(folder) == before  # nothing published
        options = dg.ReexecutionOptions.from_failure(first.run_id, instance)
        with dg.execute_job(job, instance, reexecution_options=options, raise_on_error=False) as retry:
            assert retry.success
            reran = {e.step_key for e in retry.get_step_success_events()}
    assert (
        "features.compute_feature_group[group_1]" in reran and "features.compute_feature_group[group_0]" not in reran
    ), reran
    after = read_store_files(folder)
    assert after.generation != before.generation
    pd.testing.assert_frame_equal(feature_rows(after), expected)
    assert not (data_dir / "warehouse" / SHARDS_FOLDER).exists()
