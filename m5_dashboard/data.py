"""Everything the pages show, read through the read side and cached per file.

Each loader is keyed by the modification time of the files it reads, so a newly published
partition shows on the next rerun without a restart, and an unchanged one is read once. Heavy
aggregations over the long table run in DuckDB and keep only their result.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import duckdb
import pandas as pd
import streamlit as st

from m5_assets import tables
from m5_assets.reader import WarehouseReader, partition_days, read_all_partitions
from m5_assets.settings import data_paths
from m5_assets.tables import LEVELS

HORIZON = 28
LEVEL_KEYS = {level: keys for level, _, keys in LEVELS}
LEVEL_NAMES = {level: name for level, name, _ in LEVELS}
DAGSTER_URL = os.environ.get("M5_DAGSTER_URL", "http://127.0.0.1:3000")
NOTHING_YET = "Nothing to show yet: run `make run` (or materialize the assets in the Dagster UI, `make ui`) first."


def reader() -> WarehouseReader:
    return WarehouseReader(data_paths())


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


def _folder_stamp(root: Path, table: tables.Table) -> tuple:
    folder = table.folder(root)
    return tuple(sorted((p.name, _mtime(p / "data.parquet")) for p in folder.iterdir())) if folder.exists() else ()


def forecast_dates() -> list[dt.date]:
    return partition_days(reader().root, tables.FORECASTS)


@st.cache_data(show_spinner=False, max_entries=16)
def _partition(root: str, table_name: str, day: dt.date, mtime: float) -> pd.DataFrame:
    table = next(t for t in tables.ALL if t.name == table_name)
    return pd.read_parquet(table.path(Path(root), day))


def forecasts(day: dt.date) -> pd.DataFrame:
    root = reader().root
    return _partition(str(root), tables.FORECASTS.name, day, _mtime(tables.FORECASTS.path(root, day)))


def levels(day: dt.date) -> pd.DataFrame:
    root = reader().root
    return _partition(str(root), tables.FORECAST_LEVELS.name, day, _mtime(tables.FORECAST_LEVELS.path(root, day)))


@st.cache_data(show_spinner=False)
def _all(root: str, table_name: str, stamp: tuple) -> pd.DataFrame:
    table = next(t for t in tables.ALL if t.name == table_name)
    return read_all_partitions(Path(root), table)


def accuracy() -> pd.DataFrame:
    root = reader().root
    frame = _all(str(root), tables.FORECAST_ACCURACY.name, _folder_stamp(root, tables.FORECAST_ACCURACY))
    return frame.sort_values(tables.FORECAST_ACCURACY.partition_column).reset_index(drop=True)


def model_cards() -> pd.DataFrame:
    root = reader().root
    return _all(str(root), tables.MODEL_CARDS.name, _folder_stamp(root, tables.MODEL_CARDS))


def check_results() -> pd.DataFrame:
    root = reader().root
    return _all(str(root), tables.CHECK_RESULTS.name, _folder_stamp(root, tables.CHECK_RESULTS))


def has_table(table: tables.Table) -> bool:
    return table.path(reader().root).exists()


@st.cache_data(show_spinner=False)
def _catalog(path: str, mtime: float) -> pd.DataFrame:
    return pd.read_parquet(path)


def feature_catalog() -> pd.DataFrame:
    path = tables.FEATURE_CATALOG.path(reader().root)
    return _catalog(str(path), _mtime(path))


def _long() -> tuple[str, float]:
    path = tables.SALES_LONG.path(reader().root)
    return str(path), _mtime(path)


@st.cache_data(show_spinner=False, max_entries=8)
def _actual_sums(path: str, mtime: float, first: dt.date, last: dt.date, by: tuple[str, ...]) -> pd.DataFrame:
    group = ", ".join(by)
    select = f"{group}, " if by else ""
    return duckdb.connect().execute(
        f"SELECT {select}sum(units)::DOUBLE AS units FROM read_parquet(?) WHERE date BETWEEN ? AND ?"
        + (f" GROUP BY {group} ORDER BY {group}" if by else ""),
        [path, first, last],
    ).df()


def actual_sums(first: dt.date, last: dt.date, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Units sold from ``first`` to ``last`` (both included), summed by the hierarchy columns ``by``."""
    path, mtime = _long()
    return _actual_sums(path, mtime, first, last, by)


@st.cache_data(show_spinner=False, max_entries=64)
def _actual_series(path: str, mtime: float, filters: tuple[tuple[str, str], ...], first: dt.date, last: dt.date) -> pd.DataFrame:
    where = " AND ".join([f"{column} = ?" for column, _ in filters] + ["date BETWEEN ? AND ?"])
    return duckdb.connect().execute(
        f"SELECT date, sum(units)::DOUBLE AS units FROM read_parquet(?) WHERE {where} GROUP BY date ORDER BY date",
        [path, *[v for _, v in filters], first, last],
    ).df()


def actual_series(filters: dict[str, str], first: dt.date, last: dt.date) -> pd.DataFrame:
    """Daily units of the series matching ``filters`` (hierarchy column -> value), summed."""
    path, mtime = _long()
    return _actual_series(path, mtime, tuple(sorted(filters.items())), first, last)


@st.cache_data(show_spinner=False, max_entries=16)
def _sales_history(path: str, mtime: float, series_id: str) -> pd.DataFrame:
    return duckdb.connect().execute(
        "SELECT date, units, sell_price, snap, event_name_1 FROM read_parquet(?) WHERE id = ? ORDER BY date", [path, series_id]
    ).df()


def sales_history(series_id: str) -> pd.DataFrame:
    path, mtime = _long()
    return _sales_history(path, mtime, series_id)


@st.cache_data(show_spinner=False, max_entries=16)
def _error_by_store_dept(long_path: str, long_mtime: float, forecast_path: str, forecast_mtime: float) -> pd.DataFrame:
    """Weighted absolute percentage error (sum |forecast - actual| / sum actual) by store and department."""
    return duckdb.connect().execute(
        """SELECT f.store_id, f.dept_id, sum(abs(f.forecast - a.units)) / nullif(sum(a.units), 0) * 100 AS wape
           FROM read_parquet(?) f JOIN read_parquet(?) a ON a.id = f.id AND a.date = f.date
           GROUP BY f.store_id, f.dept_id ORDER BY f.store_id, f.dept_id""",
        [forecast_path, long_path],
    ).df()


def error_by_store_dept(day: dt.date) -> pd.DataFrame:
    path, mtime = _long()
    forecast_path = tables.FORECASTS.path(reader().root, day)
    return _error_by_store_dept(path, mtime, str(forecast_path), _mtime(forecast_path))


def level_filters(level: int, key: str) -> dict[str, str]:
    """The hierarchy filter a level's key stands for ('CA_1/FOODS' at level 8 -> store and category)."""
    keys = LEVEL_KEYS[level]
    return dict(zip(keys, key.split("/"), strict=True)) if keys else {}


def level_key(level: int, row) -> str:
    keys = LEVEL_KEYS[level]
    return "/".join(str(row[k]) for k in keys) if keys else "total"
