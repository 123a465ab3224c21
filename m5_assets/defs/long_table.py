"""The validated long table: one row per series and day."""

from __future__ import annotations

import dagster as dg

from m5_assets.defs.metadata import table_metadata
from m5_assets.defs.resources import M5Data
from m5_assets.long_table import COLUMN_DESCRIPTIONS, build_sales_long


@dg.asset(
    group_name="sales",
    kinds={"duckdb", "parquet"},
    deps=["raw_sales", "raw_calendar", "raw_sell_prices"],
    description=(
        "Sales unpivoted to one row per series and day, with calendar, SNAP flag of the series' "
        "state, events and that week's shelf price. Ordered by id, then date."
    ),
)
def sales_long(m5_data: M5Data) -> dg.MaterializeResult:
    con = m5_data.connect()
    target = m5_data.table("sales_long")
    build_sales_long(con, m5_data.table("raw_sales"), m5_data.table("raw_calendar"), m5_data.table("raw_sell_prices"), target)
    metadata = table_metadata(con, target, COLUMN_DESCRIPTIONS)
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
