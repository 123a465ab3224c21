import shutil

import numpy as np
import pandas as pd
import pytest
from forecasting import feature_rows, run_pipeline
from handmade import N_CALENDAR_DAYS, N_SALES_DAYS

from m5_assets import tables
from m5_assets.features.catalog import (
    FEATURE_NAMES,
    FEATURES,
    HORIZON,
    KEY_COLUMNS,
    LABEL_COLUMN,
    STOCKED_OUT_COLUMN,
    FeatureSpec,
)
from m5_assets.validation.feature_rules import catalog_violations
from m5_assets.validation.violations import MAX_EXAMPLES, merged
from m5_assets.warehouse import connect, table_path

FOODS, HOBBIES = "FOODS_1_001_CA_1_validation", "HOBBIES_1_001_TX_1_validation"


@pytest.fixture(scope="module")
def handmade_features(handmade_warehouse) -> pd.DataFrame:
    # As read: the id columns stay categories (each store's file has its own dictionary).
    frame = tables.FEATURES.files(handmade_warehouse).read().to_pandas()
    frame["d"] = (pd.to_datetime(frame["date"]) - pd.Timestamp("2011-01-29")).dt.days + 1
    return frame.set_index([frame["id"].astype(str), "d"])


def test_feature_store_holds_keys_label_and_exactly_the_catalog(handmade_features):
    assert list(handmade_features.columns) == [
        *KEY_COLUMNS[:1],
        *FEATURE_NAMES[:5],
        KEY_COLUMNS[1],
        LABEL_COLUMN,
        STOCKED_OUT_COLUMN,
        *FEATURE_NAMES[5:],
    ]


def test_grid_runs_to_the_calendar_end_within_the_horizon(handmade_features):
    assert len(handmade_features) == 2 * N_CALENDAR_DAYS
    future = handmade_features.loc[(FOODS, N_SALES_DAYS + 1)]
    assert pd.isna(future[LABEL_COLUMN]) and future["units_lag_28"] == N_SALES_DAYS + 1 - 28


def test_sales_features_against_hand_computed_values(handmade_features):
    # FOODS sells k units on day k.
    row = handmade_features.loc[(FOODS, 40)]
    assert row[LABEL_COLUMN] == 40
    assert (row["units_lag_28"], row["units_lag_29"], row["units_lag_35"]) == (12, 11, 5)
    assert pd.isna(row["units_lag_42"]) and pd.isna(row["units_lag_364"])
    assert row["roll_mean_7"] == pytest.approx(9.0)  # mean of days 6..12
    assert row["roll_std_7"] == pytest.approx(np.sqrt(28 / 6))  # seven consecutive integers
    assert pd.isna(row["roll_mean_14"])  # days -1..12 do not all exist
    assert handmade_features.loc[(FOODS, 42), "roll_mean_14"] == pytest.approx(7.5)  # mean of days 1..14
    # HOBBIES sells 0 until day 15, then 2 a day.
    assert handmade_features.loc[(HOBBIES, 42), "units_lag_28"] == 0
    assert handmade_features.loc[(HOBBIES, 43), "units_lag_28"] == 2


def test_price_snap_calendar_and_event_features_on_the_right_rows(handmade_features):
    row = handmade_features.loc[(FOODS, 9)]  # Sunday 2011-02-06, SuperBowl, week 11102 at 2.50
    assert row["sell_price"] == 2.5 and row["price_change_1w"] == pytest.approx(0.25)
    assert (row["snap"], row["has_event"], row["event_type_code"]) == (1, 1, 4)
    assert (row["day_of_week"], row["is_weekend"], row["days_since_last_event"]) == (6, 1, 0)
    assert handmade_features.loc[(FOODS, 1), "days_to_next_event"] == 8
    assert handmade_features.loc[(FOODS, 10), "days_to_next_event"] == 7  # ValentinesDay, 2011-02-14
    assert handmade_features.loc[(HOBBIES, 9), "snap"] == 1  # TX: SNAP on the 6th
    assert handmade_features.loc[(HOBBIES, 5), "snap"] == 0  # TX: none on the 2nd, unlike CA
    assert handmade_features.loc[(FOODS, 5), "snap"] == 1
    assert pd.isna(handmade_features.loc[(HOBBIES, 14), "sell_price"])
    assert handmade_features.loc[(HOBBIES, 15), "sell_price"] == 5.0
    assert handmade_features.loc[(HOBBIES, 44), "sell_price"] == 4.0  # future week 11107 is priced


def test_categorical_ids_are_categories(handmade_features):
    for name in ("item_id", "dept_id", "cat_id", "store_id", "state_id"):
        assert isinstance(handmade_features[name].dtype, pd.CategoricalDtype)


def test_features_usable_for_a_forecast_ignore_sales_on_or_after_its_date(data_dir, tmp_path):
    """Rows of days before D + 28 are unchanged when every sale on or after D changes."""
    assert run_pipeline(data_dir).success
    original = feature_rows(data_dir / "warehouse")

    changed_dir = tmp_path / "changed"
    shutil.copytree(data_dir / "raw", changed_dir / "raw")
    sales_path = changed_dir / "raw" / "sales_train_evaluation.csv"
    sales = pd.read_csv(sales_path)
    forecast_day = 300  # d_300 is D
    on_or_after = [f"d_{k}" for k in range(forecast_day, forecast_day + 200)]
    sales[on_or_after] = sales[on_or_after] * 3 + 5
    sales.to_csv(sales_path, index=False)
    assert run_pipeline(changed_dir).success
    changed = feature_rows(changed_dir / "warehouse")

    calendar = pd.read_csv(data_dir / "raw" / "calendar.csv")
    forecast_date = pd.Timestamp(calendar.loc[calendar["d"] == f"d_{forecast_day}", "date"].item())
    dates = pd.to_datetime(original["date"])
    usable = (dates < forecast_date + pd.Timedelta(days=HORIZON)).to_numpy()
    feature_columns = list(FEATURE_NAMES)
    pd.testing.assert_frame_equal(original.loc[usable, feature_columns], changed.loc[usable, feature_columns])
    # The change is visible from D + 28 on, so the comparison above could have failed.
    assert not original.loc[~usable, "units_lag_28"].equals(changed.loc[~usable, "units_lag_28"])


def test_catalog_check_names_the_feature_and_rule_that_broke(tmp_path):
    specs = (
        FeatureSpec("day_of_week", "", "int8", "calendar", min_value=0, max_value=6),
        FeatureSpec("roll_mean_7", "", "float32", "rolling", min_value=0, nullable=True),
        FeatureSpec("snap", "", "int8", "snap", min_value=0, max_value=1),
    )
    frame = pd.DataFrame(
        {
            "id": ["a", "a", "b"],
            "date": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-01-01"]),
            "day_of_week": np.array([1, 7, 2], dtype=np.int8),
            "roll_mean_7": np.array([0.5, None, -1.0], dtype=np.float32),
        }
    )
    path = tmp_path / "features.parquet"
    frame.to_parquet(path)
    found = {v.column: v for v in catalog_violations(connect(), path, specs)}
    assert set(found) == {"day_of_week", "roll_mean_7", "snap"}
    assert found["day_of_week"].count == 1 and "<= 6" in found["day_of_week"].rule
    assert found["roll_mean_7"].count == 1 and ">= 0" in found["roll_mean_7"].rule
    assert "missing" in found["snap"].rule


def test_groups_checking_their_own_rows_report_what_one_check_of_every_row_reports(tmp_path):
    """The catalog check runs in each store group on the rows it wrote; merged, the groups'
    findings are those of one check of the whole table: one per broken rule, counts added."""
    specs = (
        FeatureSpec("day_of_week", "", "int8", "calendar", min_value=0, max_value=6),
        FeatureSpec("roll_mean_7", "", "float32", "rolling", min_value=0, nullable=True),
        FeatureSpec("snap", "", "int8", "snap", min_value=0, max_value=1),
    )
    rng = np.random.default_rng(3)
    frame = pd.DataFrame(
        {
            "id": np.repeat([f"s{k}" for k in range(6)], 4),
            "date": np.tile(pd.date_range("2020-01-01", periods=4), 6),
            "day_of_week": rng.choice(np.array([1, 7, 9], dtype=np.int8), 24),
            "roll_mean_7": rng.choice(np.array([0.5, -1.0], dtype=np.float32), 24),
        }
    )
    whole = tmp_path / "whole.parquet"
    frame.to_parquet(whole)
    parts = []
    for k, rows in enumerate((frame.iloc[:8], frame.iloc[8:12], frame.iloc[12:])):
        rows.to_parquet(tmp_path / f"part{k}.parquet")
        parts.append(catalog_violations(connect(), tmp_path / f"part{k}.parquet", specs))
    together, one = merged(parts), catalog_violations(connect(), whole, specs)
    assert together == one  # file, column, rule and count; examples are compared below
    assert [v.column for v in one] == ["snap", "day_of_week", "roll_mean_7"]
    assert all(0 < len(v.examples) <= MAX_EXAMPLES for v in together if v.count)
    assert merged([[], []]) == []


def test_catalog_table_declares_every_feature_once(handmade_warehouse):
    catalog = pd.read_parquet(table_path(handmade_warehouse, "feature_catalog"))
    assert catalog["name"].tolist() == [f.name for f in FEATURES]
    assert not catalog["name"].duplicated().any()
    assert {"description", "dtype", "family", "entity", "version", "rule"} <= set(catalog.columns)
    assert set(catalog["family"]) == {"ids", "lags", "rolling", "level", "calendar", "price", "snap", "events"}
