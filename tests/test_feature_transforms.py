import numpy as np
import pandas as pd

from m5_assets.features.calendar import calendar_features, event_features
from m5_assets.features.catalog import EVENT_REACH
from m5_assets.features.price import RECENT_MAX_DAYS, price_features
from m5_assets.features.windows import trailing_nanmax

NAN = np.nan


def test_price_features_against_hand_computed_values():
    # Released on day 2; 2.00 for a week, then 2.50.
    price = np.array([[NAN, NAN] + [2.0] * 7 + [2.5] * 8])
    out = price_features(price)
    assert np.isnan(out["price_change_1w"][0, 8])  # a week earlier (day 1) had no price
    assert out["price_change_1w"][0, 9] == 0.25  # 2.50 / 2.00 - 1
    assert out["price_change_1w"][0, 16] == 0.0
    # Day 9: the 8 priced days so far are seven at 2.00 and one at 2.50.
    np.testing.assert_allclose(out["price_momentum_4w"][0, 9], 2.5 / ((7 * 2.0 + 2.5) / 8))
    np.testing.assert_allclose(out["price_relative_usual"][0, 15], 2.5 / ((7 * 2.0 + 7 * 2.5) / 14))
    assert np.isnan(out["price_relative_usual"][0, 1])
    assert np.isnan(out["price_vs_recent_max"][0, 1])
    assert out["price_vs_recent_max"][0, 16] == 1.0  # a rise is no markdown


def test_price_vs_recent_max_measures_a_markdown_until_the_old_price_leaves_the_window():
    days = 30 + RECENT_MAX_DAYS + 10
    price = np.full((1, days), 4.0)
    price[0, 10:17] = 3.0  # a week's promotion
    price[0, 30:] = 3.2  # then a lasting cut of the regular price
    out = price_features(price)["price_vs_recent_max"][0]
    assert out[9] == 1.0 and out[10] == 0.75 and out[17] == 1.0
    # Day 29 (the last at 4.00) is in every window up to 90 days later.
    assert out[30] == 0.8 and out[29 + RECENT_MAX_DAYS - 1] == 0.8
    assert out[29 + RECENT_MAX_DAYS] == 1.0


def test_trailing_nanmax_matches_pandas_rolling_max():
    rng = np.random.default_rng(3)
    values = rng.gamma(2.0, 1.0, (5, 300))
    values[rng.random(values.shape) < 0.2] = NAN
    values[1, :40] = NAN  # released late
    for window in (1, 2, 7, 64, 91, 365):
        expected = pd.DataFrame(values.T).rolling(window, min_periods=1).max().to_numpy().T
        np.testing.assert_array_equal(trailing_nanmax(values, window), expected)


def test_calendar_features_against_known_dates():
    out = calendar_features(pd.DatetimeIndex(["2016-01-31", "2016-02-01", "2016-12-31"]))
    assert out["day_of_week"].tolist() == [6, 0, 5]  # Sunday, Monday, Saturday
    assert out["day_of_month"].tolist() == [31, 1, 31]
    assert out["week_of_year"].tolist() == [4, 5, 52]
    assert out["quarter"].tolist() == [1, 1, 4]
    assert out["is_weekend"].tolist() == [1, 0, 1]
    assert out["is_month_start"].tolist() == [0, 1, 0]
    assert out["is_month_end"].tolist() == [1, 0, 1]


def test_event_features_count_days_to_and_from_events():
    out = event_features(pd.Series([None, "Sporting", None, None, "Cultural", None, "Festival"]))
    assert out["has_event"].tolist() == [0, 1, 0, 0, 1, 0, 1]
    assert out["event_type_code"].tolist() == [0, 4, 0, 0, 1, 0, 5]  # an unknown type is 'other'
    np.testing.assert_array_equal(out["days_to_next_event"], [1, 0, 2, 1, 0, 1, 0])
    np.testing.assert_array_equal(out["days_since_last_event"], [NAN, 0, 1, 2, 0, 1, 0])


def test_event_distances_stop_at_the_events_reach():
    # A long gap reads as "far from any event", not as a count that names one stretch of a year.
    gap = EVENT_REACH + 6
    out = event_features(pd.Series([None] * gap + ["National"] + [None] * gap + ["Cultural"]))
    since, to = out["days_since_last_event"], out["days_to_next_event"]
    assert np.nanmax(since) == EVENT_REACH and np.nanmax(to) == EVENT_REACH
    assert since[gap + EVENT_REACH - 1] == EVENT_REACH - 1 and since[gap + EVENT_REACH + 3] == EVENT_REACH
    assert to[gap - EVENT_REACH + 1] == EVENT_REACH - 1 and to[gap - EVENT_REACH - 3] == EVENT_REACH
    # Before the first event: unknown while an event could be nearer than the reach, then capped.
    assert np.isnan(since[: EVENT_REACH - 1]).all() and (since[EVENT_REACH - 1 : gap] == EVENT_REACH).all()
    # After the last event, the same the other way: capped while the calendar runs on that far.
    tail = event_features(pd.Series(["Cultural"] + [None] * gap))["days_to_next_event"]
    assert (tail[1 : gap - EVENT_REACH + 2] == EVENT_REACH).all() and np.isnan(tail[gap - EVENT_REACH + 2 :]).all()
