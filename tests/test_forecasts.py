import datetime as dt
from itertools import pairwise

import dagster as dg
import duckdb
import mlflow
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from forecasting import QUICK, WEAK, copy_data, feature_rows, issue, metadata, resource, train
from mlflow.tracking import MlflowClient
from served import SERVED, serving_app

from m5_assets import reader, tables, warehouse
from m5_assets.definitions import build_definitions
from m5_assets.defs.forecasts import WITHIN_HISTORY, band_result
from m5_assets.forecast import plausibility
from m5_assets.forecast.plausibility import band, history_highs
from m5_assets.forecast.pyfunc import forecaster_input
from m5_assets.hierarchy import level_sum_problems
from m5_assets.intervals import COVERAGES, bound_columns
from m5_assets.metrics import LEVELS
from m5_assets.model import registry

APRIL, MAY = "2016-04-01", "2016-05-01"
FIRST, LAST = "2016-04-27", "2016-04-29"  # tiny data: sales to 2016-05-22


@pytest.fixture(scope="module")
def issued(tmp_path_factory, built):
    """Tiny data with a May model, then a weaker April model trained after it, and a 3-partition backfill."""
    data_dir = tmp_path_factory.mktemp("issued")
    copy_data(built["tiny"].parent, data_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        # May first: April, trained after it, is a history backfill of the model partitions.
        may = metadata(train(data_dir, MAY, QUICK))
        april = metadata(train(data_dir, APRIL, WEAK))
        assert may["promoted"] and may["champion"]
        result = issue(data_dir, FIRST, LAST)
        yield {"dir": data_dir, "april": april, "may": may, "result": result}


def _bottom(issued, day: str) -> pd.DataFrame:
    return reader.read_partition(issued["dir"] / "warehouse", tables.FORECASTS, dt.date.fromisoformat(day))


def test_a_three_partition_backfill_writes_three_partitions(issued):
    root = issued["dir"] / "warehouse"
    days = [dt.date(2016, 4, 27), dt.date(2016, 4, 28), dt.date(2016, 4, 29)]
    assert reader.partition_days(root, tables.FORECASTS) == days
    assert reader.partition_days(root, tables.FORECAST_LEVELS) == days
    materialized = [
        (e.asset_key.to_user_string(), e.partition) for e in issued["result"].get_asset_materialization_events()
    ]
    assert sorted(materialized) == sorted(
        (t, d.isoformat()) for t in ("forecasts", "forecast_levels", "feature_drift", "inventory_plan") for d in days
    )


@pytest.mark.parametrize("table", [tables.FORECASTS, tables.FORECAST_LEVELS], ids=lambda t: t.name)
def test_each_partition_shows_what_its_own_file_holds(issued, table):
    root = issued["dir"] / "warehouse"
    events = [
        e for e in issued["result"].get_asset_materialization_events() if e.asset_key.to_user_string() == table.name
    ]
    for event in events:
        shown = {k: v.value for k, v in event.materialization.metadata.items()}
        path = table.path(root, event.partition)
        held = pq.read_table(path)
        assert shown["dagster/row_count"] == held.num_rows
        assert shown["path"] == str(path)
        assert [c.name for c in shown["dagster/column_schema"].columns] == held.schema.names
        assert all(c.description for c in shown["dagster/column_schema"].columns)
        dates = held.column("date").to_pylist()
        assert (shown["first_date"], shown["last_date"]) == (str(min(dates)), str(max(dates)))
        assert shown["model_version"] == held.column("model_version")[0].as_py()
        if table is tables.FORECASTS:
            assert shown["series"] == len(set(held.column("id").to_pylist()))
            assert shown["total_units_28d"] == pytest.approx(sum(held.column("forecast").to_pylist()), abs=0.06)
    # A partition's own rows, not the run's.
    assert len({e.partition for e in events}) == 3


def test_the_levels_check_passes_on_sums_and_names_a_level_that_does_not_add_up(issued):
    (check,) = [e for e in issued["result"].get_asset_check_evaluations() if e.check_name == "levels_add_up"]
    assert check.passed and check.asset_key.to_user_string() == "forecast_levels"
    root = issued["dir"] / "warehouse"
    day = dt.date.fromisoformat(FIRST)
    bottom = reader.read_partition(root, tables.FORECASTS, day)
    levels = reader.read_partition(root, tables.FORECAST_LEVELS, day)
    assert level_sum_problems(bottom, levels) == []
    store_rows = levels.index[(levels["level"] == 3) & (levels["date"] == levels["date"].max())]
    levels.loc[store_rows[0], "forecast"] += 1.0
    (problem,) = level_sum_problems(bottom, levels)
    assert problem.startswith("level 3 (Store)") and str(levels["date"].max()) in problem


def test_each_series_gets_28_days_from_the_forecast_date_with_nested_intervals(issued, built):
    bottom = _bottom(issued, FIRST)
    released = feature_rows(built["tiny"])[["id", "date", "sell_price"]]
    released = released[(released["date"] >= dt.date(2016, 4, 27)) & (released["date"] < dt.date(2016, 5, 25))]
    assert len(bottom) == released["sell_price"].notna().sum()
    assert bottom["date"].min() == dt.date(2016, 4, 27) and bottom["date"].max() == dt.date(2016, 5, 24)
    assert sorted(bottom["horizon"].unique()) == list(range(1, 29))
    assert (bottom["forecast"] >= 0).all()
    bounds = [bottom[c].to_numpy() for c in (*[bound_columns(c)[0] for c in reversed(COVERAGES)], "forecast")]
    for lower, upper in pairwise(bounds):
        assert (lower <= upper + 1e-9).all()
    his = [bottom[bound_columns(c)[1]].to_numpy() for c in COVERAGES]
    assert all((a <= b + 1e-9).all() for a, b in pairwise(his))
    assert (bottom["lo_95"] >= 0).all() and (bottom["hi_95"] > bottom["lo_95"]).mean() > 0.9


def test_aggregates_equal_the_sum_of_their_children(issued):
    bottom = _bottom(issued, FIRST)
    levels = reader.read_partition(issued["dir"] / "warehouse", tables.FORECAST_LEVELS, dt.date(2016, 4, 27))
    assert sorted(levels["level"].unique()) == [n for n, _, _ in LEVELS[:-1]]
    for number, _, keys in LEVELS[:-1]:
        level = levels[levels["level"] == number]
        expected = (
            bottom.groupby([*keys, "date"])["forecast"].sum() if keys else bottom.groupby("date")["forecast"].sum()
        )
        got = level.set_index([*keys, "date"])["forecast"] if keys else level.set_index("date")["forecast"]
        pd.testing.assert_series_equal(got.sort_index(), expected.sort_index(), check_names=False, rtol=1e-9)
    # Stores sum to their state as well (children one level down, not only the bottom).
    states = levels[levels["level"] == 2].set_index(["state_id", "date"])["forecast"]
    stores = levels[levels["level"] == 3].groupby(["state_id", "date"])["forecast"].sum()
    pd.testing.assert_series_equal(states.sort_index(), stores.sort_index(), check_names=False, rtol=1e-9)


def test_a_partition_uses_the_newest_promoted_model_whose_cutoff_is_not_after_it(issued):
    april, may = issued["april"], issued["may"]
    bottom = _bottom(issued, LAST)
    assert set(bottom["model_version"]) == {april["model_version"]}  # May's model exists but is later
    assert set(bottom["mlflow_run_id"]) == {april["mlflow_run_id"]}
    issue(issued["dir"], "2016-05-02")
    assert set(_bottom(issued, "2016-05-02")["model_version"]) == {may["model_version"]}


def test_a_forecast_date_before_every_promoted_cutoff_fails_and_says_which_model_to_train(issued):
    result = issue(issued["dir"], "2016-03-30", raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "no promoted model has a cutoff on or before 2016-03-30" in failure and "2016-03-01" in failure
    assert dt.date(2016, 3, 30) not in reader.partition_days(issued["dir"] / "warehouse", tables.FORECASTS)


def test_a_month_trained_after_a_later_champion_is_promoted_for_its_own_days_and_leaves_the_alias(issued):
    april, may = issued["april"], issued["may"]
    # Nothing served April's cutoff when it was trained: May's model is later.
    assert april["promoted"] and april["serving_version"] == "none", april["promotion_decision"]
    assert not april["champion"]
    client = MlflowClient(tracking_uri=registry.tracking_uri(issued["dir"] / "mlflow"))
    assert (
        str(client.get_model_version_by_alias(registry.MODEL_NAME, registry.CHAMPION).version) == may["model_version"]
    )


def test_a_failure_mid_write_leaves_no_partial_partition(issued, monkeypatch):
    real = warehouse.Warehouse.write_with

    def disk_full_on_the_second_bottom_level(self, path, write):  # written (or linked) whole, then fails
        if path != tables.FORECASTS.path(self.root, "2016-05-11"):
            return real(self, path, write)

        def fails(partial):
            write(partial)
            raise OSError("disk full")

        return real(self, path, fails)

    monkeypatch.setattr(warehouse.Warehouse, "write_with", disk_full_on_the_second_bottom_level)
    result = issue(issued["dir"], "2016-05-10", "2016-05-12", raise_on_error=False)
    assert not result.success
    root = issued["dir"] / "warehouse"
    days = set(reader.partition_days(root, tables.FORECASTS))
    assert dt.date(2016, 5, 10) in days and dt.date(2016, 5, 11) not in days and dt.date(2016, 5, 12) not in days
    assert not list(root.rglob("*.partial"))
    np.testing.assert_array_equal(sorted(_bottom(issued, "2016-05-10")["horizon"].unique()), np.arange(1, 29))


def test_the_champion_loaded_through_mlflow_forecasts_the_stored_partition_with_its_intervals(model_data, monkeypatch):
    train(model_data, MAY, QUICK)
    day = dt.date(2016, 5, 2)
    issue(model_data, day.isoformat())
    stored = reader.read_partition(model_data / "warehouse", tables.FORECASTS, day).drop(columns="forecast_date")

    # As a user would point MLflow at the store; the pipeline itself never sets it process-wide.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.tracking_uri(model_data / "mlflow"))
    champion = mlflow.pyfunc.load_model(f"models:/{registry.MODEL_NAME}@{registry.CHAMPION}")
    rows = forecaster_input(tables.FEATURES.files(model_data / "warehouse"), day)
    served = champion.predict(rows)

    assert champion.metadata.signature is not None and champion.metadata.signature.inputs.input_names()[0] == "id"
    assert len(served) == len(stored) == rows["id"].nunique() * 28
    value_columns = ["forecast", *[c for coverage in COVERAGES for c in bound_columns(coverage)]]
    pd.testing.assert_frame_equal(
        served[["id", "date", "horizon"]], stored[["id", "date", "horizon"]], check_dtype=False
    )
    np.testing.assert_allclose(served[value_columns].to_numpy(), stored[value_columns].to_numpy(), rtol=1e-5, atol=1e-6)
    assert (served["hi_95"] > served["lo_95"]).any()


def test_levels_that_do_not_add_up_are_never_published_and_the_run_says_which(issued, monkeypatch):
    from m5_assets.forecast import publish

    real = publish.level_sum_problems
    bad_day = "2016-05-14"
    monkeypatch.setattr(
        publish,
        "level_sum_problems",
        lambda bottom, levels: (
            ["level 3 (Store) sums to 1.0"] if str(bottom["date"].min()) == bad_day else real(bottom, levels)
        ),
    )
    result = issue(issued["dir"], "2016-05-13", "2016-05-14", raise_on_error=False)
    assert not result.success
    root = issued["dir"] / "warehouse"
    published = set(reader.partition_days(root, tables.FORECASTS)) | set(
        reader.partition_days(root, tables.FORECAST_LEVELS)
    )
    assert dt.date(2016, 5, 13) in published and dt.date(2016, 5, 14) not in published
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert (
        f"levels_add_up failed, nothing published for those days: {bad_day}: level 3 (Store)"
        in failure.step_failure_data.user_failure_data.description
    )
    recorded = reader.read_partition(root, tables.CHECK_RESULTS, "forecast_levels.levels_add_up").iloc[0]
    assert not recorded["passed"] and bad_day in recorded["description"]


def _band_check(result) -> dg.AssetCheckEvaluation:
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == WITHIN_HISTORY]
    return check


def test_the_band_check_on_forecasts_warns_without_blocking_and_passes_on_healthy_forecasts(issued):
    (spec,) = [
        s
        for s in build_definitions(resource(issued["dir"])).resolve_assets_def("forecasts").check_specs
        if s.name == WITHIN_HISTORY
    ]
    assert spec.asset_key.to_user_string() == "forecasts" and not spec.blocking
    check = _band_check(issued["result"])
    assert check.passed and check.severity == dg.AssetCheckSeverity.WARN, check.description
    shown = {k: v.value for k, v in check.metadata.items()}
    assert shown["series_beyond"] == 0 and f"({FIRST} .. {LAST})" in check.description
    # The farthest-out series are shown even when none is beyond, so a user sees how close they come.
    assert shown["farthest_out"].count("\n") == 11 and "month_ratio" in shown["farthest_out"]
    recorded = reader.read_partition(
        issued["dir"] / "warehouse", tables.CHECK_RESULTS, f"forecasts.{WITHIN_HISTORY}"
    ).iloc[0]
    assert recorded["passed"] and recorded["severity"] == "WARN"


def test_the_band_check_names_a_series_forecast_beyond_its_history_and_the_day(issued):
    root, day = issued["dir"] / "warehouse", dt.date.fromisoformat(LAST)
    highs = history_highs(duckdb.connect(), tables.FEATURES.files(root), [day])[day]
    bottom = _bottom(issued, LAST)
    busiest = highs["highest_28d_mean"].reindex(bottom["id"].unique()).idxmax()
    # Its forecast at 3 x its best month on every day: beyond the month, and beyond the day only
    # if its best day was below 1.5 x its best month.
    month = highs.loc[busiest, "highest_28d_mean"]
    doctored = bottom.assign(forecast=bottom["forecast"].where(bottom["id"] != busiest, 3 * month))
    check = band_result([day], [band(doctored, highs).assign(forecast_date=day)])
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.description.startswith("1 series forecast beyond 2 x their own history on 1 of 1 day(s)")
    assert f"{busiest} on {day}: 28-day mean {3 * month:,.2f} (3.0 x its highest 28-day mean)" in check.description
    shown = {k: v.value for k, v in check.metadata.items()}
    assert shown["series_beyond"] == 1 and shown["days_with_series_beyond"] == 1
    assert busiest in shown["farthest_out"].splitlines()[2]  # the first row under the header
    assert "2 x the highest 28-day mean" in shown["bounds"] and "at least 1 unit" in shown["bounds"]


def test_a_forecast_beyond_the_band_is_published_as_issued_its_plan_built_and_served(issued, monkeypatch):
    # A band this narrow puts most series beyond it: the check warns, nothing else changes.
    monkeypatch.setattr(plausibility, "MULTIPLE", 0.5)
    day = dt.date(2016, 5, 21)
    result = issue(issued["dir"], day.isoformat())
    assert result.success
    check = _band_check(result)
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} >= {
        "forecasts",
        "forecast_levels",
        "inventory_plan",
    }
    stored = _bottom(issued, day.isoformat())
    # The API does not read check results: the newest partition serves, as stored.
    with TestClient(serving_app(issued["dir"], rate_limit_per_minute=0)) as client:
        health = client.get("/health").json()
        assert health["ready"] and health["forecast_date"] == day.isoformat()
        row = stored.iloc[0]
        answer = client.post(
            "/predict", json={"item_id": row["item_id"], "store_id": row["store_id"], "date": str(row["date"])}
        ).json()
        assert answer["predicted_sales"] == pytest.approx(row["forecast"], abs=SERVED)
