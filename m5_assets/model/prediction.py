"""The booster's output on feature rows: the one place every forecast, backtest and validation
window predicts through.

Compiling the trees to machine code was measured for forecast partitions (issue 26) and lost:
lleaves 1.3 took 157 s to compile the full-scale model of 176 trees and then predicted one
partition's 853,720 rows in 12.6 s against LightGBM's 5.8 s on 2 cores, with the same output
(to 1e-14). So LightGBM predicts, on every core (its OpenMP default).
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np


def predict(booster: lgb.Booster, matrix: np.ndarray) -> np.ndarray:
    """``booster``'s output on ``matrix`` (the feature rows of ``model.matrix``, either order)."""
    out = booster.predict(matrix)
    assert isinstance(out, np.ndarray)  # sparse only for feature contributions
    return out
