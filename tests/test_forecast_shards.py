"""Forecast issuing by store group: the same partitions as the unsharded run, and a shard killed
mid-write publishes nothing until a retry of that shard alone completes the run."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from conftest import MAY
from forecasting import QUICK, issue, train
from shard_job import killing_group_1

from m5_assets import tables, warehouse
from m5_assets.definitions import build_definitions
from m5_assets.defs import forecast_shards
from m5_assets.defs.automation import ISSUE_FORECAST_JOB
from m5_assets.defs.forecasts import WITHIN_HISTORY
from m5_assets.defs.jobs import step_executor
from m5_assets.defs.resources import M5Data, StoreGroups
from m5_assets.forecast.shards import store_groups_of
from m5_assets.reader import read_partition
from m5_assets.settings import load_settings
from m5_assets.warehouse import SHARDS_FOLDER

DAYS = ("2016-05-18", "2016-05-20")


def _published(data_dir: Path) -> dict:
    root = data_dir / "warehouse"
    days = [dt.date.fromisoformat(DAYS[0]) + dt.timedelta(days=k) for k in range(3)]
    return {
        (table.name, day): read_partition(root, table, day)
        for table in (tables.FORECASTS, tables.FORECAST_LEVELS)
        for day in days
    }


def _assert_same(expected: dict, got: dict) -> None:
    assert expected.keys() == got.keys()
    for key, frame in expected.items():
        pd.testing.assert_frame_equal(got[key], frame, check_exact=False, rtol=1e-12, obj=str(key))


def test_the_steps_run_where_the_settings_say_whatever_the_store_group_count(monkeypatch):
    assert step_executor("in_process").name == "in_process"
    assert step_executor("multiprocess").name == "multiprocess" and step_executor("k8s").name == "k8s"
    with pytest.raises(ValueError, match="M5_STEP_EXECUTOR must be in_process, multiprocess or k8s"):
        step_executor("celery")
    # Unset, the executor follows the deployment's default group count: side by side when it splits.
    assert load_settings().executor == "in_process"
    monkeypatch.setenv("M5_STORE_GROUPS", "3")
    assert load_settings().executor == "multiprocess"
    monkeypatch.setenv("M5_STEP_EXECUTOR", "k8s")
    for groups in (1, 4):
        job = build_definitions(M5Data(data_dir="/nonexistent"), StoreGroups(count=groups)).resolve_job_def(
            ISSUE_FORECAST_JOB
        )
        assert job.executor_def.name == "k8s"
        (graph,) = [d for d in job.graph.node_defs if d.name == "forecasts"]
        assert {d.name for d in graph.node_defs} == {
            "forecast_store_groups",
            "issue_store_group",
            "plan_publishing",
            "publish_day_group",
            "publish_store_groups",
        }


def test_store_groups_split_every_store_once_in_order():
    stores = ["TX_1", "CA_2", "CA_1", "WI_1", "CA_1"]
    assert store_groups_of(stores, 2) == [["CA_1", "CA_2"], ["TX_1", "WI_1"]]
    assert store_groups_of(stores, 10) == [["CA_1"], ["CA_2"], ["TX_1"], ["WI_1"]]
    assert store_groups_of(stores, 1) == [["CA_1", "CA_2", "TX_1", "WI_1"]]


def test_an_only_groups_staged_file_is_published_as_it_is_not_written_twice(tmp_path):
    storage = warehouse.Warehouse(tmp_path / "warehouse")
    bottom = pd.DataFrame({"id": ["a", "b"], "forecast_date": ["2016-05-18"] * 2, "forecast": [1.5, 2.0]})
    staged = tmp_path / "warehouse" / SHARDS_FOLDER / "run" / "group_0" / "forecast_date=2016-05-18.parquet"
    staged.parent.mkdir(parents=True)
    tables.FORECASTS.write_partition_file(bottom, staged)
    published = tables.FORECASTS.publish_partition_file(storage, "2016-05-18", staged)
    assert published == tables.FORECASTS.path(storage.root, "2016-05-18")
    assert published.stat().st_ino == staged.stat().st_ino  # linked: its bytes are not written again
    # As a partition written from the frame reads: the partition column is the folder's.
    written = tables.FORECASTS.write_partition(warehouse.Warehouse(tmp_path / "other"), "2016-05-18", bottom)
    assert published.read_bytes() == written.read_bytes()
    shutil.rmtree(staged.parent)  # the run's staged files go once it is published; the partition stays
    read = read_partition(storage.root, tables.FORECASTS, "2016-05-18")
    pd.testing.assert_frame_equal(read[bottom.columns], bottom)


def test_issuing_by_store_group_publishes_the_unsharded_partitions(model_data, monkeypatch):
    train(model_data, MAY, QUICK)
    one_step = issue(model_data, *DAYS)
    unsharded = _published(model_data)
    lookups = []
    real = forecast_shards.serving_for
    monkeypatch.setattr(forecast_shards, "serving_for", lambda *args: lookups.append(args) or real(*args))
    result = issue(model_data, *DAYS, store_groups=2)
    _assert_same(unsharded, _published(model_data))
    # Which model serves each day is fixed once, when the run is planned: every step of the
    # forecasts asset uses it (it was looked up in each group's step and each day group's).
    assert len(lookups) == 1
    steps = {e.step_key for e in result.get_step_success_events()}
    assert {
        "forecasts.issue_store_group[group_0]",
        "forecasts.issue_store_group[group_1]",
        "forecasts.publish_day_group[days_0]",
        "forecasts.publish_day_group[days_1]",
        "forecasts.publish_store_groups",
    } <= steps
    # Each partition carries its own metadata, and the levels check ran over the whole hierarchy.
    shown = {
        (e.asset_key.to_user_string(), e.partition): e.materialization.metadata
        for e in result.get_asset_materialization_events()
    }
    assert shown[("forecasts", DAYS[0])]["dagster/row_count"].value == len(
        unsharded[("forecasts", dt.date.fromisoformat(DAYS[0]))]
    )
    (check,) = [c for c in result.get_asset_check_evaluations() if c.asset_check_key.name == "levels_add_up"]
    assert check.passed
    # The band check is carried too, and judges the combined days as the one step does.
    (spec,) = [
        s
        for s in build_definitions(M5Data(data_dir=str(model_data))).resolve_assets_def("forecasts").check_specs
        if s.name == WITHIN_HISTORY
    ]
    assert spec.asset_key.to_user_string() == "forecasts" and not spec.blocking
    (band, one_step_band) = [
        [c for c in r.get_asset_check_evaluations() if c.check_name == WITHIN_HISTORY][0] for r in (result, one_step)
    ]
    assert (band.passed, band.severity, band.description) == (
        one_step_band.passed,
        one_step_band.severity,
        one_step_band.description,
    )
    assert {k: v.value for k, v in band.metadata.items()} == {k: v.value for k, v in one_step_band.metadata.items()}
    assert not (model_data / "warehouse" / SHARDS_FOLDER).exists()  # staged files are gone once published


def test_a_shard_killed_mid_write_publishes_nothing_and_a_retry_of_that_shard_completes_the_run(
    model_data, tmp_path, monkeypatch
):
    train(model_data, MAY, QUICK)
    issue(model_data, *DAYS)
    unsharded = _published(model_data)
    for name, day in unsharded:  # the days are issued afresh, by store group
        shutil.rmtree(model_data / "warehouse" / name / f"forecast_date={day}")
    marker = tmp_path / "killed"
    job = killing_group_1(monkeypatch, model_data, marker, "issue_job")
    tags = {"dagster/asset_partition_range_start": DAYS[0], "dagster/asset_partition_range_end": DAYS[1]}
    with dg.instance_for_test() as instance:
        with dg.execute_job(job, instance, tags=tags, raise_on_error=False) as first:
            assert not first.success and marker.exists()
            failed = {e.step_key for e in first.get_step_failure_events()}
        assert any("issue_store_group[group_1]" in key for key in failed), failed
        # The killed writer's half file stays staged, and nothing was published.
        assert Path(marker.read_text()).name.startswith("group_1.")
        for key in unsharded:
            assert not (model_data / "warehouse" / key[0] / f"forecast_date={key[1]}").exists(), key
        options = dg.ReexecutionOptions.from_failure(first.run_id, instance)
        with dg.execute_job(job, instance, reexecution_options=options, tags=tags, raise_on_error=False) as retry:
            assert retry.success
            reran = {e.step_key for e in retry.get_step_success_events()}
    assert "forecasts.issue_store_group[group_1]" in reran and "forecasts.issue_store_group[group_0]" not in reran, (
        reran
    )
    _assert_same(unsharded, _published(model_data))
