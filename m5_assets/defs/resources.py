"""The data folder as a Dagster resource: raw files in, warehouse tables out."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import duckdb
from pydantic import Field, PrivateAttr

from m5_assets import raw_files, tables, warehouse
from m5_assets.features.build import FeatureInputs, load_inputs
from m5_assets.settings import DataPaths, data_paths, load_settings
from m5_assets.table_files import TableFiles
from m5_assets.tables import Table
from m5_assets.validation.raw_rules import RawTable
from m5_assets.warehouse import Warehouse, open_warehouse


class M5Data(dg.ConfigurableResource):
    """Where the pipeline reads and writes; every path derives from ``data_dir``."""

    data_dir: str
    # DuckDB spills past this. Building the full-scale feature store peaked at 2.7 GiB, a first
    # run at 6.7 GiB (training), so 6GB keeps every run within the 8 GiB a run is given.
    duckdb_memory_limit: str = "6GB"
    # The warehouse on an object store (s3://bucket/prefix, see object_store.py): each run's
    # process pulls it into the data folder's warehouse first and publishes every file it writes
    # to it. Empty: the data folder's warehouse is the warehouse. Read from M5_WAREHOUSE_URL.
    warehouse_url: str = ""

    _storage: Warehouse | None = PrivateAttr(default=None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        changed = self.storage.pull()
        if self.warehouse_url and context.log is not None:
            context.log.info(f"warehouse {self.storage.display}: {len(changed)} file(s) pulled")

    @property
    def storage(self) -> Warehouse:
        """Where every table this resource's assets write is published (one per resource)."""
        if self._storage is None:
            self._storage = open_warehouse(self.paths.warehouse, self.warehouse_url)
        return self._storage

    @property
    def paths(self) -> DataPaths:
        return data_paths(self.data_dir)

    def raw_files(self) -> raw_files.RawFiles:
        return raw_files.locate_raw_files(self.paths.raw)

    def table(self, table: Table) -> Path:
        """Data file of an unpartitioned warehouse table."""
        return table.path(self.paths.warehouse)

    def files(self, table: Table) -> TableFiles:
        """The files of an unpartitioned table's published version (one, or one per store)."""
        return table.files(self.paths.warehouse)

    def raw_table(self, table: Table) -> RawTable:
        """A typed raw table together with the name of the file it was read from."""
        files = self.raw_files()
        source = {
            tables.RAW_CALENDAR: files.calendar,
            tables.RAW_SELL_PRICES: files.prices,
            tables.RAW_SALES: files.sales,
        }[table]
        return RawTable(self.table(table), source.name)

    def connect(self) -> duckdb.DuckDBPyConnection:
        return warehouse.connect(self.paths.root / "tmp" / "duckdb", self.duckdb_memory_limit)

    def feature_input_paths(self) -> tuple[Path, Path, Path]:
        """The long table, the calendar and the prices: what features and scores are built from."""
        return self.table(tables.SALES_LONG), self.table(tables.RAW_CALENDAR), self.table(tables.RAW_SELL_PRICES)

    def feature_inputs(self, stores: list[str] | None = None) -> FeatureInputs:
        """Sales, calendar and prices (of ``stores`` only, if given) as the dense arrays scoring
        and validation work on."""
        return load_inputs(self.connect(), *self.feature_input_paths(), stores)


class StoreGroups(dg.ConfigurableResource):
    """How many groups of stores a run computes features, forecasts and scores in, one step per
    group: the run's choice (``resources: store_groups: config: count: N`` in its run config),
    defaulting to M5_STORE_GROUPS. The graphs are the same at any count. A resource of its own, so
    a run that changes it gives this block alone and keeps the data folder's configuration."""

    count: int = Field(1, ge=1, description="groups of stores (1: every store in one step)")


def default_store_groups() -> StoreGroups:
    return StoreGroups(count=load_settings().store_groups)


def default_data_resource() -> M5Data:
    """The resource for ``$M5_DATA_DIR`` (default ``./data``), resolved when definitions load."""
    settings = load_settings()
    return M5Data(
        data_dir=os.fspath(settings.paths.root),
        warehouse_url=settings.warehouse_url,
    )
