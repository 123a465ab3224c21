"""The long table: one row per series and day, built on the series-by-day grid.

Rows are ordered by series id, then day, and that order is part of the contract: the feature
builder reads the table back as a dense grid without sorting it.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from m5_assets.grid import SERIES_COLUMNS, daily_prices, dictionary_array, read_calendar, read_series, snap_by_state
from m5_assets.warehouse import Warehouse

ROWS_PER_BLOCK = 2_000_000
DICTIONARY_COLUMNS = SERIES_COLUMNS + ["d", "event_name_1", "event_type_1", "event_name_2", "event_type_2"]


def build_sales_long(
    con: duckdb.DuckDBPyConnection, sales: Path, calendar: Path, prices: Path, target: Path, *, storage: Warehouse
) -> None:
    """Unpivot the wide sales, attach calendar, SNAP and prices, and write ``target`` atomically."""
    series, units, day_labels = read_series(sales)
    cal = read_calendar(con, calendar).set_index("d")
    missing = [d for d in day_labels if d not in cal.index]
    if missing:
        raise ValueError(
            f"{calendar}: column 'd' lacks sales days {missing[:5]} (the calendar must cover every sales day)"
        )
    days = cal.loc[day_labels].reset_index()
    n_days = len(days)
    states = sorted(series["state_id"].unique())
    snap = snap_by_state(days, states)
    state_idx = series["state_id"].map({s: k for k, s in enumerate(states)}).to_numpy()
    price = daily_prices(con, prices, series, days["wm_yr_wk"].to_numpy())
    per_block = max(1, ROWS_PER_BLOCK // n_days)
    day_codes = np.arange(n_days)

    def block(rows: slice) -> pa.Table:
        n = len(series.iloc[rows])
        series_codes = np.repeat(np.arange(len(series))[rows], n_days)
        day_of_row = np.tile(day_codes, n)
        columns = {name: dictionary_array(series[name], series_codes) for name in SERIES_COLUMNS}
        columns["date"] = pa.array(days["date"].to_numpy("datetime64[D]")[day_of_row])
        columns["d"] = dictionary_array(days["d"], day_of_row)
        columns["wm_yr_wk"] = pa.array(days["wm_yr_wk"].to_numpy(np.int32)[day_of_row])
        columns["units"] = pa.array(units[rows].ravel())
        columns["sell_price"] = pa.array(price[rows].ravel(), from_pandas=True)
        columns["snap"] = pa.array(snap[state_idx[rows]].ravel())
        for name in ("event_name_1", "event_type_1", "event_name_2", "event_type_2"):
            columns[name] = dictionary_array(days[name], day_of_row)
        return pa.table(columns)

    blocks = (block(slice(start, start + per_block)) for start in range(0, len(series), per_block))
    storage.write_parquet_blocks(target, blocks, dictionary_columns=DICTIONARY_COLUMNS)
