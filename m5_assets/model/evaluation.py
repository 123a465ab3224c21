"""Score the model and every baseline on the same validation window with the shared metrics."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import HORIZON
from m5_assets.grid import by_text
from m5_assets.hierarchy import calibrate
from m5_assets.intervals import Calibration
from m5_assets.metrics import WRMSSE, point_metrics, wrmsse_of_each
from m5_assets.model.baselines import BASELINES

MODEL = "issued"  # what forecasts issue: the model, a baseline, or a blend chosen on validation
PURE_MODEL = "lightgbm"
LEVEL = "demand_level"


@dataclass(frozen=True)
class ValidationScores:
    table: pd.DataFrame  # one row per method: wrmsse, rmse, mae, bias
    per_level: pd.DataFrame  # level x method WRMSSE
    by_method: dict[str, WRMSSE]

    def wrmsse(self, method: str) -> float:
        return float(self.table.loc[method, "wrmsse"])


def forecast_matrix(inputs: FeatureInputs, predictions: pd.DataFrame, start: dt.date, days: int) -> np.ndarray:
    """Series x day matrix of predictions (id, date, prediction); rows it lacks forecast 0 units."""
    matrix = np.zeros((len(inputs.series), days))
    col = (pd.to_datetime(predictions["date"]) - pd.Timestamp(start)).dt.days.to_numpy()
    matrix[series_rows(inputs.series["id"], predictions["id"]), col] = predictions["prediction"].to_numpy()
    return matrix


def series_rows(series_ids: pd.Series, ids: pd.Series) -> np.ndarray:
    """Row of each of ``ids`` in ``series_ids``; a KeyError names the ones it lacks."""
    rows = by_text(ids, pd.Index(series_ids.astype(str)).get_indexer)
    if (rows < 0).any():
        raise KeyError(f"not among the series: {sorted(set(ids[rows < 0].astype(str)))[:5]}")
    return rows


def window_origin(inputs: FeatureInputs, cutoff: dt.date) -> int:
    """Column of the window's first day; the window and 28 days of history before it must have sales."""
    start = cutoff - dt.timedelta(days=HORIZON)
    origin = int(np.searchsorted(inputs.dates.to_numpy(), np.datetime64(start)))
    if origin < 2 * HORIZON or origin + HORIZON > inputs.n_sales_days:
        raise ValueError(
            f"cutoff {cutoff}: the validation window needs sales on all 28 days before it and history before that"
        )
    return origin


def calibrate_intervals(inputs: FeatureInputs, cutoff: dt.date, predictions: pd.DataFrame) -> Calibration:
    """Interval calibration from the model's errors on the 28 days before ``cutoff``."""
    return calibrate_pooled(
        inputs, {cutoff: forecast_matrix(inputs, predictions, cutoff - dt.timedelta(days=HORIZON), HORIZON)}
    )


def calibrate_pooled(
    inputs: FeatureInputs, forecasts: dict[dt.date, np.ndarray], bases: dict[dt.date, np.ndarray] | None = None
) -> Calibration:
    """Interval calibration from the errors of each window's forecast (by cutoff: series x the
    28 days before it), pooled; the bottom level's scores scaled by ``bases`` when given."""
    return calibrate(
        inputs.series,
        np.hstack(list(forecasts.values())),
        np.hstack([validation_window(inputs, c)[2] for c in forecasts]),
        np.hstack([released_in(inputs, c) for c in forecasts]),
        np.hstack([bases[c] for c in forecasts]) if bases is not None else None,
    )


def released_in(inputs: FeatureInputs, cutoff: dt.date) -> np.ndarray:
    """Which series-days of the 28 before ``cutoff`` were released (had a price): the only ones
    the product forecasts."""
    origin = window_origin(inputs, cutoff)
    return ~np.isnan(inputs.price[:, origin : origin + HORIZON])


def validation_window(inputs: FeatureInputs, cutoff: dt.date) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """History, its prices and the actuals of the 28 days before ``cutoff``."""
    origin = window_origin(inputs, cutoff)
    history = inputs.units[:, :origin].astype(np.float64)
    return history, inputs.price[:, :origin], inputs.units[:, origin : origin + HORIZON].astype(np.float64)


def score_validation(
    inputs: FeatureInputs, cutoff: dt.date, predictions: pd.DataFrame, others: dict[str, pd.DataFrame] | None = None
) -> ValidationScores:
    """WRMSSE and point metrics of the issued forecast (``predictions``: id, date, prediction),
    the ``others`` given the same way, and the baselines over the 28 days before ``cutoff``."""
    start = cutoff - dt.timedelta(days=HORIZON)
    history, prices, actual = validation_window(inputs, cutoff)
    hierarchy = inputs.series
    forecasts = {MODEL: forecast_matrix(inputs, predictions, start, HORIZON)}
    forecasts |= {name: forecast_matrix(inputs, frame, start, HORIZON) for name, frame in (others or {}).items()}
    forecasts |= {name: baseline(history, HORIZON) for name, baseline in BASELINES.items()}
    by_method = wrmsse_of_each(hierarchy, history, prices, actual, forecasts)
    table = pd.DataFrame(
        {name: {"wrmsse": score.total, **point_metrics(actual, forecasts[name])} for name, score in by_method.items()}
    ).T
    per_level = pd.DataFrame({name: score.levels.set_index("name")["score"] for name, score in by_method.items()})
    return ValidationScores(table=table, per_level=per_level, by_method=by_method)
