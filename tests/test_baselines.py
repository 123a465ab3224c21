import numpy as np
import pytest

from m5_assets.model.baselines import exponential_smoothing, moving_average, naive, seasonal_naive

HISTORY = np.array([[1.0, 2, 3, 4, 5, 6, 7, 8, 9], [0, 0, 0, 0, 0, 0, 0, 0, 4]])


def test_naive_repeats_the_last_day():
    np.testing.assert_array_equal(naive(HISTORY, 3), [[9, 9, 9], [4, 4, 4]])


def test_seasonal_naive_repeats_the_last_week():
    np.testing.assert_array_equal(seasonal_naive(HISTORY, 9)[0], [3, 4, 5, 6, 7, 8, 9, 3, 4])


def test_moving_average_is_the_mean_of_the_window():
    np.testing.assert_allclose(moving_average(HISTORY, 2, window=4), [[7.5, 7.5], [1, 1]])


def test_exponential_smoothing_picks_the_weight_that_fits_best():
    # A constant series is forecast exactly, whatever the weight.
    assert (exponential_smoothing(np.full((1, 30), 3.0), 5) == 3.0).all()
    # With one weight to choose from the level follows the recursion by hand: 0 -> 5 -> 7.5.
    np.testing.assert_allclose(exponential_smoothing(np.array([[0.0, 10, 10]]), 2, grid=np.array([0.5])), [[7.5, 7.5]])
    # A step series is followed faster by a larger weight, so the chosen forecast is near the new level.
    step = np.array([[0.0] * 20 + [10.0] * 20])
    assert exponential_smoothing(step, 1)[0, 0] == pytest.approx(10.0, abs=0.01)


def test_exponential_smoothing_matches_the_recursion_series_by_series():
    rng = np.random.default_rng(3)
    history = rng.poisson(rng.gamma(0.5, 2.0, (40, 1)), (40, 60)).astype(float)
    grid = np.array([0.1, 0.3, 0.3, 0.6])  # a repeated weight ties: the first is kept
    expected = []
    for row in history:
        fits = []
        for alpha in grid:
            level, error = row[0], 0.0
            for value in row[1:]:
                error += (value - level) ** 2
                level += alpha * (value - level)
            fits.append((error, level))
        expected.append(min(fits, key=lambda fit: fit[0])[1])
    np.testing.assert_allclose(
        exponential_smoothing(history, 3, grid=grid), np.repeat(np.array(expected)[:, None], 3, 1)
    )
