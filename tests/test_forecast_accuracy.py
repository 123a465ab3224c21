import datetime as dt
import shutil

import numpy as np
import pandas as pd
import pytest

from conftest import SHARED_M5, run_pipeline
from forecasting import QUICK as QUICK_CONFIG
from forecasting import issue, metadata, score, train
from m5_assets import reader, warehouse
from m5_assets.features.build import load_inputs
from m5_assets.forecast.accuracy import score_forecast, warnings_against_history
from m5_assets.forecast.issue import IssuingModel
from m5_assets.forecast.issue import issue as issue_forecast
from m5_assets.metrics import naive_scale
from m5_assets.model.baselines import seasonal_naive
from m5_assets.model.evaluation import calibrate_intervals
from m5_assets.model.training import TrainingParams
from m5_assets.model.training import train as train_model

QUICK = TrainingParams(max_rounds=200, early_stopping_rounds=20, train_days=365)


def _inputs(w):
    tables = [warehouse.table_path(w, n) for n in ("sales_long", "raw_calendar", "raw_sell_prices")]
    return load_inputs(warehouse.connect(), *tables)


def _issuing_model(w, inputs, cutoff: dt.date, params=QUICK) -> IssuingModel:
    model = train_model(warehouse.table_path(w, "features"), cutoff, params)
    calibration = calibrate_intervals(inputs, cutoff, model.validation)
    return IssuingModel(model.booster, calibration, "1", "run", cutoff)


def test_interval_coverage_is_within_5_points_of_nominal_on_generated_data(built):
    w = built["small"]
    inputs = _inputs(w)
    model = _issuing_model(w, inputs, dt.date(2016, 3, 1))
    days = [dt.date(2016, 3, 1), dt.date(2016, 3, 15), dt.date(2016, 4, 1), dt.date(2016, 4, 20)]
    rows = [score_forecast(inputs, d, issue_forecast(warehouse.table_path(w, "features"), d, model).bottom) for d in days]
    for coverage in (80, 95):
        got = np.mean([r[f"coverage_{coverage}"] for r in rows])
        assert abs(got - coverage) <= 5, f"{coverage} % intervals cover {got:.1f} %"


def test_the_genuine_forecast_of_2016_04_25_beats_seasonal_naive_on_the_real_units(tmp_path, real_subset, capsys):
    shutil.copytree(real_subset, tmp_path / "raw")
    assert run_pipeline(tmp_path).success
    w = tmp_path / "warehouse"
    inputs = _inputs(w)
    model = _issuing_model(w, inputs, dt.date(2016, 4, 1), TrainingParams())
    day = dt.date(2016, 4, 25)  # d_1914, the day after the last day of the training file
    bottom = issue_forecast(warehouse.table_path(w, "features"), day, model).bottom

    truth = pd.read_csv(SHARED_M5 / "sales_test_validation_d1914-1941.csv")
    truth["id"] = truth["item_id"] + "_" + truth["store_id"] + "_validation"
    series = inputs.series["id"].astype(str).tolist()
    actual = truth.set_index("id").loc[series, [f"d_{k}" for k in range(1914, 1942)]].to_numpy(float)
    forecast = bottom.pivot(index="id", columns="horizon", values="forecast").loc[series].to_numpy()
    history = inputs.units[:, : inputs.n_sales_days].astype(float)
    scale = naive_scale(history)
    rmsse = {
        "model": np.sqrt(((actual - forecast) ** 2).mean(axis=1) / scale),
        "seasonal_naive": np.sqrt(((actual - seasonal_naive(history, 28)) ** 2).mean(axis=1) / scale),
    }
    with capsys.disabled():
        print(f"\ngenuine subset, forecast issued 2016-04-25: mean RMSSE model {rmsse['model'].mean():.4f}, "
              f"seasonal naive {rmsse['seasonal_naive'].mean():.4f}")  # fmt: skip
    assert rmsse["model"].mean() < rmsse["seasonal_naive"].mean()


def test_degradation_and_coverage_warnings_fire_only_past_their_limits():
    earlier = pd.DataFrame({"forecast_date": pd.date_range("2016-01-01", periods=40), "wrmsse": [1.0] * 12 + [0.5] * 28})
    fine = {"wrmsse": 0.54, "coverage_95": 92.0}
    assert warnings_against_history(fine, earlier) == []  # 8 % above the trailing 28-partition mean of 0.5
    worse = warnings_against_history({"wrmsse": 0.56, "coverage_95": 95.0}, earlier)
    assert len(worse) == 1 and "more than 10% above the mean 0.5000 of the 28 partitions" in worse[0]
    assert "coverage" in warnings_against_history({"wrmsse": 0.5, "coverage_95": 89.0}, earlier)[0]
    assert warnings_against_history({"wrmsse": 9.0, "coverage_95": 95.0}, earlier.iloc[:0]) == []


def test_forecast_accuracy_scores_issued_partitions_and_refuses_ones_without_actuals(model_data):
    tmp_path = model_data
    train(tmp_path, "2016-04-01", QUICK_CONFIG)
    issue(tmp_path, "2016-04-10", "2016-04-12")
    result = score(tmp_path, "2016-04-10", "2016-04-12")
    scores = reader.read_accuracy(tmp_path / "warehouse")
    assert len(scores) == 3 and (scores["wrmsse"] < scores["seasonal_naive_wrmsse"]).all()
    assert {f"wrmsse_level_{k}" for k in range(1, 13)} <= set(scores.columns)
    assert metadata(result)["partitions"] == 3
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "accuracy_in_line_with_history"

    issue(tmp_path, "2016-05-01")
    with pytest.raises(Exception, match="cannot be scored until 2016-05-28"):
        score(tmp_path, "2016-05-01")
