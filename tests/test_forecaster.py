import datetime as dt

import numpy as np
import pandas as pd

from m5_assets.features.catalog import FEATURE_NAMES, LEVEL_FEATURE
from m5_assets.model.forecaster import LEGACY, LEVEL_SMOOTHING, IssueRule, offset, origin_levels, row_levels


def test_the_issued_units_scale_the_booster_by_the_level_then_blend_with_it():
    prediction, level = np.array([1.0, 2.0, 0.5]), np.array([3.0, 0.0, np.nan])
    model_units = prediction * (np.nan_to_num(level) + LEVEL_SMOOTHING)
    np.testing.assert_allclose(IssueRule(1.0).units(prediction, level, level), model_units)
    np.testing.assert_allclose(IssueRule(0.0).units(prediction, level, level), [3.0, 0.0, 0.0])
    np.testing.assert_allclose(IssueRule(0.7).units(prediction, level, level), 0.7 * model_units + 0.3 * np.array([3.0, 0.0, 0.0]))
    # The offset training starts from is the log of what the booster's output is multiplied by.
    np.testing.assert_allclose(np.exp(offset(level)), np.nan_to_num(level) + LEVEL_SMOOTHING)


def test_a_model_trained_before_issue_rules_issues_its_booster_units():
    assert LEGACY.units(np.array([1.5, 2.0]), np.array([9.0, 9.0]), np.array([9.0, 9.0])).tolist() == [1.5, 2.0]
    assert IssueRule.from_json(IssueRule(0.4, chosen_because="why").to_json()) == IssueRule(0.4, chosen_because="why")


def test_the_origin_level_is_the_one_on_each_series_row_dated_27_days_after_the_forecast_date():
    day = dt.date(2016, 4, 25)
    keys = pd.DataFrame({"id": ["a"] * 28 + ["b"] * 28, "date": pd.date_range(day, periods=28).tolist() * 2})
    matrix = np.zeros((56, len(FEATURE_NAMES)), dtype=np.float32)
    matrix[:, FEATURE_NAMES.index(LEVEL_FEATURE)] = np.arange(56)
    origin = origin_levels(keys, matrix, day)
    assert origin.tolist() == [27.0] * 28 + [55.0] * 28
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
    issued = IssueRule(0.5).units(booster_says, row_levels(matrix), origin_levels(keys, matrix, day))
    start = row_levels(matrix)
    np.testing.assert_allclose(issued, 0.5 * 77.0 * (start + LEVEL_SMOOTHING) + 0.5 * start[-1])
