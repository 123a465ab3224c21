"""The data folder as a Dagster resource: raw files in, warehouse tables out."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import duckdb

from m5_assets import ingest, warehouse
from m5_assets.settings import DATA_DIR_ENV, DataPaths, data_paths
from m5_assets.validation.raw_rules import RawTable

RAW_TABLES = ("raw_calendar", "raw_sell_prices", "raw_sales")


class M5Data(dg.ConfigurableResource):
    """Where the pipeline reads and writes; every path derives from ``data_dir``."""

    data_dir: str
    duckdb_memory_limit: str = "12GB"

    @property
    def paths(self) -> DataPaths:
        return data_paths(self.data_dir)

    def raw_files(self) -> ingest.RawFiles:
        return ingest.locate_raw_files(self.paths.raw)

    def table(self, name: str) -> Path:
        """Data file of an unpartitioned warehouse table."""
        return warehouse.table_path(self.paths.warehouse, name)

    def raw_table(self, name: str) -> RawTable:
        """A typed raw table together with the name of the file it was read from."""
        files = self.raw_files()
        source = {"raw_calendar": files.calendar, "raw_sell_prices": files.prices, "raw_sales": files.sales}[name]
        return RawTable(self.table(name), source.name)

    def connect(self) -> duckdb.DuckDBPyConnection:
        return warehouse.connect(self.paths.root / "tmp" / "duckdb", self.duckdb_memory_limit)


def default_data_resource() -> M5Data:
    """The resource for ``$M5_DATA_DIR`` (default ``./data``), resolved when definitions load."""
    return M5Data(data_dir=os.fspath(data_paths(os.environ.get(DATA_DIR_ENV)).root))
