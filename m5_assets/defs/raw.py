"""Raw assets: each Kaggle file read under its contract into a typed Parquet copy.

Reading is itself a check (``parses``): a missing column, a value of the wrong type or a short
row fails it with the file, column and rule, and the asset is not materialized.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from m5_assets import ingest, raw_files, tables
from m5_assets.tables import Table
from m5_assets.defs.check_log import recorded
from m5_assets.defs.metadata import table_metadata
from m5_assets.defs.resources import M5Data
from m5_assets.validation.violations import DataValidationError, describe

PARSES = "parses"


def _raw_asset(table: Table, pick: Callable[[raw_files.RawFiles], Path], types: Callable[[list[str]], dict]):
    name = table.name

    @dg.asset(
        name=name,
        group_name="raw",
        kinds={"csv", "parquet", "duckdb"},
        description=table.description,
        check_specs=[
            dg.AssetCheckSpec(
                PARSES, asset=name, blocking=True,
                description="every column of the Kaggle schema is there and every value parses as its type",
            )
        ],
    )  # fmt: skip
    def _asset(context, m5_data: M5Data):
        try:
            source = pick(m5_data.raw_files())
        except FileNotFoundError as error:
            yield recorded(m5_data, context, name, PARSES, dg.AssetCheckResult(check_name=PARSES, passed=False, description=str(error)))
            raise dg.Failure(description=str(error)) from error
        target = m5_data.table(table)
        con = m5_data.connect()
        try:
            ingest.copy_raw_csv(con, source, types(raw_files.read_header(source)), target)
        except DataValidationError as error:
            yield recorded(m5_data, context, name, PARSES, dg.AssetCheckResult(
                check_name=PARSES, passed=False, description=str(error)[:2000],
                metadata={"file": str(source), "violations": dg.MetadataValue.md(describe(error.violations))},
            ))  # fmt: skip
            raise dg.Failure(description=f"{source} does not match its contract:\n{error}") from error
        metadata = table_metadata(con, target, table.describe)
        days = [c for c in metadata["dagster/column_schema"].columns if raw_files.DAY_COLUMN.match(c.name)]
        if days:  # the wide sales file: its days are columns, dated by the calendar
            metadata |= {"days": len(days), "first_day": days[0].name, "last_day": days[-1].name}
        metadata["source_file"] = dg.MetadataValue.path(str(source))
        metadata["source_size_mb"] = round(source.stat().st_size / 2**20, 2)
        yield dg.MaterializeResult(
            metadata=metadata,
            check_results=[recorded(m5_data, context, name, PARSES, dg.AssetCheckResult(check_name=PARSES, passed=True, metadata={"file": str(source)}))],
        )

    return _asset


raw_calendar = _raw_asset(tables.RAW_CALENDAR, lambda files: files.calendar, ingest.calendar_types)
raw_sell_prices = _raw_asset(tables.RAW_SELL_PRICES, lambda files: files.prices, lambda header: ingest.PRICES_TYPES)
raw_sales = _raw_asset(tables.RAW_SALES, lambda files: files.sales, ingest.sales_types)
