"""Lags and trailing windows over series-by-day matrices (rows: series, columns: days).

Missing values are NaN. A window needs every one of its days present, as pandas' ``rolling``
does by default, and the standard deviation is the sample one (``ddof=1``). Results are float32;
sums are accumulated in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Running sums of whole numbers are exact in float64 below 2**53.
EXACT_SUM = 2.0**53


def lag(values: np.ndarray, k: int, dtype: type = np.float32) -> np.ndarray:
    """``values`` shifted ``k`` days later along each row; the first ``k`` days are NaN."""
    out: np.ndarray = np.full(values.shape, np.nan, dtype=dtype)
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
    sums to ``S[e + 1] - S[e + 1 - w]``. That difference is exact only while the running sums
    are: for whole numbers whose squares, summed up to the window's end, stay below 2**53. Past
    that (one day of 10**9 units is enough) the digits a later window's variance is made of are
    lost and it comes out 0, so those windows, and windows ending after a value that is not a
    whole number, get their variance summed about the window's own mean. The choice is made per
    window from the days up to its end, never per row: a window's value must not depend on a
    later day (point-in-time), as it did when one late outlier switched the whole row.
    """
    n_rows, n_days = values.shape
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    sums, squares = _cumulative(filled), _cumulative(np.square(filled))
    # No window reaches the last ``lag_days`` days (the forecast horizon's empty days, in the
    # features): missing days there need no count of the days present.
    counts = None if present[:, : n_days - lag_days].all() else _cumulative(present)
    # Running sums are non-decreasing, so once inexact a row stays inexact from that day on; both
    # causes are rare, so only the rows that have one are searched.
    inexact_from = np.full(n_rows, n_days)
    for row in np.flatnonzero(squares[:, -1] >= EXACT_SUM):
        inexact_from[row] = np.searchsorted(squares[row, 1:], EXACT_SUM)
    fractional = filled != np.floor(filled)
    for row in np.flatnonzero(fractional.any(axis=1)):
        inexact_from[row] = min(inexact_from[row], int(np.argmax(fractional[row])))
    inexact = np.flatnonzero(inexact_from < n_days)
    out = {}
    for w in windows:
        mean = np.full((n_rows, n_days), np.nan, dtype=np.float32)
        std = np.full((n_rows, n_days), np.nan, dtype=np.float32)
        start = lag_days + w - 1  # first day whose window lies inside the data
        if start < n_days:
            stop = n_days - lag_days + 1
            # In place, to spare a matrix per step: (squares - total * total / w) / (w - 1).
            total = np.subtract(sums[:, w:stop], sums[:, : stop - w])
            variance = np.subtract(squares[:, w:stop], squares[:, : stop - w])
            variance -= total * total / w
            variance /= w - 1
            # Clipping only guards the last rounding step of total * total / w.
            window_std = np.sqrt(np.clip(variance, 0.0, None, out=variance), out=variance)
            window_mean = np.divide(total, w, out=total)
            for row in inexact:
                # Window k spans days k .. k + w - 1: the first one ending on or after the row's
                # first inexact day, and every later one, is summed directly.
                first = max(int(inexact_from[row]) - (w - 1), 0)
                if first < stop - w:
                    window_std[row, first:] = _direct_std(filled[row, first:], w, stop - w - first)
            if counts is not None:
                incomplete = (counts[:, w:stop] - counts[:, : stop - w]) < w
                window_mean[incomplete] = np.nan
                window_std[incomplete] = np.nan
            mean[:, start:], std[:, start:] = window_mean, window_std
        out[w] = (mean, std)
    return out


def _direct_std(row: np.ndarray, w: int, n_windows: int) -> np.ndarray:
    """Sample standard deviation of the first ``n_windows`` windows of ``w`` days of one row,
    each about its own mean (two passes: no running sum carries a large value forward)."""
    spans = np.lib.stride_tricks.sliding_window_view(row.astype(np.float64), w)[:n_windows]
    deviations = spans - spans.mean(axis=1, keepdims=True)
    return np.sqrt(np.einsum("ij,ij->i", deviations, deviations) / (w - 1))


def trailing_nanmeans(values: np.ndarray, windows: Sequence[int | None]) -> dict[int | None, np.ndarray]:
    """For each of ``windows``, the mean of the present values among the days of that window ending
    on each day (None: all earlier days), from one pass of running sums."""
    present = ~np.isnan(values)
    total, count = _cumulative(np.where(present, values, 0.0)), _cumulative(present)
    out = {}
    for window in windows:
        if window is not None:
            keep = np.maximum(np.arange(1, values.shape[1] + 1) - window, 0)
            in_total, in_count = total[:, 1:] - total[:, keep], count[:, 1:] - count[:, keep]
        else:
            in_total, in_count = total[:, 1:], count[:, 1:]
        with np.errstate(invalid="ignore", divide="ignore"):
            out[window] = np.where(in_count > 0, in_total / in_count, np.nan)
    return out


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


# A zero run is read as a stock-out once a Poisson demand at the rate before it would produce it
# with probability below 1 in 1000 (rate x days >= ln 1000), and it has lasted at least two weeks.
STOCKOUT_SURPRISE = float(np.log(1000.0))
STOCKOUT_MIN_DAYS = 14


def demand_level_and_stock_outs(values: np.ndarray, window: int, lag_days: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The demand level of each day and whether the day is a likely stock-out, in one pass.

    Level: units per day over the ``window`` days ending ``lag_days`` before each day, read as
    demand. It is the plain trailing mean, except after a run of zero sales that has become
    improbably long for a series that was selling (a likely stock-out or delisting): there it is
    the mean of the ``window`` days before the run, since zeros during a stock-out say nothing
    about demand once the shelf is restocked. NaN where the window reaches a missing day or the
    start of the data.

    Stock-out: a day of zero sales ending such a run (not lagged). Judged by the day's own history
    only, so a model trained before a cutoff never learns from sales after it, as a run's full
    length, known in hindsight, would make it.
    """
    n_rows, n_days = values.shape
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    sums = _cumulative(filled)
    day = np.arange(n_days)
    last_sale = np.maximum.accumulate(np.where(filled > 0, day, -1), axis=1)
    run = day - last_sale  # zero days ending on each day (0 on a sale)
    # The rate before a run matters only once the run is long enough to be judged.
    rows, days = np.nonzero((run >= STOCKOUT_MIN_DAYS) & (last_sale >= 0))
    run_start = last_sale[rows, days] + 1
    first = np.maximum(run_start - window, 0)
    rate = (sums[rows, run_start] - sums[rows, first]) / (run_start - first)
    judged = run[rows, days] * rate >= STOCKOUT_SURPRISE
    improbable = np.zeros((n_rows, n_days), dtype=bool)
    improbable[rows[judged], days[judged]] = True
    rate_before = np.zeros((n_rows, n_days))
    rate_before[rows[judged], days[judged]] = rate[judged]

    level = np.full((n_rows, n_days), np.nan)
    if window <= n_days:
        # The last ``lag_days`` levels are dropped by the lag: missing days there (the forecast
        # horizon's, in the features) need no count of the days present.
        complete: np.ndarray | bool = True
        if not present[:, : n_days - lag_days].all():
            counts = _cumulative(present)
            complete = (counts[:, window:] - counts[:, : n_days + 1 - window]) == window
        plain = (sums[:, window:] - sums[:, : n_days + 1 - window]) / window
        tail = slice(window - 1, None)
        level[:, tail] = np.where(complete, np.where(improbable[:, tail], rate_before[:, tail], plain), np.nan)
    return lag(level, lag_days), present & (filled == 0) & improbable
