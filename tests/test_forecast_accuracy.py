import dataclasses
import datetime as dt
import shutil

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import SHARED_M5
from forecasting import QUICK, QUICK_PARAMS, issue, run_pipeline, score, train
from mlflow.tracking import MlflowClient

from m5_assets import reader, tables, warehouse
from m5_assets.cli import main
from m5_assets.features.build import load_inputs
from m5_assets.features.catalog import HORIZON
from m5_assets.forecast.accuracy import score_forecast, warnings_against_history
from m5_assets.forecast.issue import issue as issue_forecast
from m5_assets.metrics import naive_scale
from m5_assets.model import registry
from m5_assets.model.baselines import BASELINES
from m5_assets.model.forecaster import IssueRule, IssuingModel
from m5_assets.model.selection import calibrate_validated, validate
from m5_assets.model.training import train as train_model


def _inputs(w):
    tables = [warehouse.table_path(w, n) for n in ("sales_long", "raw_calendar", "raw_sell_prices")]
    return load_inputs(warehouse.connect(), *tables)


def _issuing_model(w, inputs, cutoff: dt.date, params=QUICK_PARAMS) -> IssuingModel:
    """Trained, its issue rule chosen and its intervals calibrated as the demand_model asset does."""
    model = train_model(tables.FEATURES.files(w), cutoff, params)
    validated = validate(inputs, cutoff, model.validation, params.level_offset)
    calibration = calibrate_validated(inputs, validated)
    return IssuingModel(model.booster, calibration, "1", "run", cutoff, validated.rule)


def test_interval_coverage_is_within_5_points_of_nominal_on_generated_data(built):
    w = built["small"]
    inputs = _inputs(w)
    model = _issuing_model(w, inputs, dt.date(2016, 3, 1))
    days = [dt.date(2016, 3, 1), dt.date(2016, 3, 15), dt.date(2016, 4, 1), dt.date(2016, 4, 20)]
    rows = [score_forecast(inputs, d, issue_forecast(tables.FEATURES.files(w), d, model).bottom) for d in days]
    for coverage in (80, 95):
        got = np.mean([r[f"coverage_{coverage}"] for r in rows])
        assert abs(got - coverage) <= 5, f"{coverage} % intervals cover {got:.1f} %"


def test_the_genuine_forecast_of_2016_04_25_follows_the_level_and_beats_every_simple_baseline(
    tmp_path, real_subset, capsys
):
    shutil.copytree(real_subset, tmp_path / "raw")
    assert run_pipeline(tmp_path).success
    w = tmp_path / "warehouse"
    features = tables.FEATURES.files(w)
    inputs = _inputs(w)
    # The product's path: the monthly model a forecast of 2016-04-25 uses (the newest cutoff
    # before it) trained and registered by demand_model with its defaults, then the partition
    # issued and published by the forecasts asset.
    day = dt.date(2016, 4, 25)  # d_1914, the day after the last day of the training file
    assert train(tmp_path, "2016-04-01", {}).success
    assert issue(tmp_path, day.isoformat(), day.isoformat()).success
    client = MlflowClient(tracking_uri=registry.tracking_uri(tmp_path / "mlflow"))
    (version,) = registry.promoted_versions(client)
    model = registry.load_issuing_model(client, version)
    series = inputs.series["id"].astype(str).tolist()

    def matrix(bottom: pd.DataFrame) -> np.ndarray:
        return bottom.pivot(index="id", columns="horizon", values="forecast").loc[series].to_numpy()

    def issued(issuing: IssuingModel) -> np.ndarray:
        return matrix(issue_forecast(features, day, issuing).bottom)

    truth = pd.read_csv(SHARED_M5 / "sales_test_validation_d1914-1941.csv")
    truth["id"] = truth["item_id"] + "_" + truth["store_id"] + "_validation"
    actual = truth.set_index("id").loc[series, [f"d_{k}" for k in range(1914, 1942)]].to_numpy(float)
    history = inputs.units[:, : inputs.n_sales_days].astype(float)
    published = matrix(reader.read_partition(w, tables.FORECASTS, day))
    np.testing.assert_allclose(published, issued(model), rtol=1e-5)  # what is served is what the model issues
    forecasts = {
        "issued": published,
        "model alone, not refreshed": issued(dataclasses.replace(model, rule=IssueRule(relative=model.rule.relative))),
    }
    forecasts |= {name: baseline(history, HORIZON) for name, baseline in BASELINES.items()}
    # Not a forecast: each series' true mean of each scored week, known in advance. What even
    # perfect knowledge of the weekly level scores on these ten noisy series.
    weekly_truth = np.repeat(actual.reshape(len(actual), 4, 7).mean(axis=2), 7, axis=1)
    scale = naive_scale(history)
    rmsse = {name: float(np.sqrt(((actual - f) ** 2).mean(axis=1) / scale).mean()) for name, f in forecasts.items()}
    bias = {name: float(f.mean() / actual.mean() - 1) for name, f in forecasts.items()}
    with capsys.disabled():
        print(
            f"\ngenuine subset, forecast issued 2016-04-25 by the {model.cutoff} model, issued as {model.rule.describe()}:"
        )
        for name in forecasts:
            print(f"  {name:28s} mean RMSSE {rmsse[name]:.4f}   bias {bias[name]:+.1%}")
        oracle = float(np.sqrt(((actual - weekly_truth) ** 2).mean(axis=1) / scale).mean())
        print(
            f"  {'(true weekly means)':28s} mean RMSSE {oracle:.4f}   (knows the future: the noise floor of a level forecast)"
        )
    assert abs(bias["issued"]) <= 0.05
    assert rmsse["issued"] < min(rmsse[name] for name in BASELINES)


def test_degradation_and_coverage_warnings_fire_only_past_their_limits():
    earlier = pd.DataFrame(
        {"forecast_date": pd.date_range("2016-01-01", periods=40), "wrmsse": [1.0] * 12 + [0.5] * 28}
    )
    fine = {"wrmsse": 0.54, "coverage_95": 92.0}
    assert warnings_against_history(fine, earlier) == []  # 8 % above the trailing 28-partition mean of 0.5
    worse = warnings_against_history({"wrmsse": 0.56, "coverage_95": 95.0}, earlier)
    assert len(worse) == 1 and "more than 10% above the mean 0.5000 of the 28 partitions" in worse[0]
    assert "coverage" in warnings_against_history({"wrmsse": 0.5, "coverage_95": 89.0}, earlier)[0]
    assert warnings_against_history({"wrmsse": 9.0, "coverage_95": 95.0}, earlier.iloc[:0]) == []


def test_a_first_partition_worse_than_seasonal_naive_warns_without_any_history():
    # The 10**9-unit day once scored WRMSSE 1.4e7 on a first run, with no earlier partition to compare.
    (found,) = warnings_against_history(
        {"wrmsse": 1.4e7, "seasonal_naive_wrmsse": 1.1254, "coverage_95": 95.0},
        pd.DataFrame(columns=["forecast_date", "wrmsse"]),
    )
    assert "worse than seasonal naive's 1.1254" in found
    assert (
        warnings_against_history(
            {"wrmsse": 0.9, "seasonal_naive_wrmsse": 1.1254, "coverage_95": 95.0},
            pd.DataFrame(columns=["forecast_date", "wrmsse"]),
        )
        == []
    )


def test_forecast_accuracy_scores_issued_partitions_and_refuses_ones_without_actuals(model_data):
    tmp_path = model_data
    train(tmp_path, "2016-04-01", QUICK)
    issue(tmp_path, "2016-04-10", "2016-04-12")
    # An earlier partition that scored far better: the first day scored here is judged against it.
    root = tmp_path / "warehouse"
    tables.FORECAST_ACCURACY.write_partition(
        warehouse.Warehouse(root),
        dt.date(2016, 4, 9),
        pd.DataFrame([{"wrmsse": 0.01, "coverage_95": 95.0}]),
    )
    result = score(tmp_path, "2016-04-10", "2016-04-12")
    scores = reader.read_accuracy(root)
    scores = scores[scores["forecast_date"] != dt.date(2016, 4, 9)]
    assert len(scores) == 3 and (scores["wrmsse"] < scores["seasonal_naive_wrmsse"]).all()
    assert {f"wrmsse_level_{k}" for k in range(1, 13)} <= set(scores.columns)
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert (
        "2016-04-10: WRMSSE" in check.description
        and "above the mean 0.0100 of the 1 partitions before" in check.description
    )
    # Each partition shows its own score, as its file holds it.
    events = result.get_asset_materialization_events()
    assert sorted(e.partition for e in events) == ["2016-04-10", "2016-04-11", "2016-04-12"]
    for event in events:
        shown = {k: v.value for k, v in event.materialization.metadata.items()}
        held = pq.read_table(tables.FORECAST_ACCURACY.path(root, event.partition)).to_pylist()[0]
        assert shown["dagster/row_count"] == 1
        assert shown["wrmsse"] == round(held["wrmsse"], 4) and shown["coverage_95"] == round(held["coverage_95"], 4)
        assert shown["model_version"] == held["model_version"]
        assert [c.name for c in shown["dagster/column_schema"].columns] == list(held)

    issue(tmp_path, "2016-05-01")
    with pytest.raises(Exception, match="cannot be scored until 2016-05-28"):
        score(tmp_path, "2016-05-01")


def test_the_backtest_make_run_prints_on_the_genuine_series_beats_the_28_day_mean(
    tmp_path, real_subset, monkeypatch, capsys
):
    """The ten genuine series extended by their real d_1914 .. d_1941, as Kaggle's evaluation
    file would hold them, through `m5 run`: its seven backtest partitions are scored on real days."""
    raw = tmp_path / "data" / "raw"
    raw.mkdir(parents=True)
    for name in ("calendar.csv", "sell_prices.csv"):
        shutil.copy(real_subset / name, raw / name)
    sales = pd.read_csv(real_subset / "sales_train_validation.csv")
    truth = pd.read_csv(SHARED_M5 / "sales_test_validation_d1914-1941.csv")
    later = sales[["item_id", "store_id"]].merge(truth, on=["item_id", "store_id"], how="left")
    extended = pd.concat([sales, later[[f"d_{k}" for k in range(1914, 1942)]]], axis=1)
    extended["id"] = extended["id"].str.replace("_validation", "_evaluation")
    extended.to_csv(raw / "sales_train_evaluation.csv", index=False)
    monkeypatch.setenv("M5_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)

    assert main(["run"]) == 0
    out = capsys.readouterr().out
    scores = reader.read_accuracy(tmp_path / "data" / "warehouse")
    assert len(scores) == 7 and str(scores["forecast_date"].max())[:10] == "2016-04-25"
    model, mean28 = scores["mean_rmsse"].mean(), scores["moving_average_28_mean_rmsse"].mean()
    with capsys.disabled():
        print(
            f"\ngenuine backtest, 7 partitions {scores['forecast_date'].min()} .. {scores['forecast_date'].max()}: "
            f"mean RMSSE {model:.4f} vs 28-day mean {mean28:.4f}; WRMSSE {scores['wrmsse'].mean():.4f} "
            f"vs 28-day mean {scores['moving_average_28_wrmsse'].mean():.4f}; bias {scores['bias_pct'].mean():+.1f} %"
        )
    assert "mean RMSSE" in out and model < mean28
    _assert_level_figures_are_the_planner_s_sums(tmp_path / "data" / "warehouse", scores, extended, real_subset)


def _assert_level_figures_are_the_planner_s_sums(root, scores, sales, data) -> None:
    """Each level's WAPE, bias and interval coverage, as materialized, recomputed here from the
    stored forecasts and the sales file alone: sums over the level's series and 28 days."""
    calendar = pd.read_csv(data / "calendar.csv", usecols=["d", "date"])
    long = sales.melt(
        id_vars=["id", "item_id", "dept_id", "cat_id", "store_id", "state_id"], var_name="d", value_name="units"
    )
    long = long.merge(calendar, on="d").drop(columns="d")
    long["id"] = long["id"].str.replace("_evaluation", "_validation")
    for score_row in scores.head(2).to_dict("records"):
        day = str(score_row["forecast_date"])[:10]
        rows = {
            **{
                level: frame
                for level, frame in reader.read_partition(root, tables.FORECAST_LEVELS, day).groupby("level")
            },
            12: reader.read_partition(root, tables.FORECASTS, day),
        }
        assert sorted(rows) == list(range(1, 13))
        for level, frame in rows.items():
            keys = list(tables.LEVEL_KEYS[level])
            sold = long.groupby([*keys, "date"], as_index=False)["units"].sum()
            frame = frame.assign(date=frame["date"].astype(str))
            both = frame.merge(sold, on=[*keys, "date"], how="left", validate="one_to_one")
            assert len(both) == len(sold[sold["date"].isin(frame["date"])]) and both["units"].notna().all(), level
            error, actual = both["forecast"] - both["units"], both["units"].sum()
            assert score_row[f"wape_level_{level}"] == pytest.approx(100 * error.abs().sum() / actual, rel=1e-9)
            assert score_row[f"bias_level_{level}"] == pytest.approx(100 * error.sum() / actual, rel=1e-9)
            inside = {
                c: (both["units"] >= both[f"lo_{c}"] - 1e-9) & (both["units"] <= both[f"hi_{c}"] + 1e-9)
                for c in (80, 95)
            }
            for c in (80, 95):
                assert score_row[f"coverage_{c}_level_{level}"] == pytest.approx(100 * inside[c].mean(), rel=1e-9), (
                    level
                )
            if level == 12:
                continue
            # Each series of the level, as series_accuracy holds it (what the heat map reads).
            per_series = (
                both.assign(absolute=error.abs(), error=error, in80=inside[80], in95=inside[95])
                .groupby(keys or (lambda _: 0))
                .agg(sold=("units", "sum"), absolute=("absolute", "sum"), error=("error", "sum"), in80=("in80", "mean"))
            )
            held = reader.read_partition(root, tables.SERIES_ACCURACY, day)
            held = held[held["level"] == level].set_index(keys) if keys else held[held["level"] == level]
            assert len(held) == len(per_series), level
            for index, expected in per_series.iterrows():
                got = held.loc[index] if keys else held.iloc[0]
                assert got["units_sold"] == pytest.approx(expected["sold"])
                if expected["sold"] > 0:
                    assert got["wape"] == pytest.approx(100 * expected["absolute"] / expected["sold"], rel=1e-9)
                    assert got["bias"] == pytest.approx(100 * expected["error"] / expected["sold"], rel=1e-9)
                assert got["coverage_80"] == pytest.approx(100 * expected["in80"], rel=1e-9)
