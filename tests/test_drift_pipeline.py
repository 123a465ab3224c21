"""Feature drift through the pipeline (issue 23): quiet on the genuine series, loud on a department
whose units tripled over the last 28 days, and a price x 100 refused before any feature is built."""

import datetime as dt
import shutil

import dagster as dg
import pandas as pd
import pytest
from forecasting import QUICK, copy_data, issue, run_pipeline, train

from m5_assets import reader, tables

GENUINE_NEWEST, GENUINE_BACKTEST = "2016-04-25", ("2016-03-22", "2016-03-28")  # what `m5 run` issues on real_subset


def _features_stable(result: dg.ExecuteInProcessResult) -> dg.AssetCheckEvaluation:
    (check,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "features_stable"]
    return check


def _triple_department(sales_file, dept: str, days: int = 28) -> None:
    """One department's units x 3 over the file's last ``days`` days."""
    sales = pd.read_csv(sales_file)
    last = [c for c in sales.columns if c.startswith("d_")][-days:]
    rows = sales["dept_id"] == dept
    assert rows.sum() > 0
    sales.loc[rows, last] = sales.loc[rows, last] * 3
    sales.to_csv(sales_file, index=False)


@pytest.fixture(scope="module")
def genuine(tmp_path_factory, real_subset):
    """real_subset through what `m5 run` does: the feature store, models for 2016-03-01 and
    2016-04-01 at the default settings, the newest forecast and the seven backtest dates."""
    data_dir = tmp_path_factory.mktemp("genuine-drift")
    shutil.copytree(real_subset, data_dir / "raw")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        assert run_pipeline(data_dir).success
        for cutoff in ("2016-03-01", "2016-04-01"):
            train(data_dir, cutoff, {})
        results = [issue(data_dir, GENUINE_NEWEST), issue(data_dir, *GENUINE_BACKTEST)]
    return data_dir, results


def test_the_genuine_series_raise_no_drift_warning_on_any_forecast_date(genuine):
    data_dir, results = genuine
    for result in results:
        check = _features_stable(result)
        assert check.passed, check.description
    root = data_dir / "warehouse"
    days = reader.partition_days(root, tables.FEATURE_DRIFT)
    assert len(days) == 8
    for day in days:
        drift = reader.read_partition(root, tables.FEATURE_DRIFT, day)
        judged = drift[drift["status"] != "calendar"]
        assert (judged["status"] == "ok").all()
        # The reference is the serving model's validation window: the 28 days before its cutoff.
        cutoff = drift["reference_end"].iloc[0]
        assert (drift["reference_start"] == cutoff - dt.timedelta(days=28)).all()
        # The PSI alone (10 items) would have flagged it, as the old fixed thresholds did.
        assert judged["psi"].max() > 0.25


def test_a_price_x_100_for_28_days_of_the_genuine_series_is_refused_naming_the_lines(tmp_path, real_subset):
    shutil.copytree(real_subset, tmp_path / "raw")
    prices = pd.read_csv(tmp_path / "raw" / "sell_prices.csv")
    pair = (prices["store_id"] == "CA_3") & (prices["item_id"] == "FOODS_1_001")
    weeks = prices.loc[pair, "wm_yr_wk"].sort_values().iloc[-4:]
    chosen = pair & prices["wm_yr_wk"].isin(weeks)
    prices.loc[chosen, "sell_price"] = (prices.loc[chosen, "sell_price"] * 100).round(2)
    prices.to_csv(tmp_path / "raw" / "sell_prices.csv", index=False)

    result = run_pipeline(tmp_path)

    assert not result.success
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert set(failed) == {"prices_within_history"}
    message = failed["prices_within_history"].description
    assert (
        message.startswith("sell_prices.csv") and "column 'sell_price'" in message and "4 offending row(s)" in message
    )
    for line in prices.index[chosen] + 2:
        assert str(line) in message
    assert not (tmp_path / "warehouse" / "features").exists()


def test_a_department_whose_units_tripled_over_the_last_28_days_fails_features_stable_naming_it(
    tmp_path, built, monkeypatch
):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    copy_data(built["small"].parent, tmp_path)
    train(tmp_path, "2016-04-01", QUICK)
    day = "2016-05-23"  # the day after the last day of sales
    healthy = _features_stable(issue(tmp_path, day))
    assert healthy.passed, healthy.description

    _triple_department(tmp_path / "raw" / "sales_train_evaluation.csv", "FOODS_1")
    assert run_pipeline(tmp_path).success
    check = _features_stable(issue(tmp_path, day))

    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    drift = reader.read_partition(tmp_path / "warehouse", tables.FEATURE_DRIFT, dt.date(2016, 5, 23))
    drifted = drift[drift["status"] == "drift"]
    assert {"units_lag_28", "roll_mean_7"} <= set(drifted["feature"]) and set(drifted["segment"]) == {"FOODS_1"}
    for feature in drifted["feature"]:
        assert feature in check.description
    assert "FOODS_1" in check.description
