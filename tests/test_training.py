import dataclasses
import datetime as dt
import shutil
from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from forecasting import QUICK_PARAMS

from m5_assets import tables, warehouse
from m5_assets.features.build import load_inputs
from m5_assets.features.catalog import FEATURE_NAMES, HORIZON
from m5_assets.model.evaluation import MODEL, score_validation
from m5_assets.model.forecaster import IssueRule, Partners, offset, refreshed, row_levels
from m5_assets.model.matrix import read_rows
from m5_assets.model.selection import served_forecast
from m5_assets.model.training import progress_every, rows_of, train


def _features(built, scale):
    return tables.FEATURES.files(built[scale])


def _inputs(built, scale):
    w = built[scale]
    return load_inputs(
        warehouse.connect(),
        warehouse.table_path(w, "sales_long"),
        warehouse.table_path(w, "raw_calendar"),
        warehouse.table_path(w, "raw_sell_prices"),
    )


def test_training_rows_lie_before_the_cutoff_and_validation_is_the_28_days_before_it(built):
    cutoff = dt.date(2016, 4, 1)
    model = train(_features(built, "tiny"), cutoff, QUICK_PARAMS)
    dates = pd.to_datetime(model.validation["date"])
    assert dates.min() == pd.Timestamp("2016-03-04") and dates.max() == pd.Timestamp("2016-03-31")
    rows = read_rows(_features(built, "tiny"), cutoff - dt.timedelta(days=QUICK_PARAMS.train_days), cutoff)
    assert pd.to_datetime(rows.keys["date"]).max() < pd.Timestamp(cutoff)
    assert model.train_rows + model.validation_rows == len(rows)
    price = rows.matrix[:, FEATURE_NAMES.index("sell_price")]
    assert not np.isnan(price).any()  # rows before an item's release are dropped


def test_same_data_and_seed_give_the_same_model_and_scores(built):
    cutoff = dt.date(2016, 3, 1)
    first, second = (train(_features(built, "tiny"), cutoff, QUICK_PARAMS) for _ in range(2))
    assert first.booster.model_to_string() == second.booster.model_to_string()
    np.testing.assert_array_equal(first.validation["prediction"], second.validation["prediction"])


def test_a_cutoff_past_the_data_is_refused_with_the_reason(built):
    with pytest.raises(ValueError, match="no sales for the day before cutoff"):
        train(_features(built, "tiny"), dt.date(2017, 1, 1), QUICK_PARAMS)


def test_model_beats_seasonal_naive_on_small_data(built):
    cutoff = dt.date(2016, 5, 1)
    model = train(_features(built, "small"), cutoff, QUICK_PARAMS)
    scores = score_validation(_inputs(built, "small"), cutoff, model.validation)
    assert scores.wrmsse(MODEL) < 0.9 * scores.wrmsse("seasonal_naive")
    assert set(scores.table.index) == {MODEL, "naive", "seasonal_naive", "moving_average_28", "exponential_smoothing"}
    assert len(scores.per_level) == 12


def test_a_model_trained_before_a_cutoff_ignores_every_sale_on_or_after_it(tmp_path, tiny_raw):
    """Point in time for training: zeroing every sale from the cutoff on (long zero runs that
    straddle it, the case a hindsight stock-out rule would leak) leaves the model bit-identical."""
    from forecasting import run_pipeline

    cutoff = dt.date(2016, 3, 1)
    models = []
    for change in (False, True):
        data = tmp_path / str(change)
        shutil.copytree(tiny_raw, data / "raw")
        if change:
            sales = pd.read_csv(data / "raw" / "sales_train_evaluation.csv")
            calendar = pd.read_csv(data / "raw" / "calendar.csv", usecols=["date", "d"])
            later = calendar.loc[pd.to_datetime(calendar["date"]) >= pd.Timestamp(cutoff), "d"]
            sales[[c for c in later if c in sales.columns]] = 0
            sales.to_csv(data / "raw" / "sales_train_evaluation.csv", index=False)
        assert run_pipeline(data).success
        models.append(train(tables.FEATURES.files(data / "warehouse"), cutoff, QUICK_PARAMS))
    assert models[0].booster.model_to_string() == models[1].booster.model_to_string()
    pd.testing.assert_frame_equal(models[0].validation, models[1].validation)


def test_training_progress_is_reported_at_most_every_interval_with_the_round_and_score():
    heard, now = [], [0.0]
    callback = progress_every(30, heard.append, clock=lambda: now[0])

    def round_at(seconds: float, iteration: int) -> None:
        now[0] = seconds
        env = SimpleNamespace(
            iteration=iteration, end_iteration=1500, evaluation_result_list=[("valid_0", "tweedie", 1.23456, False)]
        )
        callback(env)

    for second, iteration in [(10, 0), (29, 1), (31, 2), (45, 3), (62, 4)]:
        round_at(second, iteration)
    assert heard == [
        "round 3 of at most 1500: validation tweedie 1.23456",
        "round 5 of at most 1500: validation tweedie 1.23456",
    ]


def test_ignored_features_are_never_split_on_and_the_rest_still_are(built):
    cutoff = dt.date(2016, 3, 1)
    ignoring = dataclasses.replace(QUICK_PARAMS, ignored_features="item_id, store_id")
    gain = train(_features(built, "tiny"), cutoff, ignoring).importance().set_index("feature")["gain"]
    assert gain["item_id"] == 0 and gain["store_id"] == 0
    assert gain.drop(["item_id", "store_id"]).sum() > 0
    everything = dataclasses.replace(QUICK_PARAMS, ignored_features="")
    assert train(_features(built, "tiny"), cutoff, everything).importance().set_index("feature")["gain"]["store_id"] > 0


def test_an_ignored_feature_outside_the_catalog_is_refused_by_name(built):
    with pytest.raises(ValueError, match="ignored_features: item_idd not in the feature catalog"):
        train(
            _features(built, "tiny"),
            dt.date(2016, 3, 1),
            dataclasses.replace(QUICK_PARAMS, ignored_features="item_idd"),
        )


def test_the_validation_forecast_and_an_earlier_models_window_are_the_model_refreshed_to_the_windows_first_day(built):
    """What the issue rule is chosen on must be the model as a new version issues it: its units
    refreshed to the level of the window's first day (``new_model_rule``)."""
    cutoff, features = dt.date(2016, 4, 1), _features(built, "tiny")
    model = train(features, cutoff, QUICK_PARAMS, refit=False)
    start = cutoff - dt.timedelta(days=HORIZON)
    rows = read_rows(features, start, cutoff, vocabulary=model.booster.pandas_categorical, labelled=False)
    plain = IssueRule().model_units(
        model.booster.predict(rows.matrix, num_iteration=model.best_iteration), row_levels(rows.matrix)
    )
    expected = rows.keys.assign(
        expected=refreshed(plain, row_levels(rows.matrix), Partners.at_origin(rows.keys, rows.matrix, start).level),
        plain=plain,
    )
    expected["date"] = pd.to_datetime(expected["date"])
    for frame in (model.validation, served_forecast(features, model.booster, True, cutoff).frame):
        joined = frame.assign(date=pd.to_datetime(frame["date"])).merge(
            expected, on=["id", "date"], validate="one_to_one"
        )
        assert len(joined) == len(frame)
        np.testing.assert_allclose(joined["prediction"], joined["expected"], rtol=1e-9)
        # The refresh moved some series: the window's first day's level is not every row's own.
        assert not np.allclose(joined["prediction"], joined["plain"])


def _tweedie_deviance(units: np.ndarray, mean: np.ndarray, power: float) -> float:
    mean = np.maximum(mean, 1e-9)
    return float(
        np.mean(
            2
            * (
                np.power(units, 2 - power) / ((1 - power) * (2 - power))
                - units * np.power(mean, 1 - power) / (1 - power)
                + np.power(mean, 2 - power) / (2 - power)
            )
        )
    )


def test_a_recent_final_fit_is_the_early_stopped_fit_plus_rounds_learnt_on_the_last_28_days(built):
    """One fit, not two (``final_fit="recent"``): the served booster keeps the early-stopped fit's
    trees as they are and adds ``recent_rounds`` trees fitted on the validation window's rows, each row starting from
    its own level and the kept trees (started from the trees alone, the new rounds would learn the
    level again and the window's deviance would grow, not shrink)."""
    cutoff, features = dt.date(2016, 4, 1), _features(built, "small")
    searched = train(features, cutoff, QUICK_PARAMS, refit=False)
    served = train(features, cutoff, dataclasses.replace(QUICK_PARAMS, final_fit="recent"))
    best = searched.best_iteration
    assert served.best_iteration == best
    assert best < served.booster.num_trees() <= best + QUICK_PARAMS.recent_rounds(best)
    rows = read_rows(
        features, cutoff - dt.timedelta(days=HORIZON), cutoff, vocabulary=served.booster.pandas_categorical
    )
    np.testing.assert_array_equal(
        served.booster.predict(rows.matrix, num_iteration=best),
        searched.booster.predict(rows.matrix, num_iteration=best),
    )
    start = np.exp(offset(row_levels(rows.matrix)))
    power = QUICK_PARAMS.tweedie_variance_power
    before = _tweedie_deviance(rows.label, start * searched.booster.predict(rows.matrix, num_iteration=best), power)
    after = _tweedie_deviance(rows.label, start * served.booster.predict(rows.matrix), power)
    assert after < 0.99 * before
    assert served.stage_seconds.keys() == {"read", "search", "final"}


def test_an_unknown_final_fit_is_refused_before_reading(built):
    with pytest.raises(ValueError, match="final_fit must be one of recent, refit, not 'twice'"):
        train(_features(built, "tiny"), dt.date(2016, 3, 1), dataclasses.replace(QUICK_PARAMS, final_fit="twice"))


def test_an_appended_booster_says_what_its_two_parts_say_together(built):
    from m5_assets.model.training import appended

    rows = read_rows(_features(built, "tiny"), dt.date(2016, 1, 1), dt.date(2016, 3, 1))
    params = {"objective": "tweedie", "num_leaves": 7, "verbose": -1, "seed": 1, "deterministic": True}
    data = lgb.Dataset(rows.matrix, rows.label, params=params).construct()
    first = lgb.train(params, data.subset(range(len(rows) // 2)), num_boost_round=8)
    second = lgb.train(params, data.subset(range(len(rows) // 2, len(rows))), num_boost_round=3)
    both = appended(first, 5, second)
    assert both.num_trees() == 8
    np.testing.assert_allclose(
        both.predict(rows.matrix, raw_score=True),
        first.predict(rows.matrix, num_iteration=5, raw_score=True) + second.predict(rows.matrix, raw_score=True),
        rtol=1e-12,
    )


def test_a_slice_of_a_binned_dataset_trains_the_model_its_subset_does():
    rng = np.random.default_rng(0)
    x, y = rng.random((3000, 4)).astype(np.float32), rng.random(3000)
    data = lgb.Dataset(x, y, params={"verbose": -1}).construct()
    params = {"objective": "regression", "deterministic": True, "num_threads": 1, "verbose": -1}
    by_list = lgb.train(params, data.subset(list(range(2000))), 15, valid_sets=[data.subset(list(range(2000, 3000)))])
    by_slice = lgb.train(params, rows_of(data, 0, 2000), 15, valid_sets=[rows_of(data, 2000, 3000)])
    assert rows_of(data, 2000, 3000).construct().num_data() == 1000
    np.testing.assert_array_equal(by_slice.predict(x), by_list.predict(x))


def test_a_constructed_dataset_trains_the_same_without_its_python_copies_of_label_and_offsets():
    # train() drops them once LightGBM has its own; subsets, fits and the read-back come from LightGBM's.
    rng = np.random.default_rng(1)
    x, y, start = rng.random((3000, 4)).astype(np.float32), rng.poisson(2.0, 3000), rng.normal(0, 0.1, 3000)
    params = {"objective": "tweedie", "deterministic": True, "num_threads": 1, "verbose": -1}
    kept = lgb.Dataset(x, y, init_score=start, params=params).construct()
    dropped = lgb.Dataset(x, y, init_score=start, params=params).construct()
    dropped.label = dropped.init_score = None
    np.testing.assert_array_equal(dropped.get_label(), y)
    np.testing.assert_array_equal(rows_of(dropped, 100, 200).construct().get_init_score(), start[100:200])
    models = [
        lgb.train(params, rows_of(d, 0, 2000), 10, valid_sets=[rows_of(d, 2000, 3000)]).predict(x, raw_score=True)
        for d in (kept, dropped)
    ]
    np.testing.assert_array_equal(models[0], models[1])
    np.testing.assert_array_equal(lgb.train(params, dropped, 5).predict(x), lgb.train(params, kept, 5).predict(x))
