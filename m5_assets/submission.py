"""A stored forecast in the layout of the Kaggle M5 submission file.

One row per series and suffix: ``id`` then ``F1`` .. ``F28``. As in the competition's final phase,
the ``_evaluation`` rows carry the forecast of the 28 days from the forecast date, and the
``_validation`` rows the 28 days before it, which are known by then (their units sold).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

HORIZON = 28
SUFFIXES = ("_validation", "_evaluation")
COLUMNS = ["id", *(f"F{h}" for h in range(1, HORIZON + 1))]


def series_base(series_id: str) -> str:
    """The id without the suffix the sales file gave it (``FOODS_1_001_CA_1``)."""
    for suffix in SUFFIXES:
        if series_id.endswith(suffix):
            return series_id.removesuffix(suffix)
    return series_id


def _by_horizon(frame: pd.DataFrame, value: str, first: dt.date, what: str) -> pd.DataFrame:
    """``value`` of each id on the 28 days from ``first``, a column per day, ids sorted."""
    days = pd.to_datetime(frame["date"]).dt.date
    horizon = np.array([(d - first).days for d in days])
    inside = (horizon >= 0) & (horizon < HORIZON)
    wide = frame[inside].assign(h=horizon[inside]).pivot(index="id", columns="h", values=value)
    wide = wide.reindex(columns=range(HORIZON))
    gaps = sorted({int(h) for h in np.nonzero(wide.isna().to_numpy())[1]})
    if gaps:
        days_missing = [str(first + dt.timedelta(days=h)) for h in gaps[:5]]
        raise ValueError(f"{what}: no {value} for every series on {days_missing} (28 days from {first} are needed)")
    wide.columns = COLUMNS[1:]
    return wide


def submission(forecasts: pd.DataFrame, known: pd.DataFrame, forecast_date: dt.date) -> pd.DataFrame:
    """The submission file of the forecast issued on ``forecast_date``: ``forecasts`` (id, date,
    forecast: its bottom level) and ``known`` (id, date, units of the 28 days before it). The
    ``_validation`` rows come first, then the ``_evaluation`` rows, each in id order."""
    forecast = _by_horizon(forecasts, "forecast", forecast_date, f"the forecast of {forecast_date}")
    actual = _by_horizon(known, "units", forecast_date - dt.timedelta(days=HORIZON), "the sales before it")
    forecast.index = forecast.index.map(series_base)
    actual.index = actual.index.map(series_base)
    lacking = forecast.index.difference(actual.index)
    if len(lacking):
        raise ValueError(f"the sales before {forecast_date}: no units of {list(lacking[:5])}")
    rows = []
    for suffix, values in (("_validation", actual.loc[forecast.index]), ("_evaluation", forecast)):
        rows.append(values.rename(index=lambda base, s=suffix: f"{base}{s}").rename_axis("id").reset_index())
    return pd.concat(rows, ignore_index=True)[COLUMNS]


def to_csv(frame: pd.DataFrame) -> str:
    """The file's text: units to 3 decimals, as the API serves them."""
    return frame.to_csv(index=False, float_format="%.3f", lineterminator="\n")
