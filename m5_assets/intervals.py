"""Prediction intervals from conformal residuals on the model's validation windows.

The early-stopped fits never trained on their validation windows, so their errors there are
out-of-sample errors. For each hierarchy level the windows' forecasts are cut into bins by the
size of the forecast, and each bin keeps quantiles of a normalised score,
``(actual - forecast) / sqrt(forecast + SCALE_OFFSET)``: count errors grow roughly with the root of
the count, so within a bin (the open-ended top one above all) a large forecast gets a wider
interval than a small one instead of every forecast the same offset. A new forecast takes its
level's and bin's quantiles back to units: ``[max(0, f + q_low * s), f + q_high * s]`` with
``s = sqrt(f + SCALE_OFFSET)``.

At the bottom level the quantiles are of the signed score: item-store errors are skewed (counts
cannot go below zero) and the skew of a bin carries over. Where a bin's days of zero sales are
at least an interval's lower tail, the interval starts at 0 and its upper bound is set so that
it holds its share of the bin's days, zeros included: a central interval there starts at 0 anyway,
holds every zero and covers more than it says (on real_280's backtest the item-store 50 % and 80 %
intervals covered 60 % and 83 % of days). At the aggregate levels they are of
its absolute value, an interval symmetric about the forecast: the aggregates' mean error on the
validation windows is the early-stopped fits' bias (on real_280 +46 units a day at the total,
against +5 for the issued forecasts at the backtest's origins), which a signed quantile would
carry into every interval as a shift the wrong way (level-1 80 % intervals covered 62 % of days).

Each bin also keeps the standard deviation of its signed score: ``sigma`` gives every forecast
its own standard deviation of error, in units, which the inventory plan sums over lead times.

At the bottom level the scale may be given per forecast (``base``; the issued forecast passes the
larger of itself and the series' demand level). A forecast of 0 is issued both for a series that
sells nothing and for a busy one just back from a stock-out; scaled by the forecast alone, the
second kind's errors (15 units and more on 5 % of real_280's zero-forecast days) made one spread
of 8.6 units a day for every zero forecast, and a series that never sold 3 a day was planned
37 units of stock. Scaled by its level, each kind keeps its own spread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

COVERAGES = (50, 80, 95)  # interval levels, percent
MAX_BINS = 20
ROWS_PER_BIN = 500  # fewer forecasts than this per bin and the tail quantiles get noisy
SCALE_OFFSET = 1.0  # units added before the root: a forecast of 0 still has a spread
_Z_90 = NormalDist().inv_cdf(0.90)  # a normal's central 80 % interval is +- this many sd


def bound_columns(coverage: int) -> tuple[str, str]:
    return f"lo_{coverage}", f"hi_{coverage}"


@dataclass(frozen=True)
class Calibration:
    """One row per level and bin: the bin's upper forecast edge, the score's quantiles and
    standard deviation (``sd``), and the ``scale_offset`` the score was normalised with."""

    table: pd.DataFrame  # level, bin, upper_edge, rows, scale_offset, sd, lo_50, hi_50, lo_80, ...

    def to_json(self) -> str:
        # -inf (no quantile: an interval from 0) is written as -Infinity, so that null still reads
        # back as a missing value (NaN), as it did before, and is not mistaken for an interval from 0.
        records = self.table.to_dict(orient="records")
        return json.dumps(records, default=lambda value: value.item())

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        """Also a calibration stored before scores were normalised: its quantiles are of the raw
        residual (no scale) and its spread is read off its 80 % quantiles as a normal's."""
        table = pd.DataFrame(json.loads(text))
        table["upper_edge"] = table["upper_edge"].astype(float).fillna(np.inf)
        if "scale_offset" not in table:
            table["scale_offset"] = np.nan
        if "sd" not in table:
            lo, hi = bound_columns(80)
            table["sd"] = (table[hi] - table[lo]) / (2 * _Z_90)
        return cls(table)

    def _bins(
        self, level: int, forecast: np.ndarray, base: np.ndarray | None = None
    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """The level's bins, which bin each forecast falls in, and each forecast's scale (from
        ``base``, the forecast itself unless given)."""
        bins = self.table[self.table["level"] == level].sort_values("bin")
        if bins.empty:
            raise KeyError(f"the calibration has no level {level}")
        which = np.minimum(np.searchsorted(bins["upper_edge"].to_numpy(), forecast, side="left"), len(bins) - 1)
        offset = bins["scale_offset"].to_numpy(dtype=np.float64)[which]
        base = forecast if base is None else base
        scale = np.where(np.isnan(offset), 1.0, np.sqrt(np.maximum(base, 0.0) + np.nan_to_num(offset)))
        return bins, which, scale

    def bounds(self, level: int, forecast: np.ndarray, base: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Lower and upper bounds of every coverage for forecasts of ``level`` (scaled by ``base``
        if it was calibrated with one)."""
        bins, which, scale = self._bins(level, forecast, base)
        out = {}
        for coverage in COVERAGES:
            lo_name, hi_name = bound_columns(coverage)
            lo = np.maximum(forecast + bins[lo_name].to_numpy()[which] * scale, 0.0)
            out[lo_name], out[hi_name] = lo, np.maximum(forecast + bins[hi_name].to_numpy()[which] * scale, lo)
        return out

    def sigma(self, level: int, forecast: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
        """Each forecast's standard deviation of error (actual - forecast), in units."""
        bins, which, scale = self._bins(level, forecast, base)
        return bins["sd"].to_numpy(dtype=np.float64)[which] * scale


def score(forecast: np.ndarray, actual: np.ndarray, base: np.ndarray | None = None) -> np.ndarray:
    """The normalised residual the quantiles are taken of, scaled by ``base`` (default: the forecast)."""
    base = forecast if base is None else base
    return (actual - forecast) / np.sqrt(np.maximum(base, 0.0) + SCALE_OFFSET)


def calibrate_level(
    level: int, forecast: np.ndarray, actual: np.ndarray, symmetric: bool = False, base: np.ndarray | None = None
) -> pd.DataFrame:
    """Bins of equal count by forecast size, each with the quantiles of its score (of the
    score's absolute value, as a symmetric interval, if ``symmetric``) and its standard deviation."""
    forecast, actual = np.ravel(forecast), np.ravel(actual)
    scores = score(forecast, actual, None if base is None else np.ravel(base))
    n_bins = int(np.clip(len(forecast) // ROWS_PER_BIN, 1, MAX_BINS))
    inner_edges = np.unique(np.quantile(forecast, np.linspace(0, 1, n_bins + 1)[1:-1]))
    which = np.searchsorted(inner_edges, forecast, side="left")
    rows = []
    for b, upper in enumerate([*inner_edges, np.inf]):
        in_bin = scores[which == b]
        if len(in_bin) == 0:
            continue
        sold = actual[which == b] > 0
        row = {
            "level": level,
            "bin": b,
            "upper_edge": float(upper),
            "rows": len(in_bin),
            "scale_offset": SCALE_OFFSET,
            "sd": float(np.std(in_bin)),
        }
        for coverage in COVERAGES:
            lo_name, hi_name = bound_columns(coverage)
            if symmetric:
                half = float(np.quantile(np.abs(in_bin), coverage / 100))
                row[lo_name], row[hi_name] = -half, half
            else:
                row[lo_name], row[hi_name] = _signed_bounds(in_bin, sold, coverage / 100)
        rows.append(row)
    table = pd.DataFrame(rows)
    table["bin"] = np.arange(len(table))
    return table


def _signed_bounds(scores: np.ndarray, sold: np.ndarray, share: float) -> tuple[float, float]:
    """Quantiles of one bin's ``scores`` bounding ``share`` of its days: the central interval, or,
    where the days without sales (``~sold``) are at least its lower tail, one from 0 (no lower
    quantile: -inf) whose upper quantile takes in ``share`` with the zeros counted in (none, -inf
    too, where the zeros alone hold it)."""
    tail = (1 - share) / 2
    zeros = 1.0 - float(np.mean(sold))
    if zeros < tail:
        low, high = np.quantile(scores, [tail, 1 - tail])
        return float(low), float(high)
    if zeros >= share or not sold.any():
        return -np.inf, -np.inf  # the zeros alone hold the share: [0, 0]
    return -np.inf, float(np.quantile(scores[sold], (share - zeros) / (1 - zeros)))


def inside(actual: np.ndarray, bounds: dict[str, np.ndarray], coverage: int) -> np.ndarray:
    """Whether each actual lies inside its ``coverage`` % interval (a bound stored in float32
    still holds the whole number it was)."""
    lo_name, hi_name = bound_columns(coverage)
    return (actual >= bounds[lo_name] - 1e-9) & (actual <= bounds[hi_name] + 1e-9)


def inside_counts(actual: np.ndarray, bounds: dict[str, np.ndarray]) -> dict[int, int]:
    """How many actuals lie inside each interval."""
    return {c: int(inside(actual, bounds, c).sum()) for c in COVERAGES}


def coverage(actual: np.ndarray, bounds: dict[str, np.ndarray]) -> dict[int, float]:
    """Share of actuals inside each interval, percent."""
    return {c: float(100 * inside / actual.size) for c, inside in inside_counts(actual, bounds).items()}


COVERAGE_FLOOR = 5.0  # points short of nominal before a shortfall is worth a planner's attention


def short_of_nominal(held: float, nominal: int, series_days: int) -> bool:
    """Whether ``held`` % of ``series_days`` inside the ``nominal`` % band is short beyond chance:
    by more than two binomial standard errors, and never by less than ``COVERAGE_FLOOR`` points.
    A level of 28 series-days swings by 7 points at 80 % from chance alone; item-store does not."""
    p = nominal / 100
    chance = 2 * 100 * float(np.sqrt(p * (1 - p) / max(series_days, 1)))
    return held < nominal - max(COVERAGE_FLOOR, chance)
