import datetime as dt
import filecmp
import re

import numpy as np
import pandas as pd
import pytest

from m5_assets.cli import main
from m5_assets.generator import SCALES, generate
from m5_assets.generator.calendar import build_calendar

KAGGLE_CALENDAR_COLUMNS = [
    "date",
    "wm_yr_wk",
    "weekday",
    "wday",
    "month",
    "year",
    "d",
    "event_name_1",
    "event_type_1",
    "event_name_2",
    "event_type_2",
]


def test_tiny_files_have_exactly_the_kaggle_columns_and_id_scheme(tiny_raw):
    calendar = pd.read_csv(tiny_raw / "calendar.csv")
    sales = pd.read_csv(tiny_raw / "sales_train_evaluation.csv")
    prices = pd.read_csv(tiny_raw / "sell_prices.csv")
    scale = SCALES["tiny"]

    # All three SNAP columns, as in Kaggle's file, though the tiny sales hold no WI store.
    assert list(calendar.columns) == KAGGLE_CALENDAR_COLUMNS + ["snap_CA", "snap_TX", "snap_WI"]
    assert set(sales["state_id"]) == {"CA", "TX"}
    assert list(prices.columns) == ["store_id", "item_id", "wm_yr_wk", "sell_price"]
    day_columns = [f"d_{k}" for k in range(1, scale.n_days + 1)]
    assert list(sales.columns) == ["id", "item_id", "dept_id", "cat_id", "store_id", "state_id"] + day_columns
    assert len(sales) == scale.n_series
    for row in sales.itertuples():
        assert row.id == f"{row.item_id}_{row.store_id}_evaluation"
        assert re.fullmatch(rf"{row.dept_id}_\d{{3}}", row.item_id)
        assert row.dept_id.startswith(row.cat_id + "_")
        assert row.store_id.startswith(row.state_id + "_")
    # Kaggle's calendar runs 28 days past the sales and numbers the days from d_1.
    assert len(calendar) == scale.n_days + 28
    assert calendar["d"].tolist() == [f"d_{k}" for k in range(1, len(calendar) + 1)]


def test_raw_files_quote_nothing_like_kaggle(tiny_raw):
    for name in ("calendar.csv", "sell_prices.csv", "sales_train_evaluation.csv"):
        assert '"' not in (tiny_raw / name).read_text()[:5000]


def test_full_scale_has_the_real_m5_shape():
    full = SCALES["full"]
    assert (full.n_items, len(full.store_ids), full.n_series, full.n_days) == (3049, 10, 30490, 1941)
    assert len(full.items_per_dept) == 7 and len(full.stores_per_state) == 3


def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path):
    first, again, other = (generate(SCALES["tiny"], tmp_path / n, seed=s) for n, s in (("a", 3), ("b", 3), ("c", 4)))
    for name in first:
        assert filecmp.cmp(first[name], again[name], shallow=False)
    assert not filecmp.cmp(first["sales_train_evaluation.csv"], other["sales_train_evaluation.csv"], shallow=False)


def test_end_date_sets_the_last_sales_day(tmp_path):
    generate(SCALES["tiny"], tmp_path, end_date=dt.date(2026, 11, 21))
    calendar = pd.read_csv(tmp_path / "calendar.csv")
    last_sales_day = calendar.loc[calendar["d"] == f"d_{SCALES['tiny'].n_days}", "date"].item()
    assert last_sales_day == "2026-11-21"


def test_generated_calendar_reproduces_the_real_m5_calendar(real_subset):
    real = pd.read_csv(real_subset / "calendar.csv")
    generated = build_calendar(dt.date(2011, 1, 29), len(real), ["CA", "TX", "WI"])
    for column in ["date", "wm_yr_wk", "weekday", "wday", "month", "year", "d", "snap_CA", "snap_TX", "snap_WI"]:
        assert generated[column].tolist() == real[column].tolist(), column
    # Rule-based events land on the real dates (lunar-calendar ones are not generated).
    rule_based = real["event_name_1"].isin(set(generated["event_name_1"].dropna()))
    agree = generated.loc[rule_based, "event_name_1"].eq(real.loc[rule_based, "event_name_1"]).mean()
    assert agree > 0.9


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    raw = tmp_path_factory.mktemp("small")
    generate(SCALES["small"], raw)
    sales = pd.read_csv(raw / "sales_train_evaluation.csv")
    calendar = pd.read_csv(raw / "calendar.csv", parse_dates=["date"])
    prices = pd.read_csv(raw / "sell_prices.csv")
    units = sales.filter(regex=r"^d_\d+$").to_numpy()
    return sales, calendar.iloc[: units.shape[1]], prices, units


def test_small_demand_is_intermittent_with_slow_and_fast_movers(small):
    sales, _, _, units = small
    last_28 = units[:, -28:]
    assert 0.45 < (last_28 == 0).mean() < 0.65  # real M5: 54 % zero series-days
    per_series = last_28.mean(axis=1)
    assert np.percentile(per_series, 10) < 0.3 and np.percentile(per_series, 90) > 2.0
    by_category = pd.Series(per_series).groupby(sales["cat_id"]).mean()
    assert by_category["FOODS"] > by_category["HOUSEHOLD"] > by_category["HOBBIES"]


def test_small_demand_has_weekly_yearly_snap_and_christmas_effects(small):
    sales, calendar, _, units = small
    total = units.sum(axis=0).astype(float)
    weekend = calendar["wday"].isin([1, 2]).to_numpy()
    assert total[weekend].mean() > 1.15 * total[~weekend].mean()
    christmas = (calendar["date"].dt.month == 12) & (calendar["date"].dt.day == 25)
    assert total[christmas.to_numpy()].max() < 0.1 * total.mean()

    foods_ca = units[((sales["cat_id"] == "FOODS") & (sales["state_id"] == "CA")).to_numpy()].sum(axis=0)
    snap_ca = calendar["snap_CA"].to_numpy(bool)
    assert foods_ca[snap_ca].mean() > 1.05 * foods_ca[~snap_ca].mean()

    hobbies = units[(sales["cat_id"] == "HOBBIES").to_numpy()].sum(axis=0)
    by_month = pd.Series(hobbies).groupby(calendar["date"].dt.month.to_numpy()).mean()
    assert by_month.max() > 1.15 * by_month.min()


def test_some_items_start_selling_part_way_with_no_prices_before(small):
    sales, calendar, prices, units = small
    first_week = prices.groupby(["store_id", "item_id"])["wm_yr_wk"].min()
    late = first_week[first_week > calendar["wm_yr_wk"].iloc[0]]
    assert len(late) > 0.1 * len(sales)
    store, item = late.index[0]
    row = ((sales["store_id"] == store) & (sales["item_id"] == item)).to_numpy()
    before_release = (calendar["wm_yr_wk"] < late.iloc[0]).to_numpy()
    assert units[row][:, before_release].sum() == 0


def test_prices_change_week_to_week_and_demand_responds(small):
    sales, calendar, prices, units = small
    prices = prices.sort_values(["store_id", "item_id", "wm_yr_wk"])
    change = prices.groupby(["store_id", "item_id"])["sell_price"].pct_change()
    assert 0.01 < (change.abs() > 0).mean() < 0.3
    # Weeks with a price cut sell more than the same series' other weeks.
    weekly_units = pd.DataFrame(units, index=pd.MultiIndex.from_frame(sales[["store_id", "item_id"]]))
    weekly_units.columns = calendar["wm_yr_wk"].to_numpy()
    weekly = weekly_units.T.groupby(level=0).sum().T.stack().rename("units").reset_index()
    weekly.columns = ["store_id", "item_id", "wm_yr_wk", "units"]
    merged = prices.assign(change=change).merge(weekly, on=["store_id", "item_id", "wm_yr_wk"])
    merged["relative"] = merged["units"] / merged.groupby(["store_id", "item_id"])["units"].transform("mean")
    assert (
        merged.loc[merged["change"] < -0.05, "relative"].mean()
        > 1.1 * merged.loc[merged["change"] == 0, "relative"].mean()
    )


def test_cli_generate_writes_the_file_set(tmp_path, capsys):
    assert main(["generate", "--scale", "tiny", "--out", str(tmp_path), "--seed", "1", "--end-date", "2020-03-01"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "calendar.csv",
        "sales_train_evaluation.csv",
        "sell_prices.csv",
    ]
    assert "30 series x 500 days" in capsys.readouterr().out
