"""The long table: one row per series and day, built in DuckDB from the typed raw tables."""

from __future__ import annotations

from pathlib import Path

import duckdb

from m5_assets.warehouse import copy_query_to_parquet

SERIES_COLUMNS = ["id", "item_id", "dept_id", "cat_id", "store_id", "state_id"]
LONG_COLUMNS = SERIES_COLUMNS + [
    "date", "d", "wm_yr_wk", "units", "sell_price", "snap",
    "event_name_1", "event_type_1", "event_name_2", "event_type_2",
]  # fmt: skip

COLUMN_DESCRIPTIONS = {
    "id": "series id: item_id + store_id + _validation/_evaluation",
    "item_id": "item (department + number)",
    "dept_id": "department (category + number)",
    "cat_id": "category: FOODS, HOBBIES, HOUSEHOLD",
    "store_id": "store (state + number)",
    "state_id": "state: CA, TX, WI",
    "date": "calendar day",
    "d": "Kaggle day label d_<k>",
    "wm_yr_wk": "Walmart week (1 + fiscal year + week)",
    "units": "units sold that day",
    "sell_price": "shelf price that week; null before the item is sold at the store",
    "snap": "1 if that day is a SNAP day in the series' state",
    "event_name_1": "first event of the day",
    "event_type_1": "its type: Cultural, National, Religious, Sporting",
    "event_name_2": "second event of the day, if any",
    "event_type_2": "its type",
}


def long_table_query(sales: str, calendar: str, prices: str, snap_states: list[str]) -> str:
    """SQL for the long table from three table expressions; rows ordered by series, then day.

    The order is part of the contract: the feature builder reads the table as a dense
    series-by-day grid without sorting it again.
    """
    snap_case = " ".join(f"WHEN '{state}' THEN c.snap_{state}" for state in snap_states)
    return f"""
        WITH long AS (
            SELECT * FROM {sales} UNPIVOT INCLUDE NULLS (units FOR d IN (COLUMNS('^d_[0-9]+$')))
        )
        SELECT l.id, l.item_id, l.dept_id, l.cat_id, l.store_id, l.state_id,
               c.date, l.d, c.wm_yr_wk, l.units, p.sell_price,
               CAST(CASE l.state_id {snap_case} END AS TINYINT) AS snap,
               c.event_name_1, c.event_type_1, c.event_name_2, c.event_type_2
        FROM long l
        JOIN {calendar} c ON c.d = l.d
        LEFT JOIN {prices} p
          ON p.store_id = l.store_id AND p.item_id = l.item_id AND p.wm_yr_wk = c.wm_yr_wk
        ORDER BY l.id, c.date
    """


def build_sales_long(con: duckdb.DuckDBPyConnection, sales: Path, calendar: Path, prices: Path, target: Path) -> None:
    """Unpivot the wide sales, attach calendar, SNAP and prices, and write ``target`` atomically."""
    calendar_scan = f"read_parquet('{calendar}')"
    snap_states = [
        c.removeprefix("snap_") for c in con.sql(f"SELECT * FROM {calendar_scan} LIMIT 0").columns if c.startswith("snap_")
    ]
    query = long_table_query(f"read_parquet('{sales}')", calendar_scan, f"read_parquet('{prices}')", snap_states)
    copy_query_to_parquet(con, query, target)
