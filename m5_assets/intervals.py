"""Prediction intervals from conformal residuals on the model's validation window.

The early-stopped fit never trained on its validation window, so its errors there are honest
out-of-sample errors. For each hierarchy level the window's forecasts are cut into bins by the
size of the forecast (errors grow with it), and each bin keeps the quantiles of
``actual - forecast``. A new forecast takes the quantiles of its level and bin:
``[max(0, f + q_low), f + q_high]``. Nothing is assumed about the error distribution, and the
same method serves the bottom level and every aggregate.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

COVERAGES = (50, 80, 95)  # central interval levels, percent
MAX_BINS = 20
ROWS_PER_BIN = 500  # fewer forecasts than this per bin and the tail quantiles get noisy


def bound_columns(coverage: int) -> tuple[str, str]:
    return f"lo_{coverage}", f"hi_{coverage}"


@dataclass(frozen=True)
class Calibration:
    """One row per level and bin: the bin's upper forecast edge and its residual quantiles."""

    table: pd.DataFrame  # level, bin, upper_edge, lo_50, hi_50, lo_80, ...

    def to_json(self) -> str:
        return self.table.to_json(orient="records")

    @classmethod
    def from_json(cls, text: str) -> Calibration:
        table = pd.DataFrame(json.loads(text))
        table["upper_edge"] = table["upper_edge"].astype(float).fillna(np.inf)
        return cls(table)

    def bounds(self, level: int, forecast: np.ndarray) -> dict[str, np.ndarray]:
        """Lower and upper bounds of every coverage for forecasts of ``level``."""
        bins = self.table[self.table["level"] == level].sort_values("bin")
        if bins.empty:
            raise KeyError(f"the calibration has no level {level}")
        which = np.minimum(np.searchsorted(bins["upper_edge"].to_numpy(), forecast, side="left"), len(bins) - 1)
        out = {}
        for coverage in COVERAGES:
            lo_name, hi_name = bound_columns(coverage)
            lo = np.maximum(forecast + bins[lo_name].to_numpy()[which], 0.0)
            out[lo_name], out[hi_name] = lo, np.maximum(forecast + bins[hi_name].to_numpy()[which], lo)
        return out


def calibrate_level(level: int, forecast: np.ndarray, actual: np.ndarray) -> pd.DataFrame:
    """Bins of equal count by forecast size and the residual quantiles of each."""
    forecast, residual = np.ravel(forecast), np.ravel(actual) - np.ravel(forecast)
    n_bins = int(np.clip(len(forecast) // ROWS_PER_BIN, 1, MAX_BINS))
    inner_edges = np.unique(np.quantile(forecast, np.linspace(0, 1, n_bins + 1)[1:-1]))
    which = np.searchsorted(inner_edges, forecast, side="left")
    rows = []
    for b, upper in enumerate([*inner_edges, np.inf]):
        in_bin = residual[which == b]
        if len(in_bin) == 0:
            continue
        row = {"level": level, "bin": b, "upper_edge": float(upper), "rows": len(in_bin)}
        for coverage in COVERAGES:
            tail = (1 - coverage / 100) / 2
            lo_name, hi_name = bound_columns(coverage)
            row[lo_name], row[hi_name] = np.quantile(in_bin, [tail, 1 - tail])
        rows.append(row)
    table = pd.DataFrame(rows)
    table["bin"] = np.arange(len(table))
    return table


def inside_counts(actual: np.ndarray, bounds: dict[str, np.ndarray]) -> dict[int, int]:
    """How many actuals lie inside each central interval."""
    out = {}
    for c in COVERAGES:
        lo_name, hi_name = bound_columns(c)
        out[c] = int(((actual >= bounds[lo_name] - 1e-9) & (actual <= bounds[hi_name] + 1e-9)).sum())
    return out


def coverage(actual: np.ndarray, bounds: dict[str, np.ndarray]) -> dict[int, float]:
    """Share of actuals inside each central interval, percent."""
    return {c: float(100 * inside / actual.size) for c, inside in inside_counts(actual, bounds).items()}