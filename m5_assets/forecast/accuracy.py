"""Score an issued forecast once all its days have actuals, next to seasonal naive and the 28-day
mean issued the same day."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from m5_assets import intervals, tables
from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import HORIZON
from m5_assets.intervals import COVERAGES, inside_counts
from m5_assets.metrics import (
    LevelHistory,
    LevelSums,
    add_level_sums,
    bias_percent,
    level_sums,
    mean_bottom_rmsse,
    percent_of_sold,
    scores_of,
    wape,
    with_history,
)
from m5_assets.model.baselines import BASELINES
from m5_assets.model.evaluation import MODEL, forecast_matrix, validation_window, window_origin
from m5_assets.reader import scorable
from m5_assets.warehouse import PartitionFacts, Warehouse, partition_facts

DEGRADATION_LIMIT = 0.10  # WRMSSE may rise this much above its trailing mean before a warning
TRAILING_PARTITIONS = 28
HISTORY_COLUMNS = ("forecast_date", "wrmsse")  # what warnings_against_history reads of earlier partitions
COVERAGE_TOLERANCE = 5.0  # points of 95 % interval coverage


def actuals_complete(inputs: FeatureInputs, day: dt.date) -> bool:
    """Whether every one of the forecast's 28 days has sales."""
    return scorable(day, inputs.dates[inputs.n_sales_days - 1].date())


BOTTOM = tables.LEVELS[-1][0]
SCORED_BASELINES = ("seasonal_naive", "moving_average_28")  # issued the same day, scored beside it
SHADOW = "shadow"  # a challenger's forecast of the same days, when there is one
SHADOW_SCORES = ("wrmsse", "mean_rmsse", "bias_pct")  # of a challenger, beside the champion's
POINT_SUMS = ("squared", "absolute", "error", "count")  # over every series-day, of each method


@dataclass(frozen=True)
class ScoreParts:
    """What scoring one forecast needs of some series. Parts of disjoint series add up
    (``add_score_parts``): scoring by store group is this, per group, then the sum."""

    day: dt.date
    model_version: str
    shadow_version: str | None
    history_days: int  # days of sales before the forecast's first day
    levels: list[LevelSums]  # methods: MODEL, the scored baselines, SHADOW when there is one
    point: dict[str, np.ndarray]  # method -> POINT_SUMS
    actual_of_rows: dict[str, np.ndarray]  # MODEL or SHADOW -> sum and count of the actuals of its own rows
    inside: dict[int, np.ndarray]  # interval coverage -> actuals inside it, and the count


def score_parts(
    inputs: FeatureInputs,
    day: dt.date,
    bottom: pd.DataFrame,
    shadow: pd.DataFrame | None = None,
    local: Callable[[tuple[str, ...]], bool] = lambda keys: True,
    keep_history: bool = True,
) -> ScoreParts:
    """The parts of scoring the forecast issued on ``day`` (its bottom-level rows, and a
    challenger's when given) over ``inputs``' series; ``local`` and ``keep_history`` as in
    ``level_sums``."""
    if not actuals_complete(inputs, day):
        last = inputs.dates[inputs.n_sales_days - 1].date()
        raise ValueError(
            f"forecast {day}: actuals end on {last}, before its last day {day + dt.timedelta(days=HORIZON - 1)}"
        )
    cutoff = day + dt.timedelta(days=HORIZON)
    origin = window_origin(inputs, cutoff)
    history, prices, actual = validation_window(inputs, cutoff)
    issued = {MODEL: bottom} | ({SHADOW: shadow} if shadow is not None else {})
    forecasts = {
        name: forecast_matrix(
            inputs, rows[["id", "date", "forecast"]].rename(columns={"forecast": "prediction"}), day, HORIZON
        )
        for name, rows in issued.items()
    }
    forecasts |= {name: BASELINES[name](history, HORIZON) for name in SCORED_BASELINES}
    point = {}
    for name, forecast in forecasts.items():
        error = forecast - actual
        point[name] = np.array([np.sum(error**2), np.sum(np.abs(error)), np.sum(error), error.size], dtype=np.float64)
    index = pd.Series(np.arange(len(inputs.series)), index=inputs.series["id"].astype(str))
    actual_of_rows, inside = {}, {}
    for name, rows in issued.items():
        of_rows = inputs.units[
            index.loc[rows["id"].astype(str)].to_numpy(), origin + rows["horizon"].to_numpy() - 1
        ].astype(np.float64)
        actual_of_rows[name] = np.array([of_rows.sum(), of_rows.size], dtype=np.float64)
        if name == MODEL:
            counts = inside_counts(
                of_rows, {c: rows[c].to_numpy() for c in rows.columns if c.startswith(("lo_", "hi_"))}
            )
            inside = {c: np.array([counts[c], of_rows.size], dtype=np.float64) for c in COVERAGES}
    return ScoreParts(
        day=day,
        model_version=str(bottom["model_version"].iloc[0]),
        shadow_version=str(shadow["model_version"].iloc[0]) if shadow is not None else None,
        history_days=origin,
        levels=level_sums(inputs.series, history, prices, actual, forecasts, local, keep_history),
        point=point,
        actual_of_rows=actual_of_rows,
        inside=inside,
    )


def add_score_parts(parts: list[ScoreParts], histories: dict[int, LevelHistory] | None = None) -> ScoreParts:
    """The parts of every store group as one, the non-local levels' history from ``histories``."""
    first = parts[0]
    if len({(p.day, p.model_version, p.shadow_version, p.history_days) for p in parts}) != 1:
        raise ValueError(f"forecast {first.day}: the groups' parts are of different forecasts or models")
    levels = add_level_sums([p.levels for p in parts])
    if histories is not None:
        levels = with_history(levels, histories, first.history_days)

    def added(field: str) -> dict:
        return {key: sum(getattr(p, field)[key] for p in parts) for key in getattr(first, field)}

    return dataclasses.replace(
        first, levels=levels, point=added("point"), actual_of_rows=added("actual_of_rows"), inside=added("inside")
    )


LEVEL_FIGURES = ("wape", "bias", *(f"coverage_{c}" for c in (80, 95)))  # per level: "{figure}_level_{n}"


def level_figures(parts: ScoreParts, series: pd.DataFrame | None) -> dict[str, float]:
    """The model's WAPE, bias and interval coverage at each M5 level, in %, over the level's series
    and the 28 days. Levels 1-11 from their sums; their coverage from their series' (``series``,
    from ``series_figures``: each series has the same 28 days, so the level's share is their mean;
    without them it is not formed). Level 12 from the bottom rows."""
    out: dict[str, float] = {}
    for lv in parts.levels:
        if lv.actual is None or lv.forecasts is None:
            continue  # the bottom level, below
        actual, forecast = lv.actual, lv.forecasts[MODEL]
        out[f"wape_level_{lv.number}"] = wape(float(np.abs(forecast - actual).sum()), float(actual.sum()))
        out[f"bias_level_{lv.number}"] = bias_percent(float((forecast - actual).sum()), float(actual.sum()))
        if series is not None:
            own = series[series["level"] == lv.number]
            out |= {f"coverage_{c}_level_{lv.number}": float(own[f"coverage_{c}"].mean()) for c in (80, 95)}
    absolute, error = parts.point[MODEL][1], parts.point[MODEL][2]
    sold = float(parts.actual_of_rows[MODEL][0])
    out[f"wape_level_{BOTTOM}"], out[f"bias_level_{BOTTOM}"] = wape(absolute, sold), bias_percent(error, sold)
    for c in (80, 95):
        inside, count = parts.inside[c]
        out[f"coverage_{c}_level_{BOTTOM}"] = float(100 * inside / count)
    return out


HIERARCHY_KEYS = ("item_id", "dept_id", "cat_id", "store_id", "state_id")


def series_figures(parts: ScoreParts, level_rows: pd.DataFrame) -> pd.DataFrame:
    """Each series of levels 1-11 (a row of ``series_accuracy``): units sold and forecast over the
    28 days, WAPE, bias and its coverage of its own intervals (``level_rows``), all in %."""
    frames = []
    for lv in parts.levels:
        if lv.actual is None or lv.forecasts is None:
            continue  # the bottom level: its rows are the forecasts themselves
        actual, forecast = lv.actual, lv.forecasts[MODEL]
        sold = actual.sum(axis=1)
        day_actual, bounds, found = _aligned(lv, level_rows, parts.day)
        frame = pd.DataFrame({"level": np.full(len(sold), lv.number, dtype=np.int8)})
        for key in HIERARCHY_KEYS:
            values = lv.groups[key].astype(str).to_numpy() if key in lv.groups else None
            frame[key] = pd.array(values if values is not None else [None] * len(sold), dtype="string")
        frame["units_sold"], frame["units_forecast"] = sold, forecast.sum(axis=1)
        frame["wape"] = percent_of_sold(np.abs(forecast - actual).sum(axis=1), sold)
        frame["bias"] = percent_of_sold((forecast - actual).sum(axis=1), sold)
        for c in (80, 95):
            held = intervals.inside(day_actual, bounds, c).astype(np.float64)
            frame[f"coverage_{c}"] = 100 * np.bincount(found, held, len(sold)) / np.bincount(found, None, len(sold))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _aligned(
    lv: LevelSums, level_rows: pd.DataFrame, day: dt.date
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The level's actuals and its rows' interval bounds, day by day in the same order, and the
    group of each."""
    assert lv.actual is not None
    rows = level_rows[level_rows["level"] == lv.number]
    keys = list(tables.LEVEL_KEYS[lv.number])
    if keys:
        found = rows[keys].astype(str).merge(lv.groups.reset_index(), on=keys, how="left")["index"]
    else:
        found = pd.Series(0, index=rows.index)
    if len(rows) != lv.actual.size or found.isna().any():
        raise ValueError(
            f"forecast {day}: forecast_levels has {len(rows)} rows at level {lv.number} ({lv.name}), "
            f"for {lv.actual.size} series-days scored"
        )
    groups = found.to_numpy(dtype=np.int64)
    actual = lv.actual[groups, rows["horizon"].to_numpy(dtype=np.int64) - 1]
    return actual, {c: rows[c].to_numpy() for c in rows.columns if c.startswith(("lo_", "hi_"))}, groups


def row_of(parts: ScoreParts, series: pd.DataFrame | None = None) -> dict:
    """One row of accuracy figures, from a whole forecast's parts (and its ``series_figures``, for
    the levels' interval coverage)."""
    scores = scores_of(parts.levels)
    point = {name: dict(zip(POINT_SUMS, sums, strict=True)) for name, sums in parts.point.items()}
    rmse = {name: float(np.sqrt(p["squared"] / p["count"])) for name, p in point.items()}
    mae = {name: float(p["absolute"] / p["count"]) for name, p in point.items()}
    bias = {name: float(p["error"] / p["count"]) for name, p in point.items()}

    def bias_pct(name: str) -> float:
        total, count = parts.actual_of_rows[name]
        return float(100 * bias[name] / (total / count)) if total > 0 else float("nan")

    out = {
        "forecast_date": parts.day,
        "model_version": parts.model_version,
        "wrmsse": scores[MODEL].total,
        "seasonal_naive_wrmsse": scores["seasonal_naive"].total,
        "rmse": rmse[MODEL],
        "mae": mae[MODEL],
        "bias": bias[MODEL],
        "seasonal_naive_mae": mae["seasonal_naive"],
        "bias_pct": bias_pct(MODEL),
        "mean_rmsse": mean_bottom_rmsse(scores[MODEL]),
        "moving_average_28_wrmsse": scores["moving_average_28"].total,
        "moving_average_28_mean_rmsse": mean_bottom_rmsse(scores["moving_average_28"]),
    }
    out |= {f"coverage_{c}": float(100 * inside / count) for c, (inside, count) in parts.inside.items()}
    out |= {f"wrmsse_level_{row.level}": float(row.score) for row in scores[MODEL].levels.itertuples()}
    out |= level_figures(parts, series)
    if parts.shadow_version is None:
        return out | {"shadow_model_version": None, **{f"shadow_{k}": float("nan") for k in SHADOW_SCORES}}
    shadow = {
        "wrmsse": scores[SHADOW].total,
        "mean_rmsse": mean_bottom_rmsse(scores[SHADOW]),
        "bias_pct": bias_pct(SHADOW),
    }
    return out | {"shadow_model_version": parts.shadow_version, **{f"shadow_{k}": shadow[k] for k in SHADOW_SCORES}}


def score_forecast(
    inputs: FeatureInputs,
    day: dt.date,
    bottom: pd.DataFrame,
    shadow: pd.DataFrame | None = None,
    level_rows: pd.DataFrame | None = None,
) -> dict:
    """One row of accuracy figures for the forecast issued on ``day`` (its bottom-level rows, and
    its ``forecast_levels`` rows for the levels' coverage), with a challenger's forecast of the
    same days scored beside it when given."""
    parts = score_parts(inputs, day, bottom, shadow)
    return row_of(parts, series_figures(parts, level_rows) if level_rows is not None else None)


def score_in_order(
    days: list[dt.date], row_of_day: Callable[[dt.date], dict], history: pd.DataFrame
) -> tuple[list[dict], dict[dt.date, list[str]]]:
    """Score the forecast of each of ``days`` (its row from ``row_of_day``) in date order, each
    judged against the scores of the partitions before it: ``history`` (``HISTORY_COLUMNS`` of
    partitions scored earlier) and the ones scored here. Returns the score rows, in date order,
    and each day's warnings."""
    history = history[list(HISTORY_COLUMNS)]
    rows, problems = [], {}
    for day in sorted(days):
        row = row_of_day(day)
        found = warnings_against_history(row, history[history["forecast_date"] < day])
        if found:
            problems[day] = found
        kept, fresh = history[history["forecast_date"] != day], pd.DataFrame([row])[list(HISTORY_COLUMNS)]
        # Concatenating an empty frame is deprecated in pandas: start from the new row instead.
        history = fresh if kept.empty else pd.concat([kept, fresh], ignore_index=True)
        rows.append(row)
    return rows, problems


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
            )
    # A first partition has no history to compare with; seasonal naive, issued the same day and
    # scored on the same days, always is there (a 10**9-unit day once passed unnoticed).
    naive = current.get("seasonal_naive_wrmsse")
    if naive is not None and np.isfinite(naive) and not current["wrmsse"] <= naive:
        problems.append(f"WRMSSE {current['wrmsse']:.4f} is worse than seasonal naive's {naive:.4f} on the same days")
    if abs(current["coverage_95"] - 95) > COVERAGE_TOLERANCE:
        problems.append(
            f"95 % interval coverage is {current['coverage_95']:.1f} %, more than {COVERAGE_TOLERANCE:g} points off"
        )
    return problems


def unscorable(inputs: FeatureInputs, days: list[dt.date]) -> str | None:
    """Why some of ``days`` cannot be scored yet, saying when they can; None when all can."""
    waiting = [d for d in days if not actuals_complete(inputs, d)]
    if not waiting:
        return None
    last = inputs.dates[inputs.n_sales_days - 1].date()
    return (
        f"actuals end on {last}: forecasts issued from {waiting[0]} on cannot be scored until "
        f"{waiting[0] + dt.timedelta(days=HORIZON - 1)} has sales"
    )


def publish_scored(storage: Warehouse, rows: list[dict]) -> list[tuple[dict, PartitionFacts]]:
    """Each scored row as its forecast date's partition of ``forecast_accuracy``; its facts."""
    published = []
    for row in rows:
        # Typed even when empty, so every partition's file has the same schema.
        frame = pd.DataFrame([row]).astype({"shadow_model_version": "string"})
        path = tables.FORECAST_ACCURACY.write_partition(storage, row["forecast_date"], frame)
        published.append((row, partition_facts(path, frame.drop(columns="forecast_date"), preview_rows=1)))
    return published
