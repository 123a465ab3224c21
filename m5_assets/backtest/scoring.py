"""Score every method's forecast of one backtest origin with the project's own metrics.

Per method: WRMSSE over the 12 levels, mean RMSSE over the item-store series, bias as
sum(forecast - actual) / sum(actual), and, for methods that issue intervals, the coverage and
mean width of each interval at levels 1 (total), 3 (store), 10 (item) and 12 (item x store).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import HORIZON
from m5_assets.forecast.accuracy import mean_bottom_rmsse
from m5_assets.hierarchy import BOTTOM_LEVEL, level_sums
from m5_assets.intervals import COVERAGES, Calibration, bound_columns, coverage
from m5_assets.metrics import wrmsse_of_each
from m5_assets.model.evaluation import released_in, validation_window

INTERVAL_LEVELS = (1, 3, 10, 12)


def origin_window(inputs: FeatureInputs, origin: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """History, its prices, the actuals of the 28 days from ``origin``, and which of those
    series-days were released (had a price): the product forecasts only those."""
    cutoff = origin + dt.timedelta(days=HORIZON)
    history, prices, actual = validation_window(inputs, cutoff)
    return history, prices, actual, released_in(inputs, cutoff)


def interval_figures(
    hierarchy: pd.DataFrame,
    forecast: np.ndarray,
    actual: np.ndarray,
    released: np.ndarray,
    calibration: Calibration,
    bottom_bounds: dict[str, np.ndarray] | None = None,
) -> dict[str, float]:
    """Coverage (percent) and mean width of each interval at ``INTERVAL_LEVELS``; the bottom
    level's bounds as issued (``bottom_bounds``: series x 28 per bound column) when given."""
    out = {}
    summed = {s.level: s.values for s in level_sums(hierarchy, np.hstack([forecast, actual]))}
    for level in INTERVAL_LEVELS:
        values = summed[level]
        f, a = values[:, :HORIZON], values[:, HORIZON:]
        if level == BOTTOM_LEVEL:
            f, a = f[released], a[released]
        if level == BOTTOM_LEVEL and bottom_bounds is not None:
            bounds = {name: values[released] for name, values in bottom_bounds.items()}
        else:
            bounds = calibration.bounds(level, np.ravel(f))
        covered = coverage(np.ravel(a), bounds)
        for c in COVERAGES:
            lo, hi = bound_columns(c)
            out[f"coverage_{c}_level_{level}"] = covered[c]
            out[f"width_{c}_level_{level}"] = float(np.mean(bounds[hi] - bounds[lo]))
    return out


def score_origin(
    inputs: FeatureInputs,
    origin: dt.date,
    forecasts: dict[str, np.ndarray],
    intervals: dict[str, Calibration] | None = None,
    issued_bounds: dict[str, dict[str, np.ndarray]] | None = None,
) -> list[dict]:
    """One row per method: the origin's scores of its series x 28-day ``forecasts``, with
    interval figures for the methods in ``intervals`` (bottom bounds as issued, by method, from
    ``issued_bounds`` where given)."""
    history, prices, actual, released = origin_window(inputs, origin)
    scores = wrmsse_of_each(inputs.series, history, prices, actual, forecasts)
    total = actual.sum()
    rows = []
    for method, forecast in forecasts.items():
        score = scores[method]
        row = {
            "origin": origin,
            "method": method,
            "wrmsse": score.total,
            "mean_rmsse": mean_bottom_rmsse(score),
            "bias_pct": float(100 * (forecast - actual).sum() / total) if total > 0 else float("nan"),
            "forecast_units": float(forecast.sum()),
            "actual_units": float(total),
        }
        row |= {f"wrmsse_level_{r.level}": float(r.score) for r in score.levels.itertuples()}
        if intervals and method in intervals:
            row |= interval_figures(
                inputs.series, forecast, actual, released, intervals[method], (issued_bounds or {}).get(method)
            )
        rows.append(row)
    return rows
