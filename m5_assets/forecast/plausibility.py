"""Whether an issued forecast stays within a plausible band of its own series' history.

The band of a series on forecast date D is read from its units before D only (as the feature
store holds them: outliers for modelling capped, so a data error does not widen it):

- its 28-day forecast mean at most ``MULTIPLE`` x its highest 28-day rolling mean, and
- every forecast day at most ``MULTIPLE`` x its highest single day.

A series that sold little or nothing yet would have a band of about zero, and any forecast at all
would leave it: a new item forecast at 0.3 a day is what a planner expects, not an alarm. So each
highest is taken as at least ``FLOOR`` (one unit a day): such a series leaves the band only when
forecast above two units on a day or two a day over the month. A healthy forecast, however
uncertain, stays inside; one blown up by bad data or a scaling fault does not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import duckdb
import numpy as np
import pandas as pd

from m5_assets.features.catalog import HORIZON, MIN_LAG
from m5_assets.table_files import TableFiles, TableSource

MULTIPLE = 2.0
FLOOR = 1.0  # units a day: the least either highest is taken to be
HIGHS = ("highest_day", "highest_28d_mean")
MONTH_FEATURE = f"roll_mean_{HORIZON}"


def history_highs(
    con: duckdb.DuckDBPyConnection, features: TableSource, days: Sequence[dt.date]
) -> dict[dt.date, pd.DataFrame]:
    """Per forecast date, each series' highest day and highest 28-day mean of units dated before
    it (by id; NaN where the history holds no such day or window), in one query whatever the
    number of dates.

    The 28-day means are the store's own ``roll_mean_28``: on the row dated t it is the window
    ending ``MIN_LAG`` days before t, so the windows ending before D are on the rows dated before
    D + ``MIN_LAG``. Nothing dated on or after D widens the band.
    """
    first, last = min(days), max(days)
    scan = TableFiles.of(features).scan()
    # Each value goes to the last day before a forecast date it may count for (everything older
    # than the first such day to the day before it); a running max over those days is then the
    # highest before every date of the range, whatever its length.
    frame = con.sql(f"""
        SELECT id, 'highest_day' AS kind, greatest(date, DATE '{first}' - 1) AS upto, max(units) AS high
        FROM {scan} WHERE date < DATE '{last}' GROUP BY ALL
        UNION ALL
        SELECT id, 'highest_28d_mean', greatest(date - {MIN_LAG}, DATE '{first}' - 1), max({MONTH_FEATURE})
        FROM {scan} WHERE date < DATE '{last}' + {MIN_LAG} GROUP BY ALL
    """).df()
    frame["upto"] = pd.to_datetime(frame["upto"]).dt.date
    before = [first - dt.timedelta(days=1) + dt.timedelta(days=k) for k in range((last - first).days + 1)]
    ids = pd.Index(sorted(frame["id"].unique()), name="id")
    running = {
        kind: np.fmax.accumulate(
            part.pivot(index="id", columns="upto", values="high")
            .reindex(index=ids, columns=before)
            .to_numpy(np.float64),
            axis=1,
        )
        for kind, part in frame.groupby("kind")
    }
    at = {day: (day - first).days for day in days}
    return {day: pd.DataFrame({kind: running[kind][:, at[day]] for kind in HIGHS}, index=ids) for day in days}


def floored(highest: pd.Series, ids: pd.Index) -> np.ndarray:
    """``highest`` (by id) for ``ids``, at least ``FLOOR``: a series without history counts as
    having sold ``FLOOR``."""
    return highest.reindex(ids).fillna(0.0).clip(lower=FLOOR).to_numpy(dtype=np.float64)


def band(bottom: pd.DataFrame, highs: pd.DataFrame) -> pd.DataFrame:
    """Each series of ``bottom`` (a forecast partition's rows: id, forecast) against its band
    (``highs``: ``history_highs``' frame of its date). One row per id, farthest out first: the
    forecast's 28-day mean and highest day, the history's (NaN where it has none), each ratio
    (to the highest as judged, at least ``FLOOR``) and ``beyond``: a ratio above ``MULTIPLE``."""
    per = bottom.groupby("id")["forecast"].agg(forecast_28d_mean="mean", forecast_max_day="max")
    known = highs.reindex(per.index)
    # A series whose history holds no full 28 days is judged on its highest day for the month too.
    month = known["highest_28d_mean"].fillna(known["highest_day"])
    out = per.assign(
        highest_28d_mean=known["highest_28d_mean"],
        month_ratio=per["forecast_28d_mean"] / floored(month, per.index),
        highest_day=known["highest_day"],
        day_ratio=per["forecast_max_day"] / floored(known["highest_day"], per.index),
    )
    worst = out[["month_ratio", "day_ratio"]].max(axis=1)
    out = out.assign(beyond=worst > MULTIPLE)
    columns = [
        "forecast_28d_mean",
        "highest_28d_mean",
        "month_ratio",
        "forecast_max_day",
        "highest_day",
        "day_ratio",
        "beyond",
    ]
    return out.iloc[np.argsort(-worst.to_numpy(), kind="stable")][columns].reset_index()
