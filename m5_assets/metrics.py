"""Forecast accuracy as the M5 competition scored it, and the usual point metrics.

WRMSSE: every series of the 12 aggregation levels (total down to item-store) is scored by its
root mean squared error over the horizon, scaled by the mean squared one-step naive error of
its own history from its first non-zero sale; each level's series are weighted by their share
of dollar sales over the last 28 days before the horizon; the total is the mean of the 12
weighted level scores. One place for this logic: model validation, forecast scoring and the
dashboard all call it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import sparse

from m5_assets.tables import LEVELS  # noqa: F401 (the hierarchy is declared with the tables)

WEIGHT_DAYS = 28


def aggregation(series: pd.DataFrame, keys: tuple[str, ...]) -> tuple[sparse.csr_matrix, pd.DataFrame]:
    """Sparse 0/1 matrix (groups x series) summing bottom series into one level, and its groups."""
    if not keys:
        codes, groups = np.zeros(len(series), dtype=np.int64), pd.DataFrame(index=[0])
    else:
        frame = series[list(keys)].astype(str)
        groups = frame.drop_duplicates().sort_values(list(keys)).reset_index(drop=True)
        codes = frame.merge(groups.reset_index(), on=list(keys), how="left")["index"].to_numpy()
    matrix = sparse.csr_matrix((np.ones(len(series)), (codes, np.arange(len(series)))), shape=(len(groups), len(series)))
    return matrix, groups


def naive_scale(history: np.ndarray) -> np.ndarray:
    """Mean squared one-step change of each row, counted from its first non-zero value.

    NaN where a row has fewer than two values from its first sale on (no scale can be formed).
    """
    started = np.cumsum(history != 0, axis=1) > 0
    steps = np.diff(history, axis=1) ** 2
    counted = started[:, :-1]  # a change counts when the earlier day is on or after the first sale
    count = counted.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (steps * counted).sum(axis=1) / count, np.nan)


@dataclass(frozen=True)
class WRMSSE:
    """The total score, the score of each level, and every aggregated series' RMSSE and weight."""

    total: float
    levels: pd.DataFrame  # level, name, series, score
    series: pd.DataFrame  # level, keys..., weight, scale, rmsse


def wrmsse(
    hierarchy: pd.DataFrame,
    history: np.ndarray,
    history_prices: np.ndarray,
    actual: np.ndarray,
    forecast: np.ndarray,
) -> WRMSSE:
    """Score ``forecast`` against ``actual`` (series x horizon days) the way M5 did.

    ``hierarchy`` has one row per bottom series (item_id, dept_id, cat_id, store_id, state_id),
    aligned with the rows of ``history`` (units of every day before the horizon) and
    ``history_prices`` (each of those days' price, NaN where none); the weights come from the last
    28 of those days.
    """
    if not (len(hierarchy) == len(history) == len(actual) == len(forecast)) or actual.shape != forecast.shape:
        raise ValueError("hierarchy, history, actual and forecast must describe the same series and horizon")
    last_units, last_prices = history[:, -WEIGHT_DAYS:], history_prices[:, -WEIGHT_DAYS:]
    bottom_dollars = np.nansum(last_units * last_prices, axis=1)
    rows, level_rows = [], []
    for number, name, keys in LEVELS:
        matrix, groups = aggregation(hierarchy, keys)
        scale = naive_scale(matrix @ history)
        error = ((matrix @ actual - matrix @ forecast) ** 2).mean(axis=1)
        dollars = matrix @ bottom_dollars
        weight = dollars / dollars.sum() if dollars.sum() > 0 else np.zeros(len(groups))
        with np.errstate(invalid="ignore", divide="ignore"):
            rmsse = np.sqrt(error / scale)
        # A series with no sales to scale by has no dollar sales either: it carries no weight.
        scored = np.isfinite(rmsse)
        score = float(np.sum(weight[scored] * rmsse[scored]))
        level_rows.append({"level": number, "name": name, "series": len(groups), "score": score})
        rows.append(groups.assign(level=number, weight=weight, scale=scale, rmsse=rmsse))
    levels = pd.DataFrame(level_rows)
    return WRMSSE(total=float(levels["score"].mean()), levels=levels, series=pd.concat(rows, ignore_index=True))


def point_metrics(actual: np.ndarray, forecast: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and bias (mean of forecast minus actual) over every series-day."""
    error = forecast - actual
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "bias": float(np.mean(error)),
    }
