"""Everything the pages show, read through the read side and cached per file.

Each loader is keyed by the modification time of the files it reads, so a newly published
partition shows on the next rerun without a restart, and an unchanged one is read once. The
queries themselves are the read side's (``m5_assets.reader``), the API's reader too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import streamlit as st

from m5_assets import submission, tables
from m5_assets.features.catalog import HORIZON  # noqa: F401 (for the pages)
from m5_assets.intervals import short_of_nominal
from m5_assets.reader import (
    WarehouseReader,
    forecast_date_after,  # noqa: F401 (for the pages)
    partition_days,
    read_all_partitions,
    read_backtest,
    read_parquet,
    read_partition,
)
from m5_assets.settings import data_paths, load_settings
from m5_assets.tables import LEVEL_NAMES, level_filters, level_key  # noqa: F401 (for the pages)

DAGSTER_URL = load_settings().dagster_ui_url
NOTHING_YET = "Nothing to show yet: run `make run` (or materialize the assets in the Dagster UI, `make ui`) first."


def reader() -> WarehouseReader:
    return WarehouseReader(data_paths())


@st.cache_resource
def _synced_reader() -> WarehouseReader:
    return WarehouseReader(data_paths())


def sync_warehouse() -> None:
    """Pull the object store's newest files into the data folder (throttled; nothing without a
    warehouse URL). The pages' caches key on the files' times, so they see what changed."""
    _synced_reader().sync()


def _mtime(path: Path) -> float:
    return path.stat().st_mtime if path.exists() else 0.0


def _folder_stamp(root: Path, table: tables.Table) -> tuple:
    folder = table.folder(root)
    return tuple(sorted((p.name, _mtime(p / "data.parquet")) for p in folder.iterdir())) if folder.exists() else ()


def forecast_dates() -> list[dt.date]:
    return partition_days(reader().root, tables.FORECASTS)


@st.cache_data(show_spinner=False, max_entries=16)
def _partition(root: str, table_name: str, day: dt.date, mtime: float) -> pd.DataFrame:
    return read_partition(Path(root), tables.named(table_name), day)


def partition(table: tables.Table, day: dt.date) -> pd.DataFrame:
    """One date-keyed partition, cached until its file changes."""
    root = reader().root
    return _partition(str(root), table.name, day, _mtime(table.path(root, day)))


def forecasts(day: dt.date) -> pd.DataFrame:
    return partition(tables.FORECASTS, day)


def levels(day: dt.date) -> pd.DataFrame:
    return partition(tables.FORECAST_LEVELS, day)


@st.cache_data(show_spinner=False)
def _all(root: str, table_name: str, stamp: tuple) -> pd.DataFrame:
    return read_all_partitions(Path(root), tables.named(table_name))


def accuracy() -> pd.DataFrame:
    root = reader().root
    frame = _all(str(root), tables.FORECAST_ACCURACY.name, _folder_stamp(root, tables.FORECAST_ACCURACY))
    return frame.sort_values(tables.FORECAST_ACCURACY.partition_column).reset_index(drop=True)


@st.cache_data(show_spinner=False)
def _backtest(root: str, mtime: float) -> pd.DataFrame:
    return read_backtest(Path(root))


def backtest() -> pd.DataFrame:
    """The newest backtest's scores (empty before any), cached until it is rewritten."""
    root = reader().root
    return _backtest(str(root), _mtime(tables.BACKTEST_REPORT.path(root)))


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
    return read_parquet(path)


def feature_catalog() -> pd.DataFrame:
    path = tables.FEATURE_CATALOG.path(reader().root)
    return _catalog(str(path), _mtime(path))


def _long_stamp() -> tuple[str, float]:
    """The data folder and the long table's modification time: what the actuals depend on."""
    paths = data_paths()
    return str(paths.root), _mtime(tables.SALES_LONG.path(paths.warehouse))


@st.cache_data(show_spinner=False, max_entries=8)
def _actual_sums(data_dir: str, mtime: float, first: dt.date, last: dt.date, by: tuple[str, ...]) -> pd.DataFrame:
    return WarehouseReader(data_paths(data_dir)).actual_sums(first, last, by)


def actual_sums(first: dt.date, last: dt.date, by: tuple[str, ...] = ()) -> pd.DataFrame:
    """Units sold from ``first`` to ``last`` (both included), summed by the hierarchy columns ``by``."""
    return _actual_sums(*_long_stamp(), first, last, by)


@st.cache_data(show_spinner=False, max_entries=64)
def _actual_series(
    data_dir: str, mtime: float, filters: tuple[tuple[str, str], ...], first: dt.date, last: dt.date
) -> pd.DataFrame:
    return WarehouseReader(data_paths(data_dir)).actual_series(dict(filters), first, last)


def actual_series(filters: dict[str, str], first: dt.date, last: dt.date) -> pd.DataFrame:
    """Daily units of the series matching ``filters`` (hierarchy column -> value), summed."""
    return _actual_series(*_long_stamp(), tuple(sorted(filters.items())), first, last)


@st.cache_data(show_spinner=False, max_entries=16)
def _sales_history(data_dir: str, mtime: float, series_id: str) -> pd.DataFrame:
    return WarehouseReader(data_paths(data_dir)).sales_history(series_id)


def sales_history(series_id: str) -> pd.DataFrame:
    return _sales_history(*_long_stamp(), series_id)


@st.cache_data(show_spinner=False, max_entries=16)
def _error_by_store_dept(data_dir: str, day: dt.date, scored_mtime: float) -> pd.DataFrame:
    return WarehouseReader(data_paths(data_dir)).error_by_store_dept(day)


def error_by_store_dept(day: dt.date) -> pd.DataFrame:
    """Each store x department series' WAPE and bias, as scoring materialized them."""
    scored = tables.SERIES_ACCURACY.path(reader().root, day)
    return _error_by_store_dept(str(data_paths().root), day, _mtime(scored))


def partition_dates(table: tables.Table) -> list[dt.date]:
    return partition_days(reader().root, table)


def submission_csv(day: dt.date) -> str:
    """The forecast issued on ``day`` as a Kaggle submission file (what ``m5 export`` writes)."""
    return submission.to_csv(reader().submission(day))


def failed_runs() -> pd.DataFrame:
    """The daily jobs whose latest run failed, each with its link in the Dagster UI."""
    root = reader().root
    outcomes = _all(str(root), tables.RUN_OUTCOMES.name, _folder_stamp(root, tables.RUN_OUTCOMES))
    if outcomes.empty:
        return outcomes
    failed = outcomes[outcomes["status"] == "failed"]
    return failed.assign(dagster=[f"{DAGSTER_URL}/runs/{r}" for r in failed["run_id"]])


def failed_checks() -> pd.DataFrame:
    """The checks whose latest result failed, each with its link in the Dagster UI."""
    checks = check_results()
    if checks.empty:
        return checks
    failed = checks[~checks["passed"].astype(bool)]
    return failed.assign(dagster=[check_url(a) for a in failed["asset"]])


def check_url(asset: str) -> str:
    return f"{DAGSTER_URL}/assets/{asset}?view=checks"


# A planner's figures of a level, as forecast_accuracy holds them: (column prefix, shown as).
LEVEL_FIGURES = (
    ("wape", "WAPE %"),
    ("bias", "bias %"),
    ("coverage_80", "80 % coverage"),
    ("coverage_95", "95 % coverage"),
)


def level_figures(scored: pd.Series) -> pd.DataFrame:
    """One scored partition's WAPE, bias and coverage, a row per level (NaN where it was scored
    before they were materialized)."""
    rows = []
    for level, name in LEVEL_NAMES.items():
        row = {"level": level, "series": name}
        for prefix, shown in LEVEL_FIGURES:
            row[shown] = scored.get(f"{prefix}_level_{level}", float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def level_figure_help(prefix: str) -> str:
    """The definition of a level figure, as the table declares it."""
    text = tables.FORECAST_ACCURACY.describe(f"{prefix}_level_1") or ""
    return text.replace("M5 level 1's", "the level's").replace("at M5 level 1", "at a level")


def coverage_shortfalls(figures: pd.DataFrame, day: dt.date) -> list[str]:
    """Each level of the forecast of ``day`` whose interval coverage falls short of nominal beyond
    chance (``intervals.short_of_nominal``, judged on the level's own number of series-days)."""
    series_days = _series_days_by_level(str(data_paths().root), day, _mtime(tables.FORECASTS.path(reader().root, day)))
    short = []
    for row in figures.to_dict("records"):
        for nominal in (80, 95):
            held = row[f"{nominal} % coverage"]
            if short_of_nominal(held, nominal, int(series_days.get(row["level"], 0))):
                short.append(f"level {row['level']} ({row['series']}): {held:.1f} % inside the {nominal} % band")
    return short


@st.cache_data(show_spinner=False, max_entries=8)
def _series_days_by_level(data_dir: str, day: dt.date, bottom_mtime: float) -> dict[int, int]:
    # Keyed by the bottom file, which a forecast partition publishes after its levels.
    return WarehouseReader(data_paths(data_dir)).series_days_by_level(day)


HIERARCHY = ["item_id", "dept_id", "cat_id", "store_id", "state_id"]


@st.cache_data(show_spinner=False, max_entries=4)
def _hierarchy(root: str, day: dt.date, stamp: float) -> pd.DataFrame:
    frame = read_partition(Path(root), tables.FORECASTS, day, columns=HIERARCHY)
    return frame[HIERARCHY].drop_duplicates().reset_index(drop=True)


def hierarchy(day: dt.date) -> pd.DataFrame:
    """One row per series the forecast of ``day`` covers, with its hierarchy columns."""
    root = data_paths().warehouse
    return _hierarchy(str(root), day, _mtime(tables.FORECASTS.path(root, day)))


def level_csv(day: dt.date, level: int) -> bytes:
    """Every series of one level of the forecast of ``day``, as CSV: the API's streamed export
    (``/forecasts/levels/{level}/export.csv``), put together for a download button."""
    return b"".join(reader().level_csv(day, level))


def events(first: dt.date, last: dt.date) -> pd.DataFrame:
    """The calendar's events from ``first`` to ``last``: date and the event's name (both of a day
    with two), one row per day."""
    calendar = _calendar(str(data_paths().warehouse), _mtime(tables.RAW_CALENDAR.path(data_paths().warehouse)))
    days = calendar[(calendar["date"] >= first) & (calendar["date"] <= last)]
    named = days[days["event_name_1"].notna()]
    text = (
        named["event_name_1"]
        .astype(str)
        .where(
            named["event_name_2"].isna(), named["event_name_1"].astype(str) + " / " + named["event_name_2"].astype(str)
        )
    )
    return pd.DataFrame({"date": named["date"], "event": text}).reset_index(drop=True)


@st.cache_data(show_spinner=False, max_entries=2)
def _calendar(root: str, stamp: float) -> pd.DataFrame:
    frame = read_parquet(tables.RAW_CALENDAR.path(Path(root)))[["date", "event_name_1", "event_name_2"]]
    return frame.assign(date=pd.to_datetime(frame["date"]).dt.date)
