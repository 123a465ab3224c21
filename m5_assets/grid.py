"""The series-by-day grid: the shape every M5 table has, and the arrays both builders share.

Sales are a complete grid (every series has a value for every day), and calendar and prices are
small tables keyed by day and by (store, item, week). Building on that shape — a dense units
matrix, per-day arrays, a series-by-week price matrix indexed by each day's week — needs no
join or sort of the 59 million rows that the full data set has in long form.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from m5_assets import tables

SERIES_COLUMNS = list(tables.SERIES_COLUMNS)


def read_series(raw_sales: Path) -> tuple[pd.DataFrame, np.ndarray, list[str]]:
    """Series (sorted by id), their units as a series x day matrix, and the day labels."""
    table = pq.read_table(raw_sales)
    days = [c for c in table.column_names if c.startswith("d_")]
    series = table.select(SERIES_COLUMNS).to_pandas()
    order = np.argsort(series["id"].to_numpy(), kind="stable")
    units = np.empty((len(series), len(days)), dtype=np.int32)
    for k, day in enumerate(days):
        units[:, k] = table.column(day).to_numpy()[order]
    return series.iloc[order].reset_index(drop=True), units, days


def read_calendar(con: duckdb.DuckDBPyConnection, calendar: Path) -> pd.DataFrame:
    """The calendar ordered by date, dates as timestamps."""
    frame = con.sql(f"SELECT * FROM read_parquet('{calendar}') ORDER BY date").df()
    frame["date"] = pd.to_datetime(frame["date"])
    return frame


def snap_by_state(days: pd.DataFrame, states: list[str]) -> np.ndarray:
    """States x days matrix of SNAP flags from the calendar's ``snap_<STATE>`` columns."""
    return np.stack([days[f"snap_{state}"].to_numpy(np.int8) for state in states])


def weekly_prices(con: duckdb.DuckDBPyConnection, prices: Path, series: pd.DataFrame, weeks: np.ndarray) -> np.ndarray:
    """Series x week matrix of shelf prices for the given (sorted) weeks; NaN where unpriced."""
    keys = series[["store_id", "item_id"]].assign(series_idx=np.arange(len(series)))
    week_index = pd.DataFrame({"wm_yr_wk": weeks, "week_idx": np.arange(len(weeks))})
    con.register("grid_series_keys", keys)
    con.register("grid_week_index", week_index)
    try:
        rows = con.sql(
            f"""SELECT k.series_idx, w.week_idx, p.sell_price FROM read_parquet('{prices}') p
                JOIN grid_series_keys k USING (store_id, item_id) JOIN grid_week_index w USING (wm_yr_wk)"""
        ).fetchnumpy()
    finally:
        con.unregister("grid_series_keys")
        con.unregister("grid_week_index")
    by_week = np.full((len(series), len(weeks)), np.nan)
    by_week[rows["series_idx"], rows["week_idx"]] = rows["sell_price"]
    return by_week


def daily_prices(
    con: duckdb.DuckDBPyConnection, prices: Path, series: pd.DataFrame, day_weeks: np.ndarray
) -> np.ndarray:
    """Series x day matrix of each day's shelf price (NaN where its week has none)."""
    weeks = np.unique(day_weeks)
    return weekly_prices(con, prices, series, weeks)[:, np.searchsorted(weeks, day_weeks)]


def dictionary_array(values: pd.Series | np.ndarray, codes: np.ndarray) -> pa.DictionaryArray:
    """``values[codes]`` with each distinct string stored once (int32 codes); nulls stay null.

    The dictionary is built from all of ``values``, so blocks of one table share it.
    """
    categories = pd.Categorical(values)
    indices = categories.codes[codes]
    return pa.DictionaryArray.from_arrays(
        pa.array(indices, mask=indices < 0, type=pa.int32()),
        pa.array(categories.categories.astype(str), type=pa.string()),
    )


def by_text(column: pd.Series, lookup: Callable[[pd.Index], np.ndarray]) -> np.ndarray:
    """``lookup`` of each row's value as text, one result per row.

    A key column of the feature store arrives as categories: ``lookup`` then sees each category's
    text once and its results are spread by the rows' codes. Casting every row to text instead (a
    full-scale partition holds 853,720 rows per key column) was most of what placing forecasts,
    looking up origin levels and writing the key columns cost. A column with nulls is cast row by
    row, so a null reads as "nan".
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        codes = column.cat.codes.to_numpy()
        if (codes >= 0).all():
            return np.asarray(lookup(pd.Index(column.cat.categories.astype(str))))[codes]
    return np.asarray(lookup(pd.Index(column.astype(str))))


def as_text(column: pd.Series) -> np.ndarray:
    """Each row's value as a Python string (``by_text``)."""
    return by_text(column, lambda values: values.to_numpy(dtype=object))
