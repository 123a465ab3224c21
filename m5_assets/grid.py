"""The series-by-day grid: the shape every M5 table has, and the arrays both builders share.

Sales are a complete grid (every series has a value for every day), and calendar and prices are
small tables keyed by day and by (store, item, week). Building on that shape — a dense units
matrix, per-day arrays, a series-by-week price matrix indexed by each day's week — needs no
join or sort of the 59 million rows that the full data set has in long form.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass(frozen=True)
class DailyPrices:
    """Series x day shelf prices (NaN where a day's week has none), held by week: indexed like
    the matrix (``prices[rows]``, ``prices[rows, days]``), it spreads only the days asked for. The
    whole matrix, spread up front, was 470 MB at full scale and took a second before any feature
    could be computed."""

    by_week: np.ndarray  # series x week
    week_of_day: np.ndarray  # each day's column of ``by_week``

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.by_week), len(self.week_of_day)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, days = key if isinstance(key, tuple) else (key, slice(None))
        return self.by_week[rows][:, self.week_of_day[days]]


def daily_prices(
    con: duckdb.DuckDBPyConnection, prices: Path, series: pd.DataFrame, day_weeks: np.ndarray
) -> DailyPrices:
    """Each day's shelf price of each series, for the days whose weeks are ``day_weeks``."""
    weeks = np.unique(day_weeks)
    return DailyPrices(weekly_prices(con, prices, series, weeks), np.searchsorted(weeks, day_weeks))


@dataclass(frozen=True)
class Dictionary:
    """A text column's distinct values, found once: every block of a table takes codes into the
    same values, as a Parquet file's blocks share one dictionary per column."""

    codes: np.ndarray  # each row's code (int32), -1 where the row is null
    values: pa.Array  # the distinct strings
    has_nulls: bool

    @classmethod
    def of(cls, column: pd.Series | np.ndarray) -> Dictionary:
        categories = pd.Categorical(column)
        codes = categories.codes.astype(np.int32)
        return cls(codes, pa.array(categories.categories.astype(str), type=pa.string()), bool((codes < 0).any()))

    def array(self, codes: np.ndarray) -> pa.DictionaryArray:
        """The rows whose codes (taken from :attr:`codes`) are ``codes``; a -1 is a null."""
        mask = codes < 0 if self.has_nulls else None
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=mask, type=pa.int32()), self.values)


def arrow_array(values: np.ndarray, missing: np.ndarray | None = None) -> pa.Array:
    """``values`` (one dimension) as an Arrow array of their type, null where ``missing`` (by
    default, where a float value is NaN); the values themselves are not copied.

    The validity bitmap is packed here: pyarrow's own NaN scan (``from_pandas=True``) took 20 times
    as long, 4 of the 27 s the full-scale features took on their main thread.
    """
    values = np.ascontiguousarray(values)
    if missing is None:
        if values.dtype.kind != "f":
            return pa.array(values)
        missing = np.isnan(values)
    nulls = int(np.count_nonzero(missing))
    if not nulls:
        return pa.array(values)
    bitmap = pa.py_buffer(np.packbits(~missing, bitorder="little"))
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [bitmap, pa.py_buffer(values)], nulls)


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
