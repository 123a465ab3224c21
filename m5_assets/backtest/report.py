"""The backtest's table of methods and the accuracy targets the product's forecast is held to.

Targets (issue 24), on the mean over origins of each figure:
- WRMSSE at most 0.93 x the 28-day mean x weekday profile's, at most 0.85 x the lowest of the
  other simple baselines, and no worse than the mlforecast peer's;
- mean RMSSE (item x store) at most the best simple baseline's;
- |bias| at most 3 % over all origins and at most 10 % on each;
- 80 % and 95 % interval coverage within 3 points at levels 10 and 12 and 6 points at levels 1
  and 3, each interval no wider on average than the 28-day mean's conformal interval.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from m5_assets.backtest.scoring import INTERVAL_LEVELS
from m5_assets.model.evaluation import MODEL

ISSUED = MODEL  # the product's forecast, as validation and scoring name it
MEAN_28 = "moving_average_28"
WEEKDAY_PROFILE = "weekday_profile"
MLFORECAST = "mlforecast"
SIMPLE = ("seasonal_naive", MEAN_28, "exponential_smoothing")  # the "other simple baselines"
TARGET_COVERAGES = (80, 95)
COVERAGE_TOLERANCE = {1: 6.0, 3: 6.0, 10: 3.0, 12: 3.0}  # points, per level


def pooled_bias(scores: pd.DataFrame) -> float:
    """Bias over every origin together: sum(forecast - actual) / sum(actual), in %."""
    actual = scores["actual_units"].sum()
    return float(100 * (scores["forecast_units"].sum() - actual) / actual) if actual > 0 else float("nan")


def method_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per method, best WRMSSE first: means over origins, pooled and worst bias."""
    rows = []
    for method, frame in scores.groupby("method"):
        rows.append(
            {
                "method": method,
                "origins": len(frame),
                "wrmsse": frame["wrmsse"].mean(),
                "mean_rmsse": frame["mean_rmsse"].mean(),
                "bias_pct": pooled_bias(frame),
                "worst_origin_bias_pct": float(frame["bias_pct"].iloc[np.argmax(frame["bias_pct"].abs().to_numpy())]),
            }
        )
    columns = ["method", "origins", "wrmsse", "mean_rmsse", "bias_pct", "worst_origin_bias_pct"]
    return pd.DataFrame(rows, columns=columns).sort_values("wrmsse").reset_index(drop=True)


def interval_table(scores: pd.DataFrame, methods: tuple[str, ...] = (ISSUED, MEAN_28)) -> pd.DataFrame:
    """Mean coverage and width of each interval at each level, for ``methods`` that issue them."""
    rows = []
    for method in methods:
        frame = scores[scores["method"] == method]
        if frame.empty or f"coverage_95_level_{INTERVAL_LEVELS[0]}" not in frame:
            continue
        for level in INTERVAL_LEVELS:
            row = {"method": method, "level": level}
            for c in (50, *TARGET_COVERAGES):
                row[f"coverage_{c}"] = frame[f"coverage_{c}_level_{level}"].mean()
                row[f"width_{c}"] = frame[f"width_{c}_level_{level}"].mean()
            rows.append(row)
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Target:
    name: str
    value: float
    bound: float
    met: bool


def _at_most(name: str, value: float, bound: float) -> Target:
    return Target(name, value, bound, bool(np.isfinite(value) and np.isfinite(bound) and value <= bound))


def targets(scores: pd.DataFrame) -> list[Target]:
    """Each target of the module docstring that the scored methods allow judging."""
    table = method_table(scores).set_index("method")
    if ISSUED not in table.index:
        return []
    issued = table.loc[ISSUED]
    out = []
    if WEEKDAY_PROFILE in table.index:
        out.append(
            _at_most(
                "WRMSSE <= 0.93 x weekday profile's", issued["wrmsse"], 0.93 * table.loc[WEEKDAY_PROFILE, "wrmsse"]
            )
        )
    simple = [m for m in SIMPLE if m in table.index]
    if simple:
        best = table.loc[simple, "wrmsse"].min()
        out.append(_at_most("WRMSSE <= 0.85 x best other simple baseline's", issued["wrmsse"], 0.85 * best))
    if MLFORECAST in table.index:
        out.append(_at_most("WRMSSE <= mlforecast's", issued["wrmsse"], table.loc[MLFORECAST, "wrmsse"]))
    every_simple = [m for m in (*SIMPLE, WEEKDAY_PROFILE) if m in table.index]
    if every_simple:
        out.append(
            _at_most(
                "mean RMSSE <= best simple baseline's",
                issued["mean_rmsse"],
                table.loc[every_simple, "mean_rmsse"].min(),
            )
        )
    out.append(_at_most("|bias| over all origins <= 3 %", abs(issued["bias_pct"]), 3.0))
    out.append(_at_most("|bias| on every origin <= 10 %", abs(issued["worst_origin_bias_pct"]), 10.0))
    own = scores[scores["method"] == ISSUED]
    if "beyond_twice_highest_series" in own:
        out.append(
            _at_most(
                "series above 2 x their highest 28-day mean or day (any origin)",
                float(own["beyond_twice_highest_series"].max()),
                0.0,
            )
        )
    intervals = interval_table(scores)
    if not intervals.empty:
        ours = intervals[intervals["method"] == ISSUED].set_index("level")
        theirs = intervals[intervals["method"] == MEAN_28].set_index("level")
        for level in INTERVAL_LEVELS:
            for c in TARGET_COVERAGES:
                off = abs(ours.loc[level, f"coverage_{c}"] - c)
                out.append(
                    _at_most(
                        f"{c} % coverage at level {level} within {COVERAGE_TOLERANCE[level]:g} points",
                        off,
                        COVERAGE_TOLERANCE[level],
                    )
                )
                if level in theirs.index:
                    out.append(
                        _at_most(
                            f"{c} % width at level {level} <= 28-day mean's",
                            ours.loc[level, f"width_{c}"],
                            theirs.loc[level, f"width_{c}"],
                        )
                    )
    return out


def target_table(scores: pd.DataFrame) -> pd.DataFrame:
    rows = [
        {"target": t.name, "value": t.value, "bound": t.bound, "met": "met" if t.met else "MISSED"}
        for t in targets(scores)
    ]
    return pd.DataFrame(rows, columns=["target", "value", "bound", "met"])


def later(scores: pd.DataFrame, since: dt.date) -> pd.DataFrame:
    """The origins on or after ``since``: those no design choice was made on."""
    return scores[pd.to_datetime(scores["origin"]) >= pd.Timestamp(since)]
