"""The validated long table: one row per series and day, published only once its checks pass."""

from pathlib import Path

import dagster as dg
import duckdb

from m5_assets import tables
from m5_assets.defs.checks import SALES_LONG_CHECKS, publish_checked
from m5_assets.defs.metadata import table_metadata
from m5_assets.defs.resources import M5Data
from m5_assets.defs.results import AssetEvents
from m5_assets.long_table import build_sales_long


def _describe(con: duckdb.DuckDBPyConnection, path: Path, _: None) -> dict:
    metadata = table_metadata(con, path, tables.SALES_LONG.describe)
    zero_share, mean_units, released = con.sql(
        f"SELECT avg((units = 0)::DOUBLE), avg(units), avg((sell_price IS NOT NULL)::DOUBLE) FROM read_parquet('{path}')"
    ).fetchall()[0]
    return metadata | {
        "zero_share": round(zero_share, 4),
        "mean_units_per_series_day": round(mean_units, 4),
        "share_of_rows_with_price": round(released, 4),
    }


@dg.asset(
    group_name="sales",
    kinds={"duckdb", "parquet"},
    deps=[tables.RAW_SALES.name, tables.RAW_CALENDAR.name, tables.RAW_SELL_PRICES.name],
    description=tables.SALES_LONG.description,
    check_specs=[check.spec(tables.SALES_LONG.name) for check in SALES_LONG_CHECKS],
)
def sales_long(context: dg.AssetExecutionContext, m5_data: M5Data) -> AssetEvents:
    def build(con: duckdb.DuckDBPyConnection, target: Path) -> None:
        build_sales_long(
            con,
            m5_data.table(tables.RAW_SALES),
            m5_data.table(tables.RAW_CALENDAR),
            m5_data.table(tables.RAW_SELL_PRICES),
            target,
            storage=m5_data.storage,
        )

    metadata = yield from publish_checked(context, m5_data, tables.SALES_LONG, build, SALES_LONG_CHECKS, _describe)
    yield dg.MaterializeResult(metadata=metadata)
