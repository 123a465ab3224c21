import datetime as dt

import numpy as np
import pandas as pd
import pytest

from m5_assets.features.catalog import FEATURE_NAMES, LEVEL_FEATURE
from m5_assets.model.forecaster import (
    LEGACY,
    LEVEL_SMOOTHING,
    MEAN_FEATURE,
    REFRESH_LIMIT,
    IssueRule,
    Partners,
    Segment,
    new_model_rule,
    offset,
    origin_levels,
    refreshed,
    row_levels,
)


def test_the_issued_units_scale_the_booster_by_the_level_then_blend_with_it():
    prediction, level = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.0, np.nan])
    model_units = prediction * (np.nan_to_num(level) + LEVEL_SMOOTHING)
    partners = Partners(level, np.full(3, 9.0))
    np.testing.assert_allclose(IssueRule(1.0).units(prediction, level, partners), model_units)
    np.testing.assert_allclose(IssueRule(0.0).units(prediction, level, partners), [3.0, 0.0, 0.0])
    np.testing.assert_allclose(
        IssueRule(0.7).units(prediction, level, partners), 0.7 * model_units + 0.3 * np.array([3.0, 0.0, 0.0])
    )
    # The offset training starts from is the log of what the booster's output is multiplied by.
    np.testing.assert_allclose(np.exp(offset(level)), np.nan_to_num(level) + LEVEL_SMOOTHING)


def test_a_model_trained_before_issue_rules_issues_its_booster_units():
    nine = np.array([9.0, 9.0])
    assert LEGACY.units(np.array([1.5, 2.0]), nine, Partners(nine, nine)).tolist() == [1.5, 2.0]
    assert IssueRule.from_json(IssueRule(0.4, chosen_because="why").to_json()) == IssueRule(0.4, chosen_because="why")
    # A rule stored before bands existed blends every series with its level.
    assert (
        IssueRule.from_json(
            '{"blend_weight": 0.4, "relative": true, "chosen_because": "", "partner": "level"}'
        ).segments
        == ()
    )


def test_each_volume_band_blends_the_model_with_its_own_partner_and_weight():
    rule = IssueRule(
        segments=(Segment(0.5, 0.0, "mean_28"), Segment(5.0, 0.5, "demand_level"), Segment(float("inf"), 1.0))
    )
    model_units = np.array([10.0, 10.0, 10.0, 10.0])
    # 28-day means 0.2 (band 0), 0.5 (band 1: a band holds its lower edge), 4.9 (band 1), 7 (band 2).
    partners = Partners(level=np.array([1.0, 2.0, 3.0, 4.0]), mean_28=np.array([0.2, 0.5, 4.9, 7.0]))
    np.testing.assert_allclose(
        rule.blend(model_units, partners), [0.2, 0.5 * 10 + 0.5 * 2.0, 0.5 * 10 + 0.5 * 3.0, 10.0]
    )
    # A series with no 28 days of history yet is in the first band, its partner read as 0.
    no_history = Partners(level=np.array([np.nan]), mean_28=np.array([np.nan]))
    np.testing.assert_allclose(rule.blend(np.array([10.0]), no_history), [0.0])
    assert IssueRule.from_json(rule.to_json()) == rule
    assert (
        rule.describe()
        == "28-day mean 0-0.5: 28-day mean; 28-day mean 0.5-5: 0.5 x model + 0.5 x demand level; 28-day mean >= 5: model"
    )


def test_a_refreshed_model_follows_the_origins_level_by_at_most_the_limit_either_way():
    booster_says = np.array([2.0, 2.0, 2.0, 77.0])
    start = np.array([5.0, 5.0, 5.0, 0.036])
    model_units = booster_says * (start + LEVEL_SMOOTHING)
    # Up 20 %, down 60 % (held at 1 / 1.5), and after a stock-out's zeros from 0.036 to 3.9 (held at x 1.5).
    origin = np.array([6.0, 2.0, 5.0, 3.9])
    expected = model_units * np.array(
        [(6.0 + LEVEL_SMOOTHING) / (5.0 + LEVEL_SMOOTHING), 1 / REFRESH_LIMIT, 1.0, REFRESH_LIMIT]
    )
    np.testing.assert_allclose(refreshed(model_units, start, origin), expected)
    # Without a level at the origin (or a start), there is nothing to refresh to: the units stay.
    np.testing.assert_allclose(
        refreshed(model_units, start, np.array([np.nan, 2.0, 5.0, np.nan])),
        [model_units[0], *expected[1:3], model_units[3]],
    )
    np.testing.assert_allclose(refreshed(model_units, np.array([np.nan] * 4), origin), model_units)
    rule = IssueRule(refresh=True, segments=(Segment(1.0, 0.5, "mean_28"), Segment(float("inf"), 1.0)))
    partners = Partners(level=origin, mean_28=np.array([2.0, 2.0, 0.5, 3.0]))
    np.testing.assert_allclose(
        rule.units(booster_says, start, partners),
        [expected[0], expected[1], 0.5 * expected[2] + 0.5 * 0.5, expected[3]],
    )
    with pytest.raises(ValueError, match="origin level"):
        rule.model_units(booster_says, start)
    # A model trained now refreshes; one of units has no level to refresh from.
    assert new_model_rule(True).refresh and not new_model_rule(False).refresh
    assert (
        rule.describe()
        == "28-day mean 0-1: 0.5 x refreshed model + 0.5 x 28-day mean; 28-day mean >= 1: refreshed model"
    )
    assert IssueRule.from_json(rule.to_json()) == rule
    shared = IssueRule(
        refresh=True, segments=(Segment(0.5, 0.7, "mean_28"), Segment(1.5, 0.7, "mean_28"), Segment(float("inf"), 1.0))
    )
    assert (
        shared.describe()
        == "28-day mean 0-1.5: 0.7 x refreshed model + 0.3 x 28-day mean; 28-day mean >= 1.5: refreshed model"
    )
    # A rule stored before refreshing existed issues as it did.
    stored = IssueRule.from_json(
        '{"relative": true, "segments": [{"upper": 1.0, "model_weight": 1.0, "partner": "demand_level"}]}'
    )
    assert stored.refresh is False
    np.testing.assert_allclose(stored.units(booster_says, start, partners), model_units)


@pytest.mark.parametrize("categorical", [False, True], ids=["text-ids", "categorical-ids"])
def test_the_origin_level_is_the_one_on_each_series_row_dated_27_days_after_the_forecast_date(categorical):
    day = dt.date(2016, 4, 25)
    ids = pd.Series(["a"] * 28 + ["b"] * 28)
    # The feature store's ids arrive as categories, which may include series without rows here.
    ids = ids.astype(pd.CategoricalDtype(["z", "b", "a"])) if categorical else ids
    keys = pd.DataFrame({"id": ids, "date": pd.date_range(day, periods=28).tolist() * 2})
    matrix = np.zeros((56, len(FEATURE_NAMES)), dtype=np.float32)
    matrix[:, FEATURE_NAMES.index(LEVEL_FEATURE)] = np.arange(56)
    origin = origin_levels(keys, matrix, day)
    assert origin.tolist() == [27.0] * 28 + [55.0] * 28
    matrix[:, FEATURE_NAMES.index(MEAN_FEATURE)] = -np.arange(56)
    assert Partners.at_origin(keys, matrix, day).mean_28.tolist() == [-27.0] * 28 + [-55.0] * 28
    # A series not released by D + 27 has no origin values.
    later = origin_levels(keys.iloc[:-1], matrix[:-1], day)
    assert np.isnan(later[28:]).all()


def test_the_booster_multiplies_the_level_its_row_started_from_in_training_and_blends_with_the_origins():
    """Issue 24: HOUSEHOLD_1_272 at CA_2 after a 67-day stock-out. Its row level (the run's
    zeros) was 0.036, its level at the forecast date 3.9; the booster's x 77, learned on 0.036,
    once multiplied 3.9 and issued 305 units a day."""
    day = dt.date(2016, 4, 25)
    keys = pd.DataFrame({"id": ["a"] * 28, "date": pd.date_range(day, periods=28)})
    matrix = np.zeros((28, len(FEATURE_NAMES)), dtype=np.float32)
    matrix[:, FEATURE_NAMES.index(LEVEL_FEATURE)] = np.linspace(0.036, 3.9, 28)
    assert row_levels(matrix).tolist() == matrix[:, FEATURE_NAMES.index(LEVEL_FEATURE)].astype(np.float64).tolist()
    booster_says = np.full(28, 77.0)
    issued = IssueRule(0.5).units(booster_says, row_levels(matrix), Partners.at_origin(keys, matrix, day))
    start = row_levels(matrix)
    np.testing.assert_allclose(issued, 0.5 * 77.0 * (start + LEVEL_SMOOTHING) + 0.5 * start[-1])
