"""Series-days far outside their own series' history: a robust rule that a data error trips and a
genuine promotion does not.

Each series is cut into blocks of ``BLOCK_DAYS`` (a last, shorter block joins the one before
it). A day is far out when its units exceed ``MULTIPLE`` x (its block's 90th percentile + 1).
The percentile ignores a few extreme days, the outliers themselves among them, and the + 1
keeps intermittent series (percentile 0) from being flagged for a sale of a few units.

Why this rule and these numbers, measured on genuine M5 data (``../shared/data/m5``):
- the largest ratio over all 30,490 series' 28 days after d_1913 is 30.8 (a series selling
  nothing on most days sold 40 on one), and over the ten genuine series' 1,913 days it is 8.0;
- a median-and-MAD score does worse there: a series that went from 0 to 30..100 a day for two
  weeks scores 102 against its median, and real one-day purchases of 77 at about one a day 51.
So 100 leaves three times the largest genuine jump, and still trips on what a broken export
writes: a day of 10**9 units, or a thousand times the usual. It does not catch a plausible-looking
error (ten times the usual): no rule on units alone can tell that from a promotion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

BLOCK_DAYS = 91
MULTIPLE = 100.0
LEVEL_QUANTILE = 0.9


def _blocks(n_days: int, block_days: int) -> list[tuple[int, int]]:
    bounds = [(a, min(a + block_days, n_days)) for a in range(0, n_days, block_days)]
    if len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] < block_days:
        bounds[-2:] = [(bounds[-2][0], n_days)]
    return bounds


def history_ratios(units: np.ndarray, block_days: int = BLOCK_DAYS) -> tuple[np.ndarray, np.ndarray]:
    """For a series x day matrix: each day's units / (its block's 90th percentile + 1), and that
    percentile."""
    ratios = np.empty(units.shape, dtype=np.float64)
    levels = np.empty(units.shape, dtype=np.float64)
    for start, stop in _blocks(units.shape[1], block_days):
        block = units[:, start:stop].astype(np.float64)
        level = np.quantile(block, LEVEL_QUANTILE, axis=1, keepdims=True)
        ratios[:, start:stop] = block / (level + 1.0)
        levels[:, start:stop] = level
    return ratios, levels


def far_outside_history(
    units: np.ndarray, series: pd.Index | list[str], dates: pd.DatetimeIndex, multiple: float = MULTIPLE
) -> pd.DataFrame:
    """Series-days whose units exceed ``multiple`` x (their block's 90th percentile + 1), largest
    ratio first: id, date, units, the block's percentile and the ratio."""
    ratios, levels = history_ratios(units)
    rows, days = np.nonzero(ratios > multiple)
    found = pd.DataFrame(
        {
            "id": np.asarray(series)[rows],
            "date": pd.DatetimeIndex(dates)[days].date,
            "units": units[rows, days],
            "usual_high": levels[rows, days],
            "ratio": ratios[rows, days].round(1),
        }
    )
    return found.sort_values("ratio", ascending=False, ignore_index=True)
