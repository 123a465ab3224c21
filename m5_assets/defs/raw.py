"""Raw assets: each Kaggle file read under its contract into a typed Parquet copy.

Reading is itself a check (``parses``): a missing column, a value of the wrong type or a short
row fails it with the file, column and rule. The copy is then checked (``defs/checks.py``) and
published only if every check passes; otherwise the last good copy stays.
"""

from collections.abc import Callable
from pathlib import Path

import dagster as dg
import duckdb

from m5_assets import ingest, raw_files, tables
from m5_assets.defs.checks import RAW_CHECKS, BlockingCheck, Refused, publish_checked
from m5_assets.defs.metadata import table_metadata
from m5_assets.defs.resources import M5Data
from m5_assets.defs.results import AssetEvents
from m5_assets.tables import Table
from m5_assets.validation.violations import DataValidationError, describe

PARSES = "parses"
# Reaching the checks means the file was read under its contract.
_PARSED = BlockingCheck(
    PARSES,
    "every column of the Kaggle schema is there and every value parses as its type",
    lambda m5_data, con, staged, source: dg.AssetCheckResult(passed=True, metadata={"file": str(source)}),
)


def _raw_asset(
    table: Table, pick: Callable[[raw_files.RawFiles], Path], types: Callable[[list[str]], dict]
) -> dg.AssetsDefinition:
    name = table.name
    checks = [_PARSED, *RAW_CHECKS[name]]

    @dg.asset(
        name=name,
        group_name="raw",
        kinds={"csv", "parquet", "duckdb"},
        description=table.description,
        # A check across files reads the other tables as this run publishes them.
        deps=sorted({t.name for check in checks for t in check.reads}),
        check_specs=[check.spec(name) for check in checks],
    )
    def _asset(context: dg.AssetExecutionContext, m5_data: M5Data) -> AssetEvents:
        def build(con: duckdb.DuckDBPyConnection, target: Path) -> Path:
            try:
                source = pick(m5_data.raw_files())
            except FileNotFoundError as error:
                raise Refused(PARSES, dg.AssetCheckResult(passed=False, description=str(error)), str(error)) from error
            try:
                ingest.copy_raw_csv(con, source, types(raw_files.read_header(source)), target, storage=m5_data.storage)
            except DataValidationError as error:
                result = dg.AssetCheckResult(
                    passed=False,
                    description=str(error)[:2000],
                    metadata={"file": str(source), "violations": dg.MetadataValue.md(describe(error.violations))},
                )
                raise Refused(PARSES, result, f"{source} does not match its contract:\n{error}") from error
            return source

        metadata = yield from publish_checked(context, m5_data, table, build, checks, _describe(table))
        yield dg.MaterializeResult(metadata=metadata)

    return _asset


def _describe(table: Table) -> Callable[[duckdb.DuckDBPyConnection, Path, Path], dict]:
    def describe_copy(con: duckdb.DuckDBPyConnection, path: Path, source: Path) -> dict:
        metadata = table_metadata(con, path, table.describe)
        days = [c for c in metadata["dagster/column_schema"].columns if raw_files.DAY_COLUMN.match(c.name)]
        if days:  # the wide sales file: its days are columns, dated by the calendar
            metadata |= {"days": len(days), "first_day": days[0].name, "last_day": days[-1].name}
        metadata["source_file"] = dg.MetadataValue.path(str(source))
        metadata["source_size_mb"] = round(source.stat().st_size / 2**20, 2)
        return metadata

    return describe_copy


raw_calendar = _raw_asset(tables.RAW_CALENDAR, lambda files: files.calendar, ingest.calendar_types)
raw_sell_prices = _raw_asset(tables.RAW_SELL_PRICES, lambda files: files.prices, lambda header: ingest.PRICES_TYPES)
raw_sales = _raw_asset(tables.RAW_SALES, lambda files: files.sales, ingest.sales_types)
