"""The feature store built by store group: each group writes its own stores' files of one
unpublished generation, and combining checks that the groups fit together; publishing the
generation is then one manifest write (``table_files``), with no row rewritten.

A series' features depend on its own sales and prices, the calendar and its state's SNAP days
only, so a group computes its series exactly as a build of every store does.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq

from m5_assets.features.build import FeatureStats, load_inputs, with_genuine_days, write_store_features
from m5_assets.table_files import StoreFiles
from m5_assets.warehouse import Warehouse


@dataclass(frozen=True)
class FeatureGroup:
    """The stores one step computes, and the generation of the feature store it writes them into."""

    generation: str
    stores: tuple[str, ...]
    every_store: bool = False  # the only group: its series are the whole long table's, unfiltered


@dataclass(frozen=True)
class StagedGroup:
    """A group's part of a generation: its stores' files, its capped days, the days covered."""

    generation: str
    stores: tuple[str, ...]
    series: int
    rows: int
    capped: str  # Parquet file of the group's capped days
    first_date: str
    last_date: str
    last_sales_date: str


def build_feature_group(
    con: duckdb.DuckDBPyConnection,
    sales_long: Path,
    calendar: Path,
    prices: Path,
    files: StoreFiles,
    folder: Path,
    genuine_days: Path | None = None,
    *,
    storage: Warehouse,
    every_store: bool = False,
) -> StagedGroup:
    """Compute the feature rows of the series of ``files``' stores into those files, and stage
    the capped days in ``folder``; each file is written atomically. With ``every_store`` the
    stores are the long table's all, which is then read without a filter."""
    stores = None if every_store else files.stores
    inputs = with_genuine_days(load_inputs(con, sales_long, calendar, prices, stores), genuine_days)
    stats = write_store_features(inputs, files, storage=storage)
    capped = folder / "capped.parquet"
    storage.write_with(capped, lambda partial: stats.capped.to_parquet(partial, index=False))
    days = (str(d.date()) for d in (stats.first_date, stats.last_date, stats.last_sales_date))
    return StagedGroup(files.generation, files.stores, stats.series, stats.rows, str(capped), *days)


def combine_feature_groups(groups: Sequence[StagedGroup], files: StoreFiles) -> FeatureStats:
    """The statistics of the generation ``files`` that ``groups`` wrote together, once it is
    sure they cover its stores once each, over the same days."""
    if len({(g.first_date, g.last_date, g.last_sales_date) for g in groups}) != 1:
        raise ValueError(
            "feature groups cover different days: "
            + "; ".join(f"{g.stores[0]} ..: {g.first_date} .. {g.last_date}" for g in groups)
        )
    stores = [store for g in groups for store in g.stores]
    if sorted(stores) != list(files.stores) or {g.generation for g in groups} != {files.generation}:
        raise ValueError(
            f"{files.folder}: the groups wrote stores {sorted(stores)} of generations {sorted({g.generation for g in groups})}; "
            f"generation {files.generation} holds {files.stores}"
        )
    first = groups[0]
    return FeatureStats(
        rows=sum(g.rows for g in groups),
        series=sum(g.series for g in groups),
        first_date=pd.Timestamp(dt.date.fromisoformat(first.first_date)),
        last_date=pd.Timestamp(dt.date.fromisoformat(first.last_date)),
        last_sales_date=pd.Timestamp(dt.date.fromisoformat(first.last_sales_date)),
        capped=pd.concat([pq.read_table(g.capped).to_pandas() for g in groups], ignore_index=True),
    )
