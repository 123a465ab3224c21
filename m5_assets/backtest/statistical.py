"""Nixtla statsforecast's intermittent-demand methods and ETS, issued from a series x day history.

Each series' days before its first sale are cut off first: in M5 a leading run of zeros means the
item was not on the shelf yet, and counting those days as "no demand" would drag every method down.
A series with no sale at all forecasts 0.

The models' own ``forecast(y, h)`` is called per series rather than ``StatsForecast`` over a long
frame: the per-series arrays are already at hand, and it skips building and splitting a frame
(280 series: about 0.05 s per origin for Croston, TSB and ADIDA together).
"""

from __future__ import annotations

import numpy as np

# TSB smooths demand size and demand probability separately; 0.1 for both is the textbook
# setting (Teunter, Syntetos and Babai 2011) and matches the weight CrostonClassic uses.
TSB_ALPHA_D, TSB_ALPHA_P = 0.1, 0.1

# ETS: additive error, no trend, additive weekly season ("ANA"), fitted on each series' last
# 364 days. Measured on real_280 at two origins: as accurate as AutoETS choosing among all models
# on the whole history (RMSE 4.83 vs 4.86 and 4.27 vs 4.29), at about 3 s per origin instead of
# 55 to 90 s; the flat SimpleExponentialSmoothingOptimized is faster but misses the weekly
# pattern (RMSE 5.22).
ETS_SPEC, ETS_SEASON, ETS_DAYS = "ANA", 7, 364
# Below four weeks since the first sale ETS cannot fit its season (statsforecast refuses tiny
# series), so the forecast is the mean since the first sale.
ETS_MIN_DAYS = 28

METHODS = ("croston", "tsb", "adida", "ets")


def since_first_sale(values: np.ndarray) -> np.ndarray:
    """The series from its first positive day on (empty if it never sold)."""
    sold = np.flatnonzero(values > 0)
    return values[sold[0] :] if sold.size else values[:0]


def statistical_forecasts(history: np.ndarray, horizon: int) -> dict[str, np.ndarray]:
    """Croston (classic), TSB, ADIDA and ETS forecasts, each a series x ``horizon`` matrix >= 0."""
    from statsforecast.models import ADIDA, TSB, AutoETS, CrostonClassic

    intermittent: dict[str, CrostonClassic | TSB | ADIDA] = {
        "croston": CrostonClassic(),
        "tsb": TSB(alpha_d=TSB_ALPHA_D, alpha_p=TSB_ALPHA_P),
        "adida": ADIDA(),
    }
    ets = AutoETS(model=ETS_SPEC, season_length=ETS_SEASON)
    forecasts = {name: np.zeros((history.shape[0], horizon)) for name in METHODS}
    for row, values in enumerate(history.astype(np.float64)):
        series = since_first_sale(values)
        if not series.size:
            continue
        for name, model in intermittent.items():
            forecasts[name][row] = model.forecast(y=series, h=horizon)["mean"]
        recent = series[-ETS_DAYS:]
        if recent.size < ETS_MIN_DAYS:
            forecasts["ets"][row] = recent.mean()
        else:
            forecasts["ets"][row] = ets.forecast(y=recent, h=horizon)["mean"]
    # ETS's additive season can dip below zero on slow sellers; demand cannot.
    return {name: np.clip(matrix, 0.0, None) for name, matrix in forecasts.items()}
