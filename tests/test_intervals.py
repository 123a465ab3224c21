"""Interval calibration on hand-made samples: normalised bins, symmetric aggregates, old JSON."""

import json

import numpy as np
import pandas as pd
import pytest

from m5_assets.intervals import Calibration, bound_columns, calibrate_level, coverage


def _heteroscedastic(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Forecasts skewed as sales are (most small, a long tail of large ones), actuals whose
    spread grows with the root of the forecast."""
    forecast = np.exp(rng.normal(0.5, 2.0, n))
    return forecast, np.maximum(forecast + np.sqrt(forecast) * rng.normal(0.0, 1.5, n), 0.0)


def test_normalised_bins_reach_nominal_coverage_on_held_out_draws_also_for_the_largest_forecasts():
    rng = np.random.default_rng(7)
    calibration = Calibration(calibrate_level(12, *_heteroscedastic(rng, 4000)))
    forecast, actual = _heteroscedastic(rng, 100000)
    bounds = calibration.bounds(12, forecast)
    # The largest 2 % lie deep in the open-ended top bin (from about 10 units to thousands): one
    # offset for the whole bin would under-cover them.
    largest = forecast >= np.quantile(forecast, 0.98)
    for rows in (slice(None), largest):
        got = coverage(actual[rows], {k: v[rows] for k, v in bounds.items()})
        for level in (50, 80, 95):
            assert abs(got[level] - level) <= 3, f"{level} % intervals cover {got[level]:.1f} %"


def test_sigma_is_the_spread_of_the_errors_in_units_of_the_forecast():
    rng = np.random.default_rng(3)
    calibration = Calibration(calibrate_level(12, *_heteroscedastic(rng, 20000)))
    forecast, actual = _heteroscedastic(rng, 20000)
    sigma = calibration.sigma(12, forecast)
    big, small = forecast > 100, forecast < 2
    # Standardised by their own sigma, the errors of small and large forecasts spread alike.
    for rows in (big, small):
        assert np.std((actual - forecast)[rows] / sigma[rows]) == pytest.approx(1.0, abs=0.1)
    assert sigma[big].mean() > 5 * sigma[small].mean()


def test_an_aggregate_interval_is_symmetric_about_the_forecast_whatever_the_windows_bias():
    rng = np.random.default_rng(5)
    forecast = rng.uniform(900, 1100, 84)
    biased = forecast + 60 + rng.normal(0, 40, 84)  # the windows' fits forecast low
    calibration = Calibration(calibrate_level(1, forecast, biased, symmetric=True))
    new = np.array([1000.0])
    bounds = calibration.bounds(1, new)
    for level in (50, 80, 95):
        lo, hi = (bounds[c][0] for c in bound_columns(level))
        assert hi - new[0] == pytest.approx(new[0] - lo) and lo < new[0] < hi
    assert bounds["hi_50"][0] - new[0] > 40  # wide enough to hold the windows' errors, bias and all


def test_a_calibration_stored_before_normalised_scores_loads_and_bounds_as_it_did():
    legacy = [
        {
            "level": 12,
            "bin": 0,
            "upper_edge": 1.0,
            "rows": 600,
            "lo_50": -0.5,
            "hi_50": 0.5,
            "lo_80": -1.0,
            "hi_80": 1.0,
            "lo_95": -1.0,
            "hi_95": 2.0,
        },
        {
            "level": 12,
            "bin": 1,
            "upper_edge": None,
            "rows": 600,
            "lo_50": -2.0,
            "hi_50": 2.0,
            "lo_80": -4.0,
            "hi_80": 5.0,
            "lo_95": -6.0,
            "hi_95": 8.0,
        },
    ]
    calibration = Calibration.from_json(json.dumps(legacy))
    forecast = np.array([0.5, 10.0, 100.0])
    bounds = calibration.bounds(12, forecast)
    # Raw residual quantiles: the offsets are added unscaled, the top bin's the same at 10 and 100.
    assert bounds["hi_80"].tolist() == pytest.approx([1.5, 15.0, 105.0])
    assert bounds["lo_80"].tolist() == pytest.approx([0.0, 6.0, 96.0])
    sigma = calibration.sigma(12, forecast)
    assert sigma[1] == sigma[2] > sigma[0] > 0
    # And it round-trips in its new form.
    again = Calibration.from_json(calibration.to_json())
    assert again.bounds(12, forecast)["hi_95"].tolist() == pytest.approx(bounds["hi_95"].tolist())


def test_a_new_calibration_round_trips_through_json():
    rng = np.random.default_rng(11)
    calibration = Calibration(
        pd.concat(
            [
                calibrate_level(12, *_heteroscedastic(rng, 3000)),
                calibrate_level(1, *_heteroscedastic(rng, 84), symmetric=True),
            ]
        )
    )
    loaded = Calibration.from_json(calibration.to_json())
    forecast = np.array([0.0, 3.0, 50.0, 700.0])
    for level in (1, 12):
        assert loaded.sigma(level, forecast).tolist() == pytest.approx(calibration.sigma(level, forecast).tolist())
        for name, values in calibration.bounds(level, forecast).items():
            assert loaded.bounds(level, forecast)[name].tolist() == pytest.approx(values.tolist())


def test_a_zero_forecast_takes_the_spread_of_its_own_kind_when_scaled_by_the_series_level():
    """A forecast of 0 is issued for a dead series and for a busy one just back from a stock-out
    (real_280: HOBBIES_2_025_CA_4 was planned 37 units of stock for a best day of 2)."""
    rng = np.random.default_rng(5)
    n = 4000
    forecast = np.zeros(2 * n)
    actual = np.concatenate([np.where(rng.random(n) < 0.02, 1.0, 0.0), rng.poisson(15.0, n).astype(float)])
    level = np.concatenate([np.full(n, 0.02), np.full(n, 15.0)])
    pooled = Calibration(calibrate_level(12, forecast, actual))
    scaled = Calibration(calibrate_level(12, forecast, actual, base=np.maximum(forecast, level)))
    dead, busy = np.zeros(1), np.zeros(1)
    # Scaled by the forecast alone every zero forecast gets one spread, the busy kind's mostly.
    assert pooled.sigma(12, dead)[0] == pooled.sigma(12, busy)[0] > 5
    # Scaled by the level, the dead series' spread is a fraction of a unit, the busy one's stays.
    small = scaled.sigma(12, dead, base=np.array([0.02]))[0]
    assert small < 2.5 and small < pooled.sigma(12, dead)[0] / 3
    assert scaled.sigma(12, busy, base=np.array([15.0]))[0] > 3 * small
    # And the busy kind's 95 % interval still covers it.
    bounds = scaled.bounds(12, np.zeros(n), base=np.full(n, 15.0))
    assert np.mean((actual[n:] >= bounds["lo_95"]) & (actual[n:] <= bounds["hi_95"])) > 0.9


def _intermittent(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Slow series as most of M5's are: sold on 30 % of days, 1 to 4 units when sold."""
    forecast = rng.uniform(0.5, 0.9, n)
    sold = rng.random(n) < 0.3
    return forecast, np.where(sold, rng.integers(1, 5, n), 0).astype(float)


def test_an_interval_of_a_series_that_mostly_sells_nothing_starts_at_0_and_covers_what_it_says():
    rng = np.random.default_rng(13)
    calibration = Calibration(calibrate_level(12, *_intermittent(rng, 6000)))
    forecast, actual = _intermittent(rng, 100000)
    bounds = calibration.bounds(12, forecast)
    got = coverage(actual, bounds)
    for level in (80, 95):
        assert abs(got[level] - level) <= 2, f"{level} % intervals cover {got[level]:.1f} %"
    assert all((bounds[f"lo_{level}"] == 0).all() for level in (50, 80, 95))
    # 70 % of days sell nothing: the 50 % interval is [0, 0], the narrowest there is (it holds
    # those 70 %), and the 80 % one ends lower than an interval with equal tails (at the 90 %
    # quantile) would.
    assert (bounds["hi_50"] == 0).all() and abs(got[50] - 100 * np.mean(actual == 0)) < 1e-9
    central_hi_80 = np.quantile((actual - forecast) / np.sqrt(forecast + 1.0), 0.9)
    assert (bounds["hi_80"] < forecast + central_hi_80 * np.sqrt(forecast + 1.0)).mean() > 0.99
    # It survives the JSON the run stores it as.
    loaded = Calibration.from_json(calibration.to_json()).bounds(12, forecast)
    assert all(np.allclose(loaded[name], values) for name, values in bounds.items())
