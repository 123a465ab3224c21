"""The band a forecast is judged in: each series' highest day and 28-day mean before the forecast
date, read from a feature store built by the product's own feature code."""

import datetime as dt

import duckdb
import numpy as np
import pandas as pd
import pytest

from m5_assets.features.build import sales_features
from m5_assets.features.catalog import HORIZON
from m5_assets.forecast.plausibility import band, history_highs

START = dt.date(2016, 1, 1)
D = START + dt.timedelta(days=84)  # three 28-day months of history before the forecast date
IDS = ("month_high", "day_spike", "within", "never_sold_small", "never_sold_large")


def _history() -> np.ndarray:
    """Series x days of units, worked out by hand below; 60 days run past D."""
    days = np.arange(84 + 60)
    units = np.zeros((len(IDS), len(days)))
    # One day of 28 in every 28 days, 1 on the rest: each full window holds it once.
    units[0] = np.where(days % HORIZON == 0, 28.0, 1.0)
    units[1] = 3.0
    units[2] = 5.0
    units[2, 84:] = 500.0  # from D on: a huge sale must not widen D's band
    return units


@pytest.fixture
def features(tmp_path):
    units = _history()
    dates = pd.date_range(START, periods=units.shape[1]).date
    frame = pd.DataFrame(
        {
            "id": np.repeat(IDS, len(dates)),
            "date": np.tile(dates, len(IDS)),
            "units": units.ravel().astype(np.float32),
            "roll_mean_28": sales_features(units.astype(np.float32))["roll_mean_28"].ravel(),
        }
    )
    path = tmp_path / "data.parquet"
    frame.to_parquet(path, index=False)
    return path


def _forecast(per_series: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"id": s, "horizon": h + 1, "forecast": v} for s, values in per_series.items() for h, v in enumerate(values)]
    )


def test_the_highest_day_and_month_are_those_before_the_forecast_date_only(features):
    highs = history_highs(duckdb.connect(), features, [D, D + dt.timedelta(days=1)])
    on_d = highs[D]
    assert on_d.loc["month_high"].tolist() == pytest.approx([28.0, 55 / 28])
    assert on_d.loc["day_spike"].tolist() == pytest.approx([3.0, 3.0])
    assert on_d.loc["within"].tolist() == pytest.approx([5.0, 5.0])  # the 500 on D is not before D
    assert on_d.loc["never_sold_small"].tolist() == [0.0, 0.0]
    # A day later the 500 is history: both highs take it in, so the filter is on the date, not on the data.
    assert highs[D + dt.timedelta(days=1)].loc["within"].tolist() == pytest.approx([500.0, (27 * 5 + 500) / 28])


def test_the_band_names_the_series_beyond_their_month_or_their_day_and_not_the_others(features):
    highs = history_highs(duckdb.connect(), features, [D])[D]
    forecast = _forecast(
        {
            "month_high": [4.5] * HORIZON,  # 4.5 / (55 / 28) = 2.29 x its best month; a day 0.16 x its best
            "day_spike": [2.0] * (HORIZON - 1) + [7.0],  # one day 7 / 3 = 2.33 x; the month 0.73 x
            "within": [5.0] * (HORIZON - 1) + [9.9],  # 1.98 x its best day: inside
            "never_sold_small": [0.3] * HORIZON,  # never sold, counted as 1 a day: 0.3 x
            "never_sold_large": [3.0] * HORIZON,  # never sold and 3 a day: beyond either way
        }
    )
    judged = band(forecast, highs).set_index("id")
    assert set(judged.index[judged["beyond"]]) == {"month_high", "day_spike", "never_sold_large"}
    assert judged.loc["month_high", "month_ratio"] == pytest.approx(4.5 * 28 / 55)
    assert judged.loc["month_high", "day_ratio"] == pytest.approx(4.5 / 28)
    assert judged.loc["day_spike", "day_ratio"] == pytest.approx(7 / 3)
    assert judged.loc["day_spike", "month_ratio"] == pytest.approx((2 * 27 + 7) / 28 / 3)
    assert judged.loc["never_sold_small", ["month_ratio", "day_ratio"]].tolist() == pytest.approx([0.3, 0.3])
    # Farthest out first.
    assert judged.index[0] == "never_sold_large" and list(judged.index[-1:]) == ["never_sold_small"]


def test_a_series_without_a_full_month_of_history_is_judged_on_its_highest_day():
    highs = pd.DataFrame(
        {"highest_day": [4.0, np.nan], "highest_28d_mean": [np.nan, np.nan]},
        index=pd.Index(["young", "unknown"], name="id"),
    )
    judged = band(_forecast({"young": [8.5] * HORIZON, "unknown": [1.5] * HORIZON}), highs).set_index("id")
    assert judged.loc["young", "month_ratio"] == pytest.approx(8.5 / 4) and judged.loc["young", "beyond"]
    # A series the store does not know counts as never sold.
    assert judged.loc["unknown", "day_ratio"] == pytest.approx(1.5) and not judged.loc["unknown", "beyond"]
