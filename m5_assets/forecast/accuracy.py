"""Score an issued forecast once all its days have actuals, next to seasonal naive and the 28-day
mean issued the same day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd

from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import HORIZON
from m5_assets.intervals import COVERAGES, coverage
from m5_assets.hierarchy import BOTTOM_LEVEL
from m5_assets.metrics import WRMSSE
from m5_assets.reader import scorable
from m5_assets.model.evaluation import MODEL, score_validation, window_origin

DEGRADATION_LIMIT = 0.10  # WRMSSE may rise this much above its trailing mean before a warning
TRAILING_PARTITIONS = 28
HISTORY_COLUMNS = ("forecast_date", "wrmsse")  # what warnings_against_history reads of earlier partitions
COVERAGE_TOLERANCE = 5.0  # points of 95 % interval coverage


def actuals_complete(inputs: FeatureInputs, day: dt.date) -> bool:
    """Whether every one of the forecast's 28 days has sales."""
    return scorable(day, inputs.dates[inputs.n_sales_days - 1].date())


def score_forecast(inputs: FeatureInputs, day: dt.date, bottom: pd.DataFrame) -> dict:
    """One row of accuracy figures for the forecast issued on ``day`` (its bottom-level rows)."""
    if not actuals_complete(inputs, day):
        last = inputs.dates[inputs.n_sales_days - 1].date()
        raise ValueError(f"forecast {day}: actuals end on {last}, before its last day {day + dt.timedelta(days=HORIZON - 1)}")
    predictions = bottom[["id", "date", "forecast"]].rename(columns={"forecast": "prediction"})
    scores = score_validation(inputs, day + dt.timedelta(days=HORIZON), predictions)
    model, naive = scores.table.loc[MODEL], scores.table.loc["seasonal_naive"]
    mean_rmsse = {m: _mean_bottom_rmsse(scores.by_method[m]) for m in (MODEL, "moving_average_28")}

    row = pd.Series(np.arange(len(inputs.series)), index=inputs.series["id"].astype(str)).loc[bottom["id"]].to_numpy()
    origin = window_origin(inputs, day + dt.timedelta(days=HORIZON))
    actual = inputs.units[row, origin + bottom["horizon"].to_numpy() - 1].astype(np.float64)
    covered = coverage(actual, {c: bottom[c].to_numpy() for c in bottom.columns if c.startswith(("lo_", "hi_"))})

    out = {
        "forecast_date": day,
        "model_version": str(bottom["model_version"].iloc[0]),
        "wrmsse": float(model["wrmsse"]),
        "seasonal_naive_wrmsse": float(naive["wrmsse"]),
        "rmse": float(model["rmse"]),
        "mae": float(model["mae"]),
        "bias": float(model["bias"]),
        "seasonal_naive_mae": float(naive["mae"]),
        "bias_pct": float(100 * model["bias"] / actual.mean()) if actual.mean() > 0 else float("nan"),
        "mean_rmsse": mean_rmsse[MODEL],
        "moving_average_28_wrmsse": float(scores.table.loc["moving_average_28", "wrmsse"]),
        "moving_average_28_mean_rmsse": mean_rmsse["moving_average_28"],
    }
    out |= {f"coverage_{c}": covered[c] for c in COVERAGES}
    out |= {f"wrmsse_level_{level}": float(v) for level, v in enumerate(scores.per_level[MODEL].to_numpy(), start=1)}
    return out


def _mean_bottom_rmsse(score: WRMSSE) -> float:
    """Mean RMSSE over the item-store series that have a scale (a sale before the window)."""
    bottom = score.series[score.series["level"] == BOTTOM_LEVEL]["rmsse"]
    return float(np.nanmean(bottom)) if bottom.notna().any() else float("nan")


def score_in_order(
    inputs: FeatureInputs,
    days: list[dt.date],
    read_bottom: Callable[[dt.date], pd.DataFrame],
    history: pd.DataFrame,
    read_shadow: Callable[[dt.date], pd.DataFrame | None] = lambda day: None,
) -> tuple[list[dict], dict[dt.date, list[str]]]:
    """Score the forecast of each of ``days`` (its bottom rows from ``read_bottom``) in date order,
    each judged against the scores of the partitions before it: ``history`` (``HISTORY_COLUMNS``
    of partitions scored earlier) and the ones scored here. A challenger's forecast of the same
    day (``read_shadow``, None without one) is scored beside it. Returns the score rows, in date
    order, and each day's warnings."""
    history = history[list(HISTORY_COLUMNS)]
    rows, problems = [], {}
    for day in sorted(days):
        row = with_shadow(score_forecast(inputs, day, read_bottom(day)), inputs, day, read_shadow(day))
        found = warnings_against_history(row, history[history["forecast_date"] < day])
        if found:
            problems[day] = found
        kept, fresh = history[history["forecast_date"] != day], pd.DataFrame([row])[list(HISTORY_COLUMNS)]
        # Concatenating an empty frame is deprecated in pandas: start from the new row instead.
        history = fresh if kept.empty else pd.concat([kept, fresh], ignore_index=True)
        rows.append(row)
    return rows, problems


SHADOW_SCORES = ("wrmsse", "mean_rmsse", "bias_pct")


def with_shadow(row: dict, inputs: FeatureInputs, day: dt.date, shadow: pd.DataFrame | None) -> dict:
    """``row`` with the challenger's scores on the same days beside it (nulls without one)."""
    if shadow is None:
        return row | {"shadow_model_version": None, **{f"shadow_{k}": float("nan") for k in SHADOW_SCORES}}
    scored = score_forecast(inputs, day, shadow)
    return row | {"shadow_model_version": scored["model_version"], **{f"shadow_{k}": scored[k] for k in SHADOW_SCORES}}


def warnings_against_history(current: dict, earlier: pd.DataFrame) -> list[str]:
    """Why this partition's accuracy looks off next to the partitions before it (none: it does not)."""
    problems = []
    trailing = earlier.sort_values("forecast_date").tail(TRAILING_PARTITIONS)
    if len(trailing):
        mean = float(trailing["wrmsse"].mean())
        if current["wrmsse"] > (1 + DEGRADATION_LIMIT) * mean:
            problems.append(
                f"WRMSSE {current['wrmsse']:.4f} is more than {DEGRADATION_LIMIT:.0%} above the mean "
                f"{mean:.4f} of the {len(trailing)} partitions before"
            )  # fmt: skip
    if abs(current["coverage_95"] - 95) > COVERAGE_TOLERANCE:
        problems.append(f"95 % interval coverage is {current['coverage_95']:.1f} %, more than {COVERAGE_TOLERANCE:g} points off")
    return problems
