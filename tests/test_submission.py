"""The Kaggle submission layout of a stored forecast, on frames small enough to read."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from m5_assets.submission import COLUMNS, submission, to_csv

DAY = dt.date(2016, 5, 23)
IDS = ["FOODS_1_001_CA_1_evaluation", "HOBBIES_1_002_TX_2_evaluation"]


def _days(first: dt.date, value) -> pd.DataFrame:
    rows = [(i, first + dt.timedelta(days=h), value(k, h)) for k, i in enumerate(IDS) for h in range(28)]
    return pd.DataFrame(rows, columns=["id", "date", "value"])


def test_evaluation_rows_hold_the_forecast_and_validation_rows_the_days_before():
    forecasts = _days(DAY, lambda k, h: k + h / 1000).rename(columns={"value": "forecast"})
    known = _days(DAY - dt.timedelta(days=28), lambda k, h: 10 * k + h).rename(columns={"value": "units"})
    frame = submission(forecasts, known, DAY)
    assert list(frame.columns) == COLUMNS and len(COLUMNS) == 29
    assert list(frame["id"]) == [
        "FOODS_1_001_CA_1_validation",
        "HOBBIES_1_002_TX_2_validation",
        "FOODS_1_001_CA_1_evaluation",
        "HOBBIES_1_002_TX_2_evaluation",
    ]
    assert frame.iloc[1, 1:].tolist() == [10 + h for h in range(28)]
    assert frame.iloc[3, 1:].tolist() == pytest.approx([1 + h / 1000 for h in range(28)])
    assert to_csv(frame).splitlines()[3].startswith("FOODS_1_001_CA_1_evaluation,0.000,0.001,0.002")


def test_a_day_missing_from_either_side_is_refused_by_name():
    forecasts = _days(DAY, lambda k, h: 1.0).rename(columns={"value": "forecast"})
    known = _days(DAY - dt.timedelta(days=28), lambda k, h: 1).rename(columns={"value": "units"})
    with pytest.raises(ValueError, match="2016-05-10"):
        submission(forecasts, known[known["date"] != dt.date(2016, 5, 10)], DAY)
    with pytest.raises(ValueError, match="forecast of 2016-05-23.*2016-06-19"):
        submission(forecasts[forecasts["date"] != dt.date(2016, 6, 19)], known, DAY)
