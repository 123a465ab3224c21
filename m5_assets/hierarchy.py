"""Bottom-up sums of series x day matrices to the 12 M5 levels, and interval calibration on them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

from m5_assets.grid import SERIES_COLUMNS
from m5_assets.intervals import Calibration, calibrate_level
from m5_assets.metrics import LEVELS, aggregation

BOTTOM_LEVEL = LEVELS[-1][0]


@dataclass(frozen=True)
class LevelSums:
    level: int
    name: str
    groups: pd.DataFrame  # one row per aggregated series: the level's hierarchy columns
    values: np.ndarray  # groups x days


def level_sums(hierarchy: pd.DataFrame, values: np.ndarray) -> Iterator[LevelSums]:
    """``values`` (bottom series x days, rows in ``hierarchy``'s order) summed to every level."""
    for level, name, keys in LEVELS:
        matrix, groups = aggregation(hierarchy, keys)
        yield LevelSums(level, name, _with_parents(hierarchy, groups[list(keys)]), np.asarray(matrix @ values))


def _with_parents(hierarchy: pd.DataFrame, groups: pd.DataFrame) -> pd.DataFrame:
    """Add every hierarchy column the level's keys determine (a store's state, an item's department)."""
    keys = list(groups.columns)
    if not keys:
        return groups
    columns = [c for c in SERIES_COLUMNS[1:] if c not in keys]
    per_group = hierarchy[keys + columns].astype(str).groupby(keys)
    implied = [c for c in columns if (per_group[c].nunique() == 1).all()]
    parents = per_group[implied].first().reset_index()
    return groups.astype(str).merge(parents, on=keys, how="left")[keys + implied]


def calibrate(
    hierarchy: pd.DataFrame,
    forecast: np.ndarray,
    actual: np.ndarray,
    released: np.ndarray,
    bottom_base: np.ndarray | None = None,
) -> Calibration:
    """Interval calibration of every level from forecasts and actuals of one window.

    At the bottom level only released series-days count: the model never forecasts the others;
    their scores are scaled by ``bottom_base`` when given (``intervals`` says why).
    The aggregates' intervals are symmetric about the forecast (``intervals`` says why).
    """
    tables, days = [], forecast.shape[1]
    # Summed side by side, so each level's groups are formed once for both.
    for sums in level_sums(hierarchy, np.hstack([forecast, actual])):
        f, a = sums.values[:, :days], sums.values[:, days:]
        base = None
        if sums.level == BOTTOM_LEVEL:
            f, a = f[released], a[released]
            base = bottom_base[released] if bottom_base is not None else None
        tables.append(calibrate_level(sums.level, f, a, symmetric=sums.level != BOTTOM_LEVEL, base=base))
    return Calibration(pd.concat(tables, ignore_index=True))


def hierarchy_of(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per series id (sorted) with its hierarchy columns, from rows that carry them."""
    first = rows[SERIES_COLUMNS].astype(str).drop_duplicates("id")
    return first.sort_values("id").reset_index(drop=True)


def level_sum_problems(bottom: pd.DataFrame, levels: pd.DataFrame, tolerance: float = 1e-6) -> list[str]:
    """Where a level's forecasts do not add up to the bottom level's on the same day.

    ``bottom``: date, forecast per series; ``levels``: level, level_name, date, forecast per group.
    Each level partitions the series, so every level's daily total must equal the bottom's.
    """
    expected = bottom.groupby("date")["forecast"].sum()
    problems = []
    for (level, name), rows in levels.groupby(["level", "level_name"], sort=True):
        totals = rows.groupby("date")["forecast"].sum().reindex(expected.index)
        gap = (totals - expected).abs()
        off = gap[~(gap <= tolerance * np.maximum(1.0, expected.abs()))]
        if len(off):
            day = off.index[0]
            problems.append(
                f"level {level} ({name}) sums to {totals.loc[day]:.4f} on {day}, the bottom level to "
                f"{expected.loc[day]:.4f} ({len(off)} day(s) off)"
            )
    missing = sorted(set(range(1, BOTTOM_LEVEL)) - set(levels["level"].astype(int)))
    if missing:
        problems.append(f"levels {missing} are missing")
    return problems
