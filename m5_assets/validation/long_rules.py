"""Rules on the long table."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from m5_assets import tables
from m5_assets.validation.outliers import MULTIPLE, far_outside_history
from m5_assets.validation.violations import MAX_EXAMPLES, Violation
from m5_assets.warehouse import scalar

LONG_FILE = tables.SALES_LONG.name


def grid_complete(con: duckdb.DuckDBPyConnection, sales_long: Path, raw_sales: Path) -> list[Violation]:
    """Rows equal series times days of the raw sales; units never null; prices positive."""
    scan = f"read_parquet('{sales_long}')"
    n_series = scalar(con, f"SELECT count(*) FROM read_parquet('{raw_sales}')")
    n_days = sum(1 for c in con.sql(f"SELECT * FROM read_parquet('{raw_sales}') LIMIT 0").columns if c.startswith("d_"))
    found = []
    rows, series, days = con.sql(f"SELECT count(*), count(DISTINCT id), count(DISTINCT date) FROM {scan}").fetchall()[0]
    if (rows, series, days) != (n_series * n_days, n_series, n_days):
        found.append(
            Violation(
                LONG_FILE, "id, date",
                f"must hold one row per series and day: expected {n_series} x {n_days} = {n_series * n_days}, "
                f"found {rows} rows over {series} series and {days} days",
                abs(rows - n_series * n_days),
            )
        )  # fmt: skip
    for column, rule, where in (
        ("units", "units must never be null", "units IS NULL"),
        ("sell_price", "prices must be positive where present", "sell_price <= 0"),
    ):
        count = scalar(con, f"SELECT count(*) FROM {scan} WHERE {where}")
        if count:
            examples = con.sql(f"SELECT id, date, units, sell_price FROM {scan} WHERE {where} LIMIT 5").df()
            found.append(Violation(LONG_FILE, column, rule, int(count), examples))
    return found


def units_grid(con: duckdb.DuckDBPyConnection, sales_long: Path) -> tuple[pd.Index, pd.DatetimeIndex, np.ndarray]:
    """Series ids, days and the series x day units matrix (the table is ordered by id, then date)."""
    scan = f"read_parquet('{sales_long}')"
    ids = pd.Index(con.sql(f"SELECT DISTINCT id FROM {scan} ORDER BY id").df()["id"].astype(str))
    dates = pd.DatetimeIndex(con.sql(f"SELECT DISTINCT date FROM {scan} ORDER BY date").df()["date"])
    units = con.sql(f"SELECT units FROM {scan}").fetchnumpy()["units"]
    return ids, dates, np.asarray(units).reshape(len(ids), len(dates))


def units_within_history(con: duckdb.DuckDBPyConnection, sales_long: Path, multiple: float = MULTIPLE) -> list[Violation]:
    """Series-days far outside their series' own history (see ``validation.outliers``)."""
    ids, dates, units = units_grid(con, sales_long)
    found = far_outside_history(units, ids, dates, multiple)
    if found.empty:
        return []
    rule = f"units must stay within {multiple:g} x (the series' 90th percentile over its quarter + 1)"
    return [Violation(LONG_FILE, "units", rule, len(found), found.head(MAX_EXAMPLES))]
