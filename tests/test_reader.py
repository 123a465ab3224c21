"""The read side the API and the dashboard share, checked against the tables read directly."""

import datetime as dt

import pandas as pd
import pytest
from conftest import NEWEST, OLDER
from forecasting import feature_rows

from m5_assets import tables
from m5_assets.reader import DEFAULT_SPAN, WarehouseReader, newest_forecast_date, sales_span
from m5_assets.settings import DataPaths, data_paths


@pytest.fixture(scope="module")
def reader(warehouse_dir):
    return WarehouseReader(data_paths(warehouse_dir))


def test_partitions_span_and_the_newest_forecast_date(reader, warehouse_dir):
    assert reader.forecast_dates() == [OLDER, NEWEST]
    first, last = reader.sales_span()
    assert (
        last == dt.date(2016, 5, 22) and reader.newest_forecast_date() == newest_forecast_date(reader.paths) == NEWEST
    )
    assert len(reader.forecasts(NEWEST)) == 30 * 28 and set(reader.forecast_levels(NEWEST)["level"]) == set(
        range(1, 12)
    )


def test_without_raw_files_the_span_is_m5s_so_the_code_location_still_loads(tmp_path):
    assert sales_span(DataPaths(tmp_path)) == DEFAULT_SPAN


def test_actuals_are_the_long_tables_units_for_just_the_series_and_days_asked(reader, warehouse_dir):
    long = pd.read_parquet(tables.SALES_LONG.path(warehouse_dir / "warehouse"), columns=["id", "date", "units"])
    ids = sorted(long["id"].astype(str).unique())[:2]
    got = reader.actuals(ids, dt.date(2016, 5, 1), dt.date(2016, 5, 7))
    want = long[long["id"].isin(ids) & (long["date"] >= dt.date(2016, 5, 1)) & (long["date"] <= dt.date(2016, 5, 7))]
    assert len(got) == 14 and got["units"].tolist() == want.sort_values(["id", "date"])["units"].tolist()


def test_the_newest_feature_row_is_the_stores_row_of_the_newest_forecast_date(reader, warehouse_dir):
    features = feature_rows(warehouse_dir / "warehouse")
    series = str(features["id"].iloc[0])
    row = reader.newest_feature_row(series)
    expected = features[(features["id"] == series) & (features["date"] == NEWEST)].iloc[0]
    assert row["roll_mean_7"] == pytest.approx(expected["roll_mean_7"]) and pd.Timestamp(row["date"]).date() == NEWEST
    assert reader.newest_feature_row("NOT_A_SERIES") is None


def test_the_model_card_comes_back_with_its_json_decoded(reader):
    (version,) = reader.model_cards()["model_version"].unique()
    card = reader.model_card(version)
    assert card["cutoff"] == dt.date(2016, 5, 1) and card["promoted"]
    assert "lightgbm" in card["validation_scores"] and card["feature_importance"][0]["gain"] > 0
    assert reader.model_card("999") is None


def test_actual_sums_by_a_hierarchy_column_equal_the_long_table_grouped(reader, warehouse_dir):
    long = pd.read_parquet(tables.SALES_LONG.path(warehouse_dir / "warehouse"), columns=["state_id", "date", "units"])
    window = long[(long["date"] >= dt.date(2016, 4, 1)) & (long["date"] <= dt.date(2016, 4, 28))]
    got = reader.actual_sums(dt.date(2016, 4, 1), dt.date(2016, 4, 28), ("state_id",)).set_index("state_id")["units"]
    assert got.to_dict() == window.groupby("state_id", observed=True)["units"].sum().astype(float).to_dict()
    with pytest.raises(ValueError, match="not hierarchy columns"):
        reader.actual_sums(dt.date(2016, 4, 1), dt.date(2016, 4, 28), ("units; DROP",))


def test_series_days_per_level_are_the_rows_of_each_level_read_from_one_column_and_a_footer(reader):
    levels = reader.forecast_levels(NEWEST)
    counted = reader.series_days_by_level(NEWEST)
    assert counted == {**levels["level"].value_counts().to_dict(), 12: len(reader.forecasts(NEWEST))}
    assert sorted(counted) == list(range(1, 13)) and counted[1] == 28
