"""The forecasts the product issues on 280 genuine M5 series (real_280: whole history, real
calendar and prices), through the jobs `m5 run` launches: feature store, the model the backtest
uses (cutoff 2016-04-01, default settings), the seven backtest forecasts and their scores."""

import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_M5
from forecasting import issue, run_pipeline, score, train

from m5_assets import cli, reader, tables, warehouse
from m5_assets.features.catalog import HORIZON

REAL_280 = SHARED_M5 / "real_280"
FIRST, LAST = "2016-04-19", "2016-04-25"  # m5 run's backtest on these files


@pytest.fixture(scope="module")
def backtest_280(tmp_path_factory):
    """A data folder holding real_280, its model of cutoff 2016-04-01 and the backtest issued and scored."""
    if not (REAL_280 / "calendar.csv").is_file():
        pytest.skip(f"genuine M5 files not found at {REAL_280} (the shared folder is absent)")
    data_dir = tmp_path_factory.mktemp("real_280")
    shutil.copytree(REAL_280, data_dir / "raw")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        assert run_pipeline(data_dir).success
        train(data_dir, "2016-04-01", {})
        # inventory_plan's check may stop the run after the forecasts are written: they are what is judged.
        issue(data_dir, FIRST, LAST, raise_on_error=False)
        score(data_dir, FIRST, LAST)
    return data_dir


def _forecasts(data_dir) -> dict[dt.date, pd.DataFrame]:
    days = pd.date_range(FIRST, LAST).date
    return {
        d: pd.read_parquet(warehouse.table_path(data_dir / "warehouse", "forecasts", ("forecast_date", d.isoformat())))
        for d in days
    }


def test_no_genuine_series_is_forecast_beyond_twice_its_highest_month_or_day(backtest_280):
    sales = pd.read_parquet(
        warehouse.table_path(backtest_280 / "warehouse", "sales_long"), columns=["id", "date", "units"]
    )
    units = sales.assign(date=pd.to_datetime(sales["date"])).pivot(index="id", columns="date", values="units")
    beyond = []
    for day, forecast in _forecasts(backtest_280).items():
        history = units.loc[:, units.columns < pd.Timestamp(day)]
        highest_month = history.T.rolling(HORIZON).mean().max()
        highest_day = history.max(axis=1)
        per_series = forecast.groupby("id")["forecast"]
        assert per_series.size().eq(HORIZON).all() and len(per_series.size()) == len(units)
        month = per_series.mean() / highest_month.reindex(per_series.mean().index)
        top_day = per_series.max() / highest_day.reindex(per_series.max().index)
        beyond += [f"{day} {s}: 28-day mean {r:.1f} x its highest" for s, r in month[month > 2].items()]
        beyond += [f"{day} {s}: a day {r:.1f} x its highest" for s, r in top_day[top_day > 2].items()]
    # Before issue 24 the booster's x 77, learned on a row level of 0.036, multiplied the forecast
    # date's 3.9: HOUSEHOLD_1_272_CA_2 got 9.6 x its highest 28-day mean, 305 units on days 1-2.
    assert beyond == []
    # The product's own check on what it issued (forecasts_within_history, on the store's units) agrees.
    recorded = reader.read_partition(
        backtest_280 / "warehouse", tables.CHECK_RESULTS, "forecasts.forecasts_within_history"
    ).iloc[0]
    assert recorded["passed"] and f"({FIRST} .. {LAST})" in recorded["description"], recorded["description"]


def test_the_genuine_backtest_is_within_5_percent_of_the_actuals_and_beats_both_simple_baselines(backtest_280):
    scores = reader.read_accuracy(backtest_280 / "warehouse")
    assert len(scores) == 7
    bias, wrmsse = scores["bias_pct"].mean(), scores["wrmsse"].mean()
    naive, mean28 = scores["seasonal_naive_wrmsse"].mean(), scores["moving_average_28_wrmsse"].mean()
    print(
        f"\nreal_280 backtest {FIRST} .. {LAST}: WRMSSE {wrmsse:.4f} vs seasonal naive {naive:.4f}, "
        f"28-day mean {mean28:.4f}; bias {bias:+.1f} % ({scores['bias_pct'].min():+.1f} .. {scores['bias_pct'].max():+.1f})"
    )
    # 5 %: the bound the 10-series genuine forecast holds (test_forecast_accuracy). Multiplying
    # the level at the forecast date, it ran +7 to +9 % high every day, at WRMSSE 1.21.
    assert abs(bias) <= 5.0
    assert np.isfinite(wrmsse) and wrmsse < min(naive, mean28)


def test_m5_export_writes_a_stored_forecast_in_the_kaggle_submission_layout(backtest_280, tmp_path, monkeypatch):
    """One row per series and suffix, ids as the sales file builds them, F1..F28: the _evaluation
    rows hold the forecast issued on the day, the _validation rows the 28 days sold before it."""
    monkeypatch.setenv("M5_DATA_DIR", str(backtest_280))
    out = tmp_path / "submission.csv"
    assert cli.main(["export", "--forecast-date", LAST, "--out", str(out)]) == 0
    frame = pd.read_csv(out).set_index("id")
    assert list(frame.columns) == [f"F{h}" for h in range(1, HORIZON + 1)]

    sales = pd.read_csv(REAL_280 / "sales_train_evaluation.csv").set_index("id")
    bases = sales.index.str.removesuffix("_evaluation")
    assert sorted(frame.index) == sorted([*(bases + "_validation"), *(bases + "_evaluation")])

    calendar = pd.read_csv(REAL_280 / "calendar.csv", usecols=["date", "d"]).set_index("date")["d"]
    before = pd.date_range(end=pd.Timestamp(LAST) - pd.Timedelta(days=1), periods=HORIZON).strftime("%Y-%m-%d")
    sold = sales[calendar.loc[before].to_list()].set_axis(bases + "_validation")
    np.testing.assert_array_equal(frame.loc[sold.index].to_numpy(), sold.to_numpy())

    issued = _forecasts(backtest_280)[dt.date.fromisoformat(LAST)]
    wide = issued.pivot(index="id", columns="date", values="forecast").sort_index(axis=1)
    evaluation = frame.loc[wide.index.astype(str)]
    np.testing.assert_allclose(evaluation.to_numpy(), wide.to_numpy(), atol=5e-4)
