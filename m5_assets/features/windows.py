"""Lags and trailing windows over series-by-day matrices (rows: series, columns: days).

Missing values are NaN. Windows need every day of the window present, as pandas' ``rolling``
does by default, and the standard deviation uses ``ddof=1``.
"""

from __future__ import annotations

import numpy as np


def lag(values: np.ndarray, k: int) -> np.ndarray:
    """``values`` shifted ``k`` days later along each row; the first ``k`` days are NaN."""
    out = np.full(values.shape, np.nan, dtype=np.float64)
    if k < values.shape[1]:
        out[:, k:] = values[:, : values.shape[1] - k]
    return out


def _window_sums(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Trailing sums of x, x^2 and of present days over ``window`` days, per day."""
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)

    def trailing(a: np.ndarray) -> np.ndarray:
        cumulative = np.zeros((a.shape[0], a.shape[1] + 1))
        np.cumsum(a, axis=1, out=cumulative[:, 1:])
        out = np.full(a.shape, np.nan)
        out[:, window - 1 :] = cumulative[:, window:] - cumulative[:, :-window]
        return out

    return trailing(filled), trailing(filled * filled), trailing(present.astype(np.float64))


def rolling_mean_std(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation over the ``window`` days ending on each day.

    Both are NaN unless every day of the window is present.
    """
    total, squares, count = _window_sums(values, window)
    full = count == window
    variance = (squares - total * total / window) / (window - 1)
    # Sums of integers are exact in float64; clipping only guards the last rounding step.
    return np.where(full, total / window, np.nan), np.where(full, np.sqrt(np.clip(variance, 0.0, None)), np.nan)


def trailing_nanmean(values: np.ndarray, window: int | None) -> np.ndarray:
    """Mean of the present values among the ``window`` days ending on each day (None: all earlier)."""
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    cumulative_total = np.cumsum(filled, axis=1)
    cumulative_count = np.cumsum(present, axis=1).astype(np.float64)
    total, count = cumulative_total.copy(), cumulative_count.copy()
    if window is not None and window < values.shape[1]:
        total[:, window:] -= cumulative_total[:, :-window]
        count[:, window:] -= cumulative_count[:, :-window]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)
