"""Simple forecasts a model must beat, issued from a series x day history (last column = last day).

Each returns a series x horizon matrix of forecasts for the ``horizon`` days after the history.
"""

from __future__ import annotations

import numpy as np

SMOOTHING_GRID = np.linspace(0.02, 0.5, 25)


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """The last observed value, repeated."""
    return np.repeat(history[:, -1:], horizon, axis=1).astype(np.float64)


def seasonal_naive(history: np.ndarray, horizon: int, season: int = 7) -> np.ndarray:
    """The value one season earlier: the last week, repeated."""
    last_season = history[:, -season:].astype(np.float64)
    return last_season[:, np.arange(horizon) % season]


def moving_average(history: np.ndarray, horizon: int, window: int = 28) -> np.ndarray:
    """The mean of the last ``window`` days, flat."""
    return np.repeat(history[:, -window:].mean(axis=1, keepdims=True), horizon, axis=1)


def exponential_smoothing(history: np.ndarray, horizon: int, grid: np.ndarray = SMOOTHING_GRID) -> np.ndarray:
    """Simple exponential smoothing, flat; each series takes the smoothing weight from ``grid``
    with the smallest in-sample one-step squared error (the level starts at the first value;
    a tie keeps the smaller weight).
    """
    # Day-major, so each day's values are contiguous, and every weight smoothed in the same pass:
    # series by series in row order, the loop read a full-scale history 1,900 times with a stride
    # of a whole row (14 s for a model's validation window).
    values = np.asfortranarray(history, dtype=np.float64)
    n_series = values.shape[0]
    weights = np.asarray(grid, dtype=np.float64)[:, None]
    level = np.repeat(values[None, :, 0], len(weights), axis=0)  # weights x series
    error = np.zeros_like(level)
    step = np.empty_like(level)
    for t in range(1, values.shape[1]):
        np.subtract(values[:, t], level, out=step)
        error += step**2
        step *= weights
        level += step
    best = np.argmin(error, axis=0)
    return np.repeat(level[best, np.arange(n_series)][:, None], horizon, axis=1)


BASELINES = {
    "naive": naive,
    "seasonal_naive": seasonal_naive,
    "moving_average_28": moving_average,
    "exponential_smoothing": exponential_smoothing,
}
