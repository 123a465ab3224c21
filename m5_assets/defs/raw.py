"""Raw assets: each Kaggle file read under its contract into a typed Parquet copy.

Reading is itself a check (``parses``): a missing column, a value of the wrong type or a short
row fails it with the file, column and rule, and the asset is not materialized.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import dagster as dg

from m5_assets import ingest
from m5_assets.defs.metadata import table_metadata
from m5_assets.defs.resources import M5Data
from m5_assets.validation.violations import DataValidationError, describe

PARSES = "parses"


def _raw_asset(name: str, pick: Callable[[ingest.RawFiles], Path], types: Callable[[list[str]], dict], about: str):
    @dg.asset(
        name=name,
        group_name="raw",
        kinds={"csv", "parquet", "duckdb"},
        description=about,
        check_specs=[
            dg.AssetCheckSpec(
                PARSES, asset=name, blocking=True,
                description="every column of the Kaggle schema is there and every value parses as its type",
            )
        ],
    )  # fmt: skip
    def _asset(m5_data: M5Data):
        try:
            source = pick(m5_data.raw_files())
        except FileNotFoundError as error:
            yield dg.AssetCheckResult(check_name=PARSES, passed=False, description=str(error))
            raise dg.Failure(description=str(error)) from error
        target = m5_data.table(name)
        con = m5_data.connect()
        try:
            ingest.copy_raw_csv(con, source, types(ingest.read_header(source)), target)
        except DataValidationError as error:
            yield dg.AssetCheckResult(
                check_name=PARSES, passed=False, description=str(error)[:2000],
                metadata={"file": str(source), "violations": dg.MetadataValue.md(describe(error.violations))},
            )  # fmt: skip
            raise dg.Failure(description=f"{source} does not match its contract:\n{error}") from error
        metadata = table_metadata(con, target)
        metadata["source_file"] = dg.MetadataValue.path(str(source))
        metadata["source_size_mb"] = round(source.stat().st_size / 2**20, 2)
        yield dg.MaterializeResult(
            metadata=metadata,
            check_results=[dg.AssetCheckResult(check_name=PARSES, passed=True, metadata={"file": str(source)})],
        )

    return _asset


raw_calendar = _raw_asset(
    "raw_calendar",
    lambda files: files.calendar,
    ingest.calendar_types,
    "calendar.csv: one row per day with Walmart week, events and SNAP flags per state.",
)
raw_sell_prices = _raw_asset(
    "raw_sell_prices",
    lambda files: files.prices,
    lambda header: ingest.PRICES_TYPES,
    "sell_prices.csv: weekly shelf price per store and item.",
)
raw_sales = _raw_asset(
    "raw_sales",
    lambda files: files.sales,
    ingest.sales_types,
    "sales_train_evaluation.csv (or _validation): daily units per item-store, one column per day.",
)
