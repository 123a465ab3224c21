"""The validated long table: one row per series and day."""

from __future__ import annotations

import dagster as dg

from m5_assets import tables
from m5_assets.defs.metadata import table_metadata
from m5_assets.defs.resources import M5Data
from m5_assets.long_table import build_sales_long


@dg.asset(
    group_name="sales",
    kinds={"duckdb", "parquet"},
    deps=[tables.RAW_SALES.name, tables.RAW_CALENDAR.name, tables.RAW_SELL_PRICES.name],
    description=tables.SALES_LONG.description,
)
def sales_long(m5_data: M5Data) -> dg.MaterializeResult:
    con = m5_data.connect()
    target = m5_data.table(tables.SALES_LONG)
    build_sales_long(con, m5_data.table(tables.RAW_SALES), m5_data.table(tables.RAW_CALENDAR), m5_data.table(tables.RAW_SELL_PRICES), target)
    metadata = table_metadata(con, target, tables.SALES_LONG.describe)
    scan = f"read_parquet('{target}')"
    zero_share, mean_units, released = con.sql(
        f"SELECT avg((units = 0)::DOUBLE), avg(units), avg((sell_price IS NOT NULL)::DOUBLE) FROM {scan}"
    ).fetchall()[0]
    metadata.update(
        {
            "zero_share": round(zero_share, 4),
            "mean_units_per_series_day": round(mean_units, 4),
            "share_of_rows_with_price": round(released, 4),
        }
    )
    return dg.MaterializeResult(metadata=metadata)
