"""A forecast issued on D depends on nothing dated on or after D."""

import datetime as dt
import shutil

import pandas as pd
import pytest
from forecasting import WEAK, issue, run_pipeline, train

from m5_assets import reader, tables

DAY = dt.date(2016, 4, 20)


def _sales_file(data_dir):
    return data_dir / "raw" / "sales_train_evaluation.csv"


def _day_columns_from(data_dir, day: dt.date) -> list[str]:
    calendar = pd.read_csv(data_dir / "raw" / "calendar.csv", usecols=["date", "d"])
    return calendar.loc[pd.to_datetime(calendar["date"]) >= pd.Timestamp(day), "d"].tolist()


def _reissue(data_dir) -> pd.DataFrame:
    assert run_pipeline(data_dir).success
    issue(data_dir, DAY.isoformat())
    return reader.read_partition(data_dir / "warehouse", tables.FORECASTS, DAY)


@pytest.fixture
def forecast_dir(tmp_path, tiny_raw, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copytree(tiny_raw, tmp_path / "raw")
    assert run_pipeline(tmp_path).success
    train(tmp_path, "2016-04-01", WEAK)
    issue(tmp_path, DAY.isoformat())
    return tmp_path


def test_changing_or_removing_actuals_on_or_after_d_leaves_partition_d_bit_identical(forecast_dir):
    original = reader.read_partition(forecast_dir / "warehouse", tables.FORECASTS, DAY)
    original_levels = reader.read_partition(forecast_dir / "warehouse", tables.FORECAST_LEVELS, DAY)
    sales = pd.read_csv(_sales_file(forecast_dir))
    later = [c for c in _day_columns_from(forecast_dir, DAY) if c in sales.columns]
    assert later, "the data must run past the forecast date for this test to mean anything"

    changed = sales.copy()
    changed[later] = changed[later] * 3 + 5
    changed.to_csv(_sales_file(forecast_dir), index=False)
    pd.testing.assert_frame_equal(_reissue(forecast_dir), original, check_exact=True)

    sales.drop(columns=later).to_csv(_sales_file(forecast_dir), index=False)
    pd.testing.assert_frame_equal(_reissue(forecast_dir), original, check_exact=True)
    pd.testing.assert_frame_equal(
        reader.read_partition(forecast_dir / "warehouse", tables.FORECAST_LEVELS, DAY),
        original_levels,
        check_exact=True,
    )


def test_changing_actuals_before_d_does_change_partition_d(forecast_dir):
    """The test above could pass by ignoring the data altogether; this one shows it does not."""
    original = reader.read_partition(forecast_dir / "warehouse", tables.FORECASTS, DAY)
    sales = pd.read_csv(_sales_file(forecast_dir))
    all_later = set(_day_columns_from(forecast_dir, DAY - dt.timedelta(days=28)))
    window = [c for c in sales.columns if c in all_later and c not in set(_day_columns_from(forecast_dir, DAY))]
    sales[window] = sales[window] * 3 + 5
    sales.to_csv(_sales_file(forecast_dir), index=False)
    assert not _reissue(forecast_dir)["forecast"].equals(original["forecast"])
