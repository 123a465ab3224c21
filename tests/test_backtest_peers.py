"""The backtest's peers: what each promises, and that none of them sees the origin or later."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from m5_assets.backtest.peers import MlforecastPeer, simple_forecasts, statistical_forecasts
from m5_assets.backtest.statistical import since_first_sale
from m5_assets.model.baselines import exponential_smoothing, moving_average, seasonal_naive

HORIZON = 28
START = pd.Timestamp("2015-01-07")  # a Wednesday: a profile read from the wrong weekday would show


def _dates(days: int) -> pd.DatetimeIndex:
    return pd.date_range(START, periods=days, freq="D")


def _weekly(pattern: list[float], dates: pd.DatetimeIndex) -> np.ndarray:
    """A series that sells ``pattern[weekday]`` (Monday first) on every date."""
    return np.asarray(pattern, dtype=float)[dates.dayofweek]


def _intermittent(rng: np.random.Generator, n_series: int, days: int) -> np.ndarray:
    return rng.poisson(rng.uniform(0.2, 3.0, size=(n_series, 1)), size=(n_series, days)).astype(float)


# --- simple forecasts ---------------------------------------------------------------------------


def test_weekday_profile_reproduces_each_stores_own_weekly_pattern():
    dates = _dates(10 * 7 + 3)
    busy_weekend = [1, 1, 1, 1, 2, 4, 5]  # store A
    busy_monday = [6, 3, 2, 2, 2, 1, 0]  # store B: a profile mixed across stores would not reproduce it
    history = np.vstack([_weekly(busy_weekend, dates), 2 * _weekly(busy_weekend, dates), _weekly(busy_monday, dates)])
    forecasts = simple_forecasts(history, dates, np.array(["A", "A", "B"]), HORIZON)
    future = pd.date_range(dates[-1] + pd.Timedelta(days=1), periods=HORIZON, freq="D")
    expected = np.vstack(
        [_weekly(busy_weekend, future), 2 * _weekly(busy_weekend, future), _weekly(busy_monday, future)]
    )
    np.testing.assert_allclose(forecasts["weekday_profile"], expected)


def test_weekday_profile_is_flat_for_a_store_that_sold_nothing_and_uses_only_the_last_8_weeks():
    dates = _dates(12 * 7)
    old_pattern = _weekly([9, 0, 0, 0, 0, 0, 0], dates)
    old_pattern[-56:] = 2.0  # flat for the last 8 weeks: the older Mondays must not count
    history = np.vstack([old_pattern, np.zeros(len(dates))])
    forecasts = simple_forecasts(history, dates, np.array(["A", "B"]), HORIZON)
    np.testing.assert_allclose(forecasts["weekday_profile"], np.vstack([np.full(HORIZON, 2.0), np.zeros(HORIZON)]))


def test_simple_forecasts_are_the_products_baselines_in_the_callers_row_order():
    rng = np.random.default_rng(3)
    dates = _dates(120)
    history = _intermittent(rng, 5, len(dates))
    forecasts = simple_forecasts(history, dates, np.array(list("ABABA")), HORIZON)
    assert set(forecasts) == {"seasonal_naive", "moving_average_28", "weekday_profile", "exponential_smoothing"}
    assert all(matrix.shape == (5, HORIZON) for matrix in forecasts.values())
    np.testing.assert_array_equal(forecasts["seasonal_naive"], seasonal_naive(history, HORIZON))
    np.testing.assert_array_equal(forecasts["moving_average_28"], moving_average(history, HORIZON))
    np.testing.assert_array_equal(forecasts["exponential_smoothing"], exponential_smoothing(history, HORIZON))
    reversed_rows = simple_forecasts(history[::-1], dates, np.array(list("ABABA"))[::-1], HORIZON)
    for name, matrix in forecasts.items():
        np.testing.assert_allclose(reversed_rows[name][::-1], matrix, err_msg=name)


def test_simple_forecasts_refuse_dates_that_do_not_match_the_history():
    with pytest.raises(ValueError):
        simple_forecasts(np.ones((2, 30)), _dates(29), np.array(["A", "B"]), HORIZON)


# --- statsforecast ------------------------------------------------------------------------------


def test_statistical_forecasts_have_the_right_shape_are_non_negative_and_zero_for_a_series_never_sold():
    rng = np.random.default_rng(5)
    history = _intermittent(rng, 6, 400)
    history[2] = 0.0
    history[4, :-20] = 0.0  # released 20 days ago: too short for ETS's season
    forecasts = statistical_forecasts(history, HORIZON)
    assert set(forecasts) == {"croston", "tsb", "adida", "ets"}
    for name, matrix in forecasts.items():
        assert matrix.shape == (6, HORIZON) and matrix.dtype == np.float64, name
        assert (matrix >= 0).all() and np.isfinite(matrix).all(), name
        assert (matrix[2] == 0).all(), name
        assert matrix[[0, 1, 3, 5]].min() > 0, name
    np.testing.assert_allclose(forecasts["ets"][4], history[4, -20:].mean())


def test_a_series_released_late_is_forecast_from_its_first_sale_not_from_the_zeros_before_it():
    rng = np.random.default_rng(11)
    sales = rng.poisson(0.8, size=60).astype(float)  # short enough that the first interval still counts
    sales[0] = 3.0  # the first day on the shelf is a sale
    late = np.concatenate([np.zeros(500), sales])
    released_late, trimmed = (
        statistical_forecasts(late[None, :], HORIZON),
        statistical_forecasts(sales[None, :], HORIZON),
    )
    for name, matrix in released_late.items():
        np.testing.assert_allclose(matrix, trimmed[name], err_msg=name)
    # The zeros would matter if they were kept: Croston's first interval and ADIDA's
    # aggregation level both count them.
    from statsforecast.models import ADIDA, CrostonClassic

    for name, model in {"croston": CrostonClassic(), "adida": ADIDA()}.items():
        untrimmed = model.forecast(y=late, h=HORIZON)["mean"]
        assert not np.allclose(untrimmed, released_late[name][0]), name
        np.testing.assert_allclose(released_late[name][0], model.forecast(y=since_first_sale(late), h=HORIZON)["mean"])


# --- point in time ------------------------------------------------------------------------------


def _changed_from(matrix: np.ndarray, column: int, rng: np.random.Generator) -> np.ndarray:
    changed = matrix.copy()
    changed[:, column:] = rng.poisson(9.0, size=changed[:, column:].shape)
    return changed


def test_simple_and_statistical_forecasts_ignore_sales_on_or_after_the_origin():
    rng = np.random.default_rng(17)
    days, origin = 200, 150  # column 150 is the origin: the callers pass history[:, :origin]
    dates = _dates(days)
    full = _intermittent(rng, 4, days)
    stores = np.array(["A", "A", "B", "B"])
    changed = _changed_from(full, origin, rng)
    for issue in (
        lambda sales: simple_forecasts(sales[:, :origin], dates[:origin], stores, HORIZON),
        lambda sales: statistical_forecasts(sales[:, :origin], HORIZON),
    ):
        before, after = issue(full), issue(changed)
        for name in before:
            np.testing.assert_array_equal(before[name], after[name], err_msg=name)
        # Counter-test: the day before the origin does reach every method.
        moved = issue(_changed_from(full, origin - 1, rng))
        for name in before:
            assert not np.array_equal(before[name], moved[name]), name


# --- mlforecast ---------------------------------------------------------------------------------

IDS = ["FOODS_1_001_CA_1", "FOODS_1_002_CA_1", "HOBBIES_1_001_TX_1", "HOUSEHOLD_1_001_WI_1"]
CUTOFF, ORIGIN = dt.date(2015, 7, 1), dt.date(2015, 7, 12)


def _long(rng: np.random.Generator, days: int = 200) -> pd.DataFrame:
    dates = _dates(days)
    sales = _intermittent(rng, len(IDS), days) * _weekly([1, 1, 1, 1, 1.5, 2, 2], dates)
    # On the shelf from two days after the cutoff: absent from the fit, forecast all the same.
    sales[3, : dates.get_loc(pd.Timestamp(CUTOFF)) + 2] = 0.0
    sales[3, dates.get_loc(pd.Timestamp(CUTOFF)) + 2] = 4.0
    return pd.DataFrame({"unique_id": np.repeat(IDS, days), "ds": np.tile(dates, len(IDS)), "y": sales.ravel().round()})


@pytest.fixture(scope="module")
def long_and_peer() -> tuple[pd.DataFrame, MlforecastPeer]:
    long = _long(np.random.default_rng(23))
    return long, MlforecastPeer().fit(long, CUTOFF)


def test_mlforecast_peer_returns_the_asked_ids_in_order_zero_for_unknown_ones_and_forecasts_one_released_after_the_cutoff(
    long_and_peer,
):
    long, peer = long_and_peer
    ids = [IDS[2], "FOODS_9_999_CA_1", IDS[0], IDS[3], IDS[1]]
    forecasts = peer.predict(long, ORIGIN, HORIZON, ids)
    assert forecasts.shape == (5, HORIZON) and forecasts.dtype == np.float64
    assert (forecasts[1] == 0).all() and (forecasts[[0, 2, 3, 4]] > 0).all() and (forecasts >= 0).all()
    in_order = peer.predict(long, ORIGIN, HORIZON, IDS)
    np.testing.assert_array_equal(forecasts[[2, 4, 0, 3]], in_order)
    # The model differs across series: rows are not copies of one another.
    assert len({tuple(row.round(6)) for row in in_order}) == len(IDS)


def test_mlforecast_peer_ignores_sales_on_or_after_the_origin(long_and_peer):
    long, peer = long_and_peer
    rng = np.random.default_rng(29)
    changed = long.copy()
    after = changed["ds"] >= pd.Timestamp(ORIGIN)
    changed.loc[after, "y"] = rng.poisson(20.0, size=int(after.sum()))
    before = peer.predict(long, ORIGIN, HORIZON, IDS)
    # A peer fitted on the changed frame too: the fit reads nothing from the cutoff on.
    refit = MlforecastPeer().fit(changed, CUTOFF)
    np.testing.assert_array_equal(refit.predict(changed, ORIGIN, HORIZON, IDS), before)
    # Counter-test: the day before the origin does reach the forecast.
    moved = long.copy()
    moved.loc[moved["ds"] == pd.Timestamp(ORIGIN) - pd.Timedelta(days=1), "y"] += 15.0
    assert not np.array_equal(peer.predict(moved, ORIGIN, HORIZON, IDS), before)


def test_mlforecast_peer_predicts_the_same_from_its_recent_window_as_from_the_whole_history(long_and_peer):
    long, peer = long_and_peer
    whole = MlforecastPeer()
    whole._forecaster, whole.PREDICT_DAYS = peer._forecaster, 10**4
    np.testing.assert_allclose(peer.predict(long, ORIGIN, HORIZON, IDS), whole.predict(long, ORIGIN, HORIZON, IDS))


def test_mlforecast_peer_trains_on_the_window_it_is_given_and_says_so(long_and_peer):
    long, peer = long_and_peer
    short = MlforecastPeer(train_days=60).fit(long, CUTOFF)
    assert "60 days before each monthly cutoff" in short.config and f"{peer.train_days} days" in peer.config
    older = long.copy()
    # (A series already on the shelf: the zeros of one not yet released stay zeros.)
    early = (older["ds"] < pd.Timestamp(CUTOFF) - pd.Timedelta(days=60)) & (older["unique_id"] == IDS[0])
    older.loc[early, "y"] += 9.0
    # Sales before its window do not reach the short peer's model; they do reach the default one's.
    np.testing.assert_array_equal(
        MlforecastPeer(train_days=60).fit(older, CUTOFF).predict(long, ORIGIN, HORIZON, IDS),
        short.predict(long, ORIGIN, HORIZON, IDS),
    )
    assert not np.array_equal(
        MlforecastPeer().fit(older, CUTOFF).predict(long, ORIGIN, HORIZON, IDS),
        peer.predict(long, ORIGIN, HORIZON, IDS),
    )
