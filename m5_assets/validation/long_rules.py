"""Rules on the long table."""

from __future__ import annotations

from pathlib import Path

import duckdb

from m5_assets import tables
from m5_assets.validation.violations import Violation
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
                LONG_FILE,
                "id, date",
                f"must hold one row per series and day: expected {n_series} x {n_days} = {n_series * n_days}, "
                f"found {rows} rows over {series} series and {days} days",
                abs(rows - n_series * n_days),
            )
        )
    for column, rule, where in (
        ("units", "units must never be null", "units IS NULL"),
        ("sell_price", "prices must be positive where present", "sell_price <= 0"),
    ):
        count = scalar(con, f"SELECT count(*) FROM {scan} WHERE {where}")
        if count:
            examples = con.sql(f"SELECT id, date, units, sell_price FROM {scan} WHERE {where} LIMIT 5").df()
            found.append(Violation(LONG_FILE, column, rule, int(count), examples))
    return found
