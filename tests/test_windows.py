import numpy as np

from m5_assets.features.windows import demand_level_and_stock_outs, lag, lagged_rolling_mean_std, trailing_nanmeans

NAN = np.nan


def test_lag_shifts_each_row_later_and_pads_with_nan():
    values = np.array([[1.0, 2, 3, 4], [5, 6, 7, 8]])
    np.testing.assert_array_equal(lag(values, 2), [[NAN, NAN, 1, 2], [NAN, NAN, 5, 6]])
    assert np.isnan(lag(values, 9)).all()


def test_rolling_mean_and_std_need_a_full_window():
    values = np.array([[1.0, 2, 4, 8, 16]])
    mean, std = lagged_rolling_mean_std(values, [3])[3]
    np.testing.assert_allclose(mean, [[NAN, NAN, 7 / 3, 14 / 3, 28 / 3]], rtol=1e-6)
    # Sample standard deviation of (1, 2, 4): mean 7/3, squared deviations 16/9 + 1/9 + 25/9 = 42/9.
    np.testing.assert_allclose(std[0, 2], np.sqrt(42 / 9 / 2), rtol=1e-6)
    np.testing.assert_allclose(std[0, 4], np.std([4, 8, 16], ddof=1), rtol=1e-6)
    assert np.isnan(std[0, :2]).all()


def test_a_missing_day_blanks_every_window_that_holds_it():
    values = np.array([[1.0, NAN, 3, 4, 5]])
    mean, std = lagged_rolling_mean_std(values, [2])[2]
    np.testing.assert_array_equal(mean, [[NAN, NAN, NAN, 3.5, 4.5]])
    np.testing.assert_array_equal(np.isnan(std), [[True, True, True, False, False]])


def test_constant_windows_have_zero_spread_not_rounding_noise():
    values = np.full((1, 50), 7.0)
    assert (lagged_rolling_mean_std(values, [28])[28][1][0, 27:] == 0).all()


def test_lagged_windows_end_lag_days_earlier_for_every_window_size():
    values = np.arange(1.0, 21.0)[None, :]  # 1, 2, ..., 20
    stats = lagged_rolling_mean_std(values, [2, 4], lag_days=5)
    mean_2, _ = stats[2]
    mean_4, std_4 = stats[4]
    assert np.isnan(mean_2[0, :6]).all() and mean_2[0, 6] == 1.5  # days 1 and 2, ending 5 days before day 7
    assert np.isnan(mean_4[0, :8]).all() and mean_4[0, 19] == 13.5  # days 12..15 for day 20
    np.testing.assert_allclose(std_4[0, 19], np.std([12, 13, 14, 15], ddof=1), rtol=1e-6)


def test_trailing_nanmean_skips_missing_values():
    values = np.array([[NAN, 2.0, 4, NAN, 6]])
    means = trailing_nanmeans(values, [None, 2])
    np.testing.assert_allclose(means[None], [[NAN, 2, 3, 3, 4]])
    np.testing.assert_allclose(means[2], [[NAN, 2, 3, 4, 6]])


def _windowed_std(row: np.ndarray, w: int, lag_days: int) -> np.ndarray:
    """Reference: each window's sample standard deviation computed on its own."""
    out = np.full(len(row), np.nan)
    for day in range(lag_days + w - 1, len(row)):
        out[day] = np.std(row[day - lag_days - w + 1 : day - lag_days + 1], ddof=1)
    return out


def test_a_huge_spike_leaves_the_later_windows_spread_intact():
    rng = np.random.default_rng(3)
    values = rng.poisson(3.0, size=(2, 240)).astype(np.float32)
    values[1, 20] = 1_000_000_000  # one mistyped day in the second series only
    stats = lagged_rolling_mean_std(values, [7, 28, 90], lag_days=28)
    for w, (_, std) in stats.items():
        for row in range(2):
            expected = _windowed_std(values[row].astype(np.float64), w, 28)
            np.testing.assert_allclose(std[row], expected, rtol=1e-5, equal_nan=True)
        # Once the spike has left the window, the spread is that of ordinary Poisson days.
        after = 20 + 28 + w
        assert (std[1, after:] > 0).all(), f"roll_std_{w} collapsed to 0 after the spike"


def test_fractional_values_are_summed_window_by_window():
    values = np.array([[0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 1e8 + 0.5, 0.3, 0.1, 0.2]])
    _, std = lagged_rolling_mean_std(values, [3])[3]
    np.testing.assert_allclose(std[0], _windowed_std(values[0], 3, 0), rtol=1e-6, equal_nan=True)


def demand_level(values, window, lag_days=0):
    return demand_level_and_stock_outs(values, window, lag_days)[0]


def stocked_out(values, window):
    return demand_level_and_stock_outs(values, window)[1]


def test_the_demand_level_is_the_trailing_mean_until_a_zero_run_becomes_improbable():
    # Ten selling days (mean 1.3 over the last 7 of them), then 20 days of nothing, then sales again.
    selling = [1, 2, 1, 1, 2, 1, 1, 1, 2, 1]
    row = np.array([selling + [0] * 20 + [3, 3, 3]], dtype=float)
    level = demand_level(row, 7)[0]
    before = np.mean(selling[-7:])
    np.testing.assert_allclose(level[9], before)
    # The window empties as the run goes on; 13 zero days at 1.3 a day are still not improbable.
    assert level[16] == 0 and level[22] == 0
    # From the 14th zero day the run is read as a stock-out: the level is the one before it.
    np.testing.assert_allclose(level[23:30], before)
    # Once sales resume the plain trailing mean takes over again.
    np.testing.assert_allclose(level[30], 3 / 7)
    np.testing.assert_allclose(demand_level(row, 7, 2)[0, 25:32], level[23:30])


def test_a_series_that_never_sold_has_a_level_of_zero_and_no_stock_out():
    row = np.zeros((1, 40))
    assert (demand_level(row, 7)[0, 6:] == 0).all() and not stocked_out(row, 7).any()


def test_stock_out_days_are_judged_by_their_own_past_only():
    selling = [2.0] * 10
    row = np.array([selling + [0] * 20 + [2.0] * 3], dtype=float)
    flagged = stocked_out(row, 7)[0]
    # Day 10 + 13 is the 14th zero day: from there on, and never before or after the run.
    assert flagged.tolist() == [False] * 23 + [True] * 7 + [False] * 3
    # What happens after a day cannot change its flag: cut the data right after it.
    for end in range(11, 33):
        assert (stocked_out(row[:, :end], 7)[0] == flagged[:end]).all()
    # A short run at a low rate is ordinary intermittent demand.
    slow = np.array([[0.2] * 10 + [0] * 20], dtype=float)
    assert not stocked_out(slow, 7).any()
