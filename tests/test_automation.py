import datetime as dt
import os
import shutil
import time
import zipfile
from pathlib import Path

import dagster as dg
import pytest
from forecasting import WEAK, issue, train

from m5_assets.definitions import build_definitions
from m5_assets.defs.automation import build_automation
from m5_assets.defs.resources import M5Data

NEWEST = "2016-05-23"  # tiny data: sales end on 2016-05-22


@pytest.fixture
def data_dir(model_data):
    return model_data


def _defs(data_dir):
    return build_definitions(M5Data(data_dir=str(data_dir)))


def _schedule(data_dir, name: str):
    defs = _defs(data_dir)
    with dg.build_schedule_context(
        resources={"m5_data": M5Data(data_dir=str(data_dir))}, scheduled_execution_time=dt.datetime(2016, 5, 23, 6)
    ) as context:
        return defs.get_schedule_def(name)(context)


def _sensor(data_dir, name: str, cursor: str | None = None):
    defs = _defs(data_dir)
    with dg.instance_for_test() as instance:
        # The code location's own resources, bound to ``data_dir``.
        with dg.build_sensor_context(instance=instance, cursor=cursor, resources=dict(defs.resources)) as context:
            result = defs.get_sensor_def(name)(context)
            return result, context.cursor


def _requests(result) -> list[dg.RunRequest]:
    if isinstance(result, dg.RunRequest):
        return [result]
    if isinstance(result, list):
        return result
    return list(result.run_requests or []) if hasattr(result, "run_requests") else []


def test_daily_forecast_requests_the_day_after_the_last_sales_day_then_skips_once_issued(data_dir):
    (request,) = _requests(_schedule(data_dir, "daily_forecast"))
    assert request.partition_key == NEWEST
    train(data_dir, "2016-05-01", WEAK)
    issue(data_dir, NEWEST)
    assert isinstance(_schedule(data_dir, "daily_forecast"), dg.SkipReason)


def test_daily_scoring_requests_issued_forecasts_whose_actuals_are_complete(data_dir):
    assert isinstance(_schedule(data_dir, "daily_scoring"), dg.SkipReason)
    train(data_dir, "2016-04-01", WEAK)
    issue(data_dir, "2016-04-24", "2016-04-26")  # the 26th's last day, 2016-05-23, has no sales yet
    assert [r.partition_key for r in _requests(_schedule(data_dir, "daily_scoring"))] == ["2016-04-24", "2016-04-25"]


def test_monthly_retrain_requests_the_newest_cutoff(data_dir):
    (request,) = _requests(_schedule(data_dir, "monthly_retrain"))
    assert request.partition_key == "2016-05-01"


def _age(raw: Path, seconds: int = 3600) -> None:
    """Files last written ``seconds`` ago, as files copied in long before a tick are."""
    for path in raw.iterdir():
        os.utime(path, ns=(path.stat().st_atime_ns, time.time_ns() - seconds * 10**9))


def test_raw_files_sensor_requests_a_refresh_on_change_and_skips_when_nothing_changed(data_dir):
    _age(data_dir / "raw")
    result, cursor = _sensor(data_dir, "raw_files_changed")
    assert len(_requests(result)) == 1
    result, again = _sensor(data_dir, "raw_files_changed", cursor)
    assert isinstance(result, dg.SkipReason) and again == cursor
    prices = data_dir / "raw" / "sell_prices.csv"
    os.utime(prices, ns=(prices.stat().st_atime_ns, prices.stat().st_mtime_ns + 10**9))  # a file dropped in again
    result, _ = _sensor(data_dir, "raw_files_changed", cursor)
    assert len(_requests(result)) == 1


def test_raw_files_sensor_waits_for_a_file_written_in_two_steps_to_settle_and_end_whole(tmp_path, tiny_raw):
    shutil.copytree(tiny_raw, tmp_path / "raw")
    _age(tmp_path / "raw")
    result, cursor = _sensor(tmp_path, "raw_files_changed")
    assert len(_requests(result)) == 1  # files copied in long ago: a run at once
    sales = tmp_path / "raw" / "sales_train_evaluation.csv"
    whole = sales.read_bytes()
    sales.write_bytes(whole[: len(whole) // 2])  # a copy half done, cut mid-line

    result, cursor = _sensor(tmp_path, "raw_files_changed", cursor)
    assert (
        isinstance(result, dg.SkipReason) and "waiting for sales_train_evaluation.csv to settle" in result.skip_message
    )
    # The copy stalls: the file holds still, but it still ends mid-line.
    _age(tmp_path / "raw")
    result, cursor = _sensor(tmp_path, "raw_files_changed", cursor)
    assert isinstance(result, dg.SkipReason) and "sales_train_evaluation.csv ends mid-line" in result.skip_message, (
        result.skip_message
    )

    sales.write_bytes(whole)  # the copy completes, just now
    result, cursor = _sensor(tmp_path, "raw_files_changed", cursor)
    assert isinstance(result, dg.SkipReason) and "to settle" in result.skip_message
    result, cursor = _sensor(tmp_path, "raw_files_changed", cursor)  # unchanged across two ticks
    assert len(_requests(result)) == 1
    result, _ = _sensor(tmp_path, "raw_files_changed", cursor)
    assert isinstance(result, dg.SkipReason) and result.skip_message == "no raw file changed"


def test_raw_files_sensor_takes_a_last_line_without_a_line_break_as_whole(tmp_path, tiny_raw):
    shutil.copytree(tiny_raw, tmp_path / "raw")
    sales = tmp_path / "raw" / "sales_train_evaluation.csv"
    sales.write_bytes(sales.read_bytes().rstrip(b"\n"))  # Kaggle's files may end so
    _age(tmp_path / "raw")
    result, _ = _sensor(tmp_path, "raw_files_changed")
    assert len(_requests(result)) == 1


def test_raw_files_sensor_launches_on_a_whole_kaggle_archive_and_waits_on_a_cut_one(tmp_path, tiny_raw):
    (tmp_path / "raw").mkdir()
    archive = tmp_path / "raw" / "m5-forecasting-accuracy.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as opened:
        for path in tiny_raw.iterdir():
            opened.write(path, path.name)
    whole = archive.read_bytes()
    archive.write_bytes(whole[: len(whole) // 2])
    _age(tmp_path / "raw")
    result, cursor = _sensor(tmp_path, "raw_files_changed")
    assert isinstance(result, dg.SkipReason) and "not a readable zip archive" in result.skip_message
    archive.write_bytes(whole)
    _age(tmp_path / "raw", 120)
    result, _ = _sensor(tmp_path, "raw_files_changed", cursor)
    assert len(_requests(result)) == 1


def test_champion_sensor_reissues_the_newest_forecast_when_the_champion_changes(data_dir):
    result, cursor = _sensor(data_dir, "champion_changed")
    assert isinstance(result, dg.SkipReason) and cursor is None  # no champion yet
    train(data_dir, "2016-04-01", WEAK)
    result, cursor = _sensor(data_dir, "champion_changed")
    (request,) = _requests(result)
    assert request.partition_key == NEWEST
    result, same = _sensor(data_dir, "champion_changed", cursor)
    assert isinstance(result, dg.SkipReason) and same == cursor


def test_forecasts_depend_on_the_model_partition_of_their_month(data_dir):
    defs = _defs(data_dir)
    graph = defs.resolve_asset_graph()
    forecasts = graph.get(dg.AssetKey("forecasts"))
    mapping = forecasts.partition_mappings[dg.AssetKey("demand_model")]
    model = graph.get(dg.AssetKey("demand_model"))
    upstream = mapping.get_upstream_mapped_partitions_result_for_partitions(
        forecasts.partitions_def.empty_subset().with_partition_keys(["2016-04-20"]),
        forecasts.partitions_def,
        model.partitions_def,
    ).partitions_subset
    assert upstream.get_partition_keys() == ["2016-04-01"]
    for day, month in [("2016-04-01", "2016-04-01"), ("2016-04-30", "2016-04-01"), ("2016-05-01", "2016-05-01")]:
        subset = forecasts.partitions_def.empty_subset().with_partition_keys([day])
        mapped = mapping.get_upstream_mapped_partitions_result_for_partitions(
            subset, forecasts.partitions_def, model.partitions_def
        )
        assert mapped.partitions_subset.get_partition_keys() == [month], day


def test_daily_forecast_skips_and_says_why_when_the_newest_date_has_no_partition_yet(data_dir):
    # Partitions loaded before the last two sales days arrived.
    daily = dg.DailyPartitionsDefinition(start_date="2016-04-01", end_date="2016-05-22")
    monthly = dg.MonthlyPartitionsDefinition(start_date="2016-04-01", end_date="2016-06-01")
    schedules, _ = build_automation(daily, monthly)
    (schedule,) = [s for s in schedules if s.name == "daily_forecast"]
    with dg.build_schedule_context(
        resources={"m5_data": M5Data(data_dir=str(data_dir))}, scheduled_execution_time=dt.datetime(2016, 5, 23, 6)
    ) as context:
        skipped = schedule(context)
    assert isinstance(skipped, dg.SkipReason)
    assert (
        f"partition {NEWEST} is not open" in skipped.skip_message and "reload the code location" in skipped.skip_message
    )


def test_a_new_feature_store_requests_the_newest_forecast_named_after_its_materialization(data_dir):
    defs = _defs(data_dir)
    with dg.instance_for_test() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization("features"))
        with dg.build_sensor_context(instance=instance, resources=dict(defs.resources), definitions=defs) as context:
            (request,) = defs.get_sensor_def("features_refreshed").evaluate_tick(context).run_requests or []
    assert request.partition_key == NEWEST
    assert request.run_key.startswith("features-") and request.run_key.endswith(f"-{NEWEST}")


def _forecasts_fresh(instance: dg.DagsterInstance, daily: dg.DailyPartitionsDefinition) -> bool:
    from m5_assets.defs.automation import forecast_freshness_checks

    checks = forecast_freshness_checks()
    defs = dg.Definitions(
        assets=[dg.AssetSpec("forecasts", partitions_def=daily)],
        asset_checks=checks,
        jobs=[dg.define_asset_job("freshness", selection=dg.AssetSelection.checks(*checks))],
    )
    (evaluation,) = (
        defs.resolve_job_def("freshness").execute_in_process(instance=instance).get_asset_check_evaluations()
    )
    return evaluation.passed


def test_the_forecast_freshness_check_fails_once_the_day_s_partition_is_overdue_and_passes_when_issued(monkeypatch):
    # Due at midnight in a zone east of UTC, so the deadline has passed whenever the test runs.
    monkeypatch.setenv("M5_SCHEDULE_TIMEZONE", "Asia/Tokyo")
    monkeypatch.setenv("M5_FORECAST_DUE_BY", "00:00")
    today = dt.datetime.now(dt.UTC).date()
    daily = dg.DailyPartitionsDefinition(start_date=(today - dt.timedelta(days=30)).isoformat(), end_offset=1)
    expected = daily.get_last_partition_key()
    with dg.instance_for_test() as instance:
        yesterday = (dt.date.fromisoformat(expected) - dt.timedelta(days=1)).isoformat()
        instance.report_runless_asset_event(dg.AssetMaterialization("forecasts", partition=yesterday))
        assert not _forecasts_fresh(instance, daily)
        instance.report_runless_asset_event(dg.AssetMaterialization("forecasts", partition=expected))
        assert _forecasts_fresh(instance, daily)


def test_only_the_sensor_evaluates_freshness_so_issuing_past_dates_reports_no_overdue_today(data_dir):
    # A first m5 run after the due time issued the backtest's dates before today's, and its run
    # reported "forecasts.freshness_check FAILED: partition <today> is overdue" for a healthy run.
    defs = _defs(data_dir)
    (freshness,) = {key for checks in defs.asset_checks or [] for key in checks.check_keys if "freshness" in key.name}
    issued = defs.resolve_job_def("issue_forecast").asset_layer.asset_graph.asset_check_keys
    assert freshness not in issued
    assert {key.name for key in issued} == {
        "forecasts_within_history",
        "levels_add_up",
        "features_stable",
        "orders_within_history",
    }
    assert "forecast_freshness" in {sensor.name for sensor in defs.sensors}


def test_the_schedules_run_in_the_configured_time_zone_and_an_unknown_zone_is_refused(data_dir, monkeypatch):
    from m5_assets.settings import SettingsError, load_settings

    monkeypatch.setenv("M5_SCHEDULE_TIMEZONE", "America/Chicago")
    assert {s.name: s.execution_timezone for s in _defs(data_dir).schedules} == dict.fromkeys(
        ("daily_forecast", "daily_scoring", "monthly_retrain"), "America/Chicago"
    )
    monkeypatch.setenv("M5_SCHEDULE_TIMEZONE", "Central Time")
    with pytest.raises(SettingsError, match="M5_SCHEDULE_TIMEZONE"):
        load_settings()
