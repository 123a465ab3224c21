"""Lags and trailing windows over series-by-day matrices (rows: series, columns: days).

Missing values are NaN. A window needs every one of its days present, as pandas' ``rolling``
does by default, and the standard deviation is the sample one (``ddof=1``). Results are float32;
sums are accumulated in float64, where sums of counts are exact.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def lag(values: np.ndarray, k: int, dtype: type = np.float32) -> np.ndarray:
    """``values`` shifted ``k`` days later along each row; the first ``k`` days are NaN."""
    out = np.full(values.shape, np.nan, dtype=dtype)
    if k < values.shape[1]:
        out[:, k:] = values[:, : values.shape[1] - k]
    return out


def _cumulative(a: np.ndarray) -> np.ndarray:
    """Running sums along each row with a leading zero column, in float64."""
    out = np.zeros((a.shape[0], a.shape[1] + 1))
    np.cumsum(a, axis=1, dtype=np.float64, out=out[:, 1:])
    return out


def lagged_rolling_mean_std(
    values: np.ndarray, windows: Sequence[int], lag_days: int = 0
) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Mean and sample standard deviation over the ``w`` days ending ``lag_days`` before each day.

    One pass of running sums serves every window: the window of ``w`` days ending on day ``e``
    sums to ``S[e + 1] - S[e + 1 - w]``.
    """
    n_rows, n_days = values.shape
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    sums, squares = _cumulative(filled), _cumulative(filled * filled)
    counts = None if present.all() else _cumulative(present)
    out = {}
    for w in windows:
        mean = np.full((n_rows, n_days), np.nan, dtype=np.float32)
        std = np.full((n_rows, n_days), np.nan, dtype=np.float32)
        start = lag_days + w - 1  # first day whose window lies inside the data
        if start < n_days:
            stop = n_days - lag_days + 1
            total = sums[:, w:stop] - sums[:, : stop - w]
            variance = (squares[:, w:stop] - squares[:, : stop - w] - total * total / w) / (w - 1)
            # Sums of integers are exact in float64; clipping only guards the last rounding step.
            window_mean, window_std = total / w, np.sqrt(np.clip(variance, 0.0, None))
            if counts is not None:
                incomplete = (counts[:, w:stop] - counts[:, : stop - w]) < w
                window_mean[incomplete] = np.nan
                window_std[incomplete] = np.nan
            mean[:, start:], std[:, start:] = window_mean, window_std
        out[w] = (mean, std)
    return out


def trailing_nanmean(values: np.ndarray, window: int | None) -> np.ndarray:
    """Mean of the present values among the ``window`` days ending on each day (None: all earlier)."""
    present = ~np.isnan(values)
    total, count = _cumulative(np.where(present, values, 0.0)), _cumulative(present)
    if window is not None:
        keep = np.maximum(np.arange(1, values.shape[1] + 1) - window, 0)
        total, count = total[:, 1:] - total[:, keep], count[:, 1:] - count[:, keep]
    else:
        total, count = total[:, 1:], count[:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def trailing_nanmax(values: np.ndarray, window: int) -> np.ndarray:
    """Largest present value among the ``window`` days ending on each day; NaN if none is present.

    Maxima over spans of 1, 2, 4, ... days are built by doubling, and two overlapping spans of
    the largest power of two cover any window: a few whole-matrix passes instead of a loop per day.
    """
    if window < 1:
        raise ValueError(f"window must be at least one day, not {window}")
    # float64, as the prices it divides: rounded to float32, a maximum equal to the price could
    # fall just below it and put price / maximum above 1.
    span, spanned = values.astype(np.float64, copy=True), 1
    while 2 * spanned <= window:
        span = np.fmax(span, lag(span, spanned, np.float64))
        spanned *= 2
    return np.fmax(span, lag(span, window - spanned, np.float64)) if window > spanned else span
