"""The read side: what the pipeline materialized, read without Dagster, MLflow or recomputation.

The API, the dashboard, the sensors, the partitions and ``m5 run`` all read the warehouse through
this module, so each fact (the data span, the newest forecast date, which partitions exist) is
derived one way. It imports only settings, storage and the table declarations.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from m5_assets import raw_files, submission, tables
from m5_assets.features.catalog import HORIZON
from m5_assets.settings import DataPaths, load_settings
from m5_assets.tables import LEVELS, Table
from m5_assets.validation.violations import DataValidationError
from m5_assets.warehouse import DATA_FILE, Warehouse, open_warehouse

SYNC_SECONDS = 30.0  # how often a reader pulls from the object store at most

# Without raw files (a fresh clone before `make run`), the span of the M5 data.
DEFAULT_SPAN = (dt.date(2011, 1, 29), dt.date(2016, 5, 22))


def read_parquet(path: Path | str, filters: list | None = None, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file as a frame, opened by Arrow's own file system.

    Not ``pandas.read_parquet``: on a local path it opens a Python file object and hands it to
    Arrow, whose pool threads may drop the scan's last reference to it after the caller returned.
    Dropping it takes the GIL; at interpreter exit that thread is killed inside a C++ destructor
    and the process aborts ("terminate called without an active exception", issue 23).
    """
    return pq.read_table(str(path), filters=filters, columns=columns, use_pandas_metadata=True).to_pandas()


def partition_keys(root: Path, table: Table) -> list[str]:
    """Keys with a published partition of ``table``, in order."""
    folder = table.folder(root)
    if not folder.exists():
        return []
    prefix = f"{table.partition_column}="
    return sorted(
        p.name.removeprefix(prefix) for p in folder.iterdir() if p.name.startswith(prefix) and (p / DATA_FILE).exists()
    )


def partition_days(root: Path, table: Table) -> list[dt.date]:
    """Dates with a published partition of a date-keyed ``table``, oldest first."""
    return [dt.date.fromisoformat(k) for k in partition_keys(root, table)]


def read_partition(
    root: Path,
    table: Table,
    key: dt.date | str,
    stores: Sequence[str] | None = None,
    filters: list | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """One partition (its rows of ``stores`` only, those ``filters`` keep and its ``columns``, if
    given), with its partition column; FileNotFoundError naming it when absent."""
    path = table.path(root, key)
    if not path.exists():
        raise FileNotFoundError(f"{table.name}: no partition for {key} ({path})")
    filters = [*(filters or []), *([("store_id", "in", list(stores))] if stores is not None else [])] or None
    assert table.partition_column is not None  # ``table.path`` refused a key for an unpartitioned table
    return read_parquet(path, filters=filters, columns=columns).assign(**{table.partition_column: key})


def read_all_partitions(root: Path, table: Table) -> pd.DataFrame:
    """Every partition of ``table`` in one frame, oldest first (empty with its columns if none)."""
    keys = partition_days(root, table) if table.date_keyed else partition_keys(root, table)
    if not keys:
        return pd.DataFrame(columns=[table.partition_column, *table.columns])
    return pd.concat([read_partition(root, table, k) for k in keys], ignore_index=True)


def read_accuracy(root: Path) -> pd.DataFrame:
    """Every scored forecast partition, one row each."""
    return read_all_partitions(root, tables.FORECAST_ACCURACY)


def read_backtest(root: Path) -> pd.DataFrame:
    """The newest backtest's scores, one row per origin and method (empty before any backtest)."""
    path = tables.BACKTEST_REPORT.path(root)
    if not path.exists():
        return pd.DataFrame(columns=list(tables.BACKTEST_REPORT.columns))
    frame = read_parquet(path)
    return frame.assign(origin=pd.to_datetime(frame["origin"]).dt.date)


def sales_span(paths: DataPaths) -> tuple[dt.date, dt.date]:
    """First and last sales day, from the calendar and the sales file's header line only.

    Malformed files give the default span rather than an error: the code location must load,
    so that the raw checks can say what is wrong with them.
    """
    try:
        files = raw_files.locate_raw_files(paths.raw)
        days = [c for c in raw_files.read_header(files.sales) if raw_files.DAY_COLUMN.match(c)]
        wanted = {days[0], days[-1]} if days else set()
        with open(files.calendar, newline="", encoding="utf-8-sig") as handle:
            dates = {
                row["d"]: dt.date.fromisoformat(row["date"]) for row in csv.DictReader(handle) if row.get("d") in wanted
            }
    except (FileNotFoundError, DataValidationError, UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError):
        return DEFAULT_SPAN
    if not wanted or len(dates) != len(wanted):
        return DEFAULT_SPAN
    return dates[days[0]], dates[days[-1]]


def forecast_date_after(last_sales_day: dt.date) -> dt.date:
    """The forecast to issue once sales reach ``last_sales_day``: the day after it."""
    return last_sales_day + dt.timedelta(days=1)


def scorable(day: dt.date, last_sales_day: dt.date) -> bool:
    """Whether the forecast issued on ``day`` can be scored: all its days have sales by ``last_sales_day``."""
    return day + dt.timedelta(days=HORIZON - 1) <= last_sales_day


def newest_forecast_date(paths: DataPaths) -> dt.date:
    """The forecast to issue now, read from the raw files."""
    return forecast_date_after(sales_span(paths)[1])


def _hierarchy(columns: Collection[str]) -> list[str]:
    """Column names that may go into SQL: only the hierarchy's own."""
    unknown = [c for c in columns if c not in tables.SERIES_DESCRIPTIONS]
    if unknown:
        raise ValueError(f"not hierarchy columns: {unknown}")
    return list(columns)


class WarehouseReader:
    """The materialized outputs of one data folder; with a warehouse URL (``$M5_WAREHOUSE_URL``),
    of the object store that folder's warehouse is a working copy of (see ``sync``)."""

    def __init__(self, paths: DataPaths, warehouse_url: str | None = None, sync_seconds: float = SYNC_SECONDS) -> None:
        self.paths = paths
        self.root = paths.warehouse
        self.warehouse_url = load_settings().warehouse_url if warehouse_url is None else warehouse_url
        self._storage: Warehouse | None = None  # made on the first sync: most readers never sync
        self._sync_seconds = sync_seconds
        self._synced_at: float | None = None

    def sync(self, force: bool = False) -> list[str]:
        """Pull what was published to the object store since the last pull, at most once every
        ``sync_seconds`` unless forced (each pull reads every manifest); the paths that changed.
        Without a warehouse URL there is nothing to pull."""
        if not self.warehouse_url:
            return []
        now = time.monotonic()
        if not force and self._synced_at is not None and now - self._synced_at < self._sync_seconds:
            return []
        if self._storage is None:
            self._storage = open_warehouse(self.root, self.warehouse_url)
        changed = self._storage.pull()
        self._synced_at = now
        return changed

    def _scan(self, table: Table) -> str:
        return table.files(self.root).scan()

    def forecast_dates(self) -> list[dt.date]:
        return partition_days(self.root, tables.FORECASTS)

    def forecasts(self, day: dt.date) -> pd.DataFrame:
        return read_partition(self.root, tables.FORECASTS, day)

    def submission(self, day: dt.date) -> pd.DataFrame:
        """The forecast issued on ``day`` in the Kaggle submission layout (``forecast.submission``)."""
        forecasts = self.forecasts(day)[["id", "date", "forecast"]]
        before = day - dt.timedelta(days=submission.HORIZON)
        known = self.actuals(forecasts["id"].astype(str).unique(), before, day - dt.timedelta(days=1))
        return submission.submission(forecasts, known, day)

    def forecast_levels(self, day: dt.date) -> pd.DataFrame:
        return read_partition(self.root, tables.FORECAST_LEVELS, day)

    def accuracy(self) -> pd.DataFrame:
        return read_accuracy(self.root)

    def inventory_plan(self, day: dt.date) -> pd.DataFrame:
        return read_partition(self.root, tables.INVENTORY_PLAN, day)

    def feature_drift(self, day: dt.date) -> pd.DataFrame:
        return read_partition(self.root, tables.FEATURE_DRIFT, day)

    def model_cards(self) -> pd.DataFrame:
        """Every model card, one per registered version; JSON columns stay text (see ``model_card``)."""
        cards = read_all_partitions(self.root, tables.MODEL_CARDS)
        return (
            cards.assign(order=pd.to_numeric(cards["model_version"], errors="coerce"))
            .sort_values("order")
            .drop(columns="order")
        )

    def model_card(self, version: str) -> dict | None:
        """The card of one registered version, JSON columns decoded; None if there is none."""
        try:
            card = read_partition(self.root, tables.MODEL_CARDS, str(version)).iloc[0].to_dict()
        except FileNotFoundError:
            return None
        for column in ("params", "validation_scores", "feature_importance", "issue_rule"):
            # Cards written before issue rules existed have no such column.
            card[column] = json.loads(card[column]) if isinstance(card.get(column), str) else None
        card["cutoff"] = pd.Timestamp(card["cutoff"]).date()
        return card

    def check_results(self) -> pd.DataFrame:
        """The latest result of every asset check that has run."""
        return read_all_partitions(self.root, tables.CHECK_RESULTS)

    def sales_span(self) -> tuple[dt.date, dt.date]:
        return sales_span(self.paths)

    def newest_forecast_date(self) -> dt.date:
        return newest_forecast_date(self.paths)

    def actuals(self, series_ids: Sequence[str], first: dt.date, last: dt.date) -> pd.DataFrame:
        """Units of some series over some days: a scan that reads only the row groups holding them."""
        con = duckdb.connect()
        con.register("wanted", pd.DataFrame({"id": list(series_ids)}))
        return con.sql(
            f"""SELECT id, date, units FROM {self._scan(tables.SALES_LONG)}
                WHERE id IN (SELECT id FROM wanted) AND date BETWEEN DATE '{first}' AND DATE '{last}'
                ORDER BY id, date"""
        ).df()

    def actual_sums(self, first: dt.date, last: dt.date, by: Sequence[str] = ()) -> pd.DataFrame:
        """Units sold from ``first`` to ``last`` (both included), summed by hierarchy columns ``by``."""
        group = ", ".join(_hierarchy(by))
        return (
            duckdb.connect()
            .execute(
                f"SELECT {group + ', ' if by else ''}sum(units)::DOUBLE AS units FROM {self._scan(tables.SALES_LONG)} "
                f"WHERE date BETWEEN ? AND ?" + (f" GROUP BY {group} ORDER BY {group}" if by else ""),
                [first, last],
            )
            .df()
        )

    def actual_series(self, filters: dict[str, str], first: dt.date, last: dt.date) -> pd.DataFrame:
        """Daily units of the series matching ``filters`` (hierarchy column -> value), summed."""
        where = " AND ".join([f"{c} = ?" for c in _hierarchy(filters)] + ["date BETWEEN ? AND ?"])
        return (
            duckdb.connect()
            .execute(
                f"SELECT date, sum(units)::DOUBLE AS units FROM {self._scan(tables.SALES_LONG)} WHERE {where} GROUP BY date ORDER BY date",
                [*filters.values(), first, last],
            )
            .df()
        )

    def sales_history(self, series_id: str) -> pd.DataFrame:
        """Units, shelf price, SNAP flag and first event of one series, day by day."""
        return (
            duckdb.connect()
            .execute(
                f"SELECT date, units, sell_price, snap, event_name_1 FROM {self._scan(tables.SALES_LONG)} WHERE id = ? ORDER BY date",
                [series_id],
            )
            .df()
        )

    def level_csv(self, day: dt.date, level: int, batch_rows: int = 65_536) -> Iterator[bytes]:
        """Every series of one level of the forecast of ``day`` as CSV, a batch of rows at a time:
        level 12 at full scale is 853,720 rows, never held whole. FileNotFoundError naming the
        partition when the forecast of ``day`` was not issued."""
        bottom = level == LEVELS[-1][0]
        table = tables.FORECASTS if bottom else tables.FORECAST_LEVELS
        path = table.path(self.root, day)
        if not path.exists():
            raise FileNotFoundError(f"{table.name}: no partition for {day}")
        header = True
        for batch in pq.ParquetFile(str(path)).iter_batches(batch_size=batch_rows):
            if not bottom:
                batch = batch.filter(pc.equal(batch.column("level"), level))
            out = io.BytesIO()
            pa_csv.write_csv(batch, out, pa_csv.WriteOptions(include_header=header))
            header = False
            yield out.getvalue()

    def series_days_by_level(self, day: dt.date) -> dict[int, int]:
        """How many series-days each level of the forecast of ``day`` holds (what a level's interval
        coverage is a share of): the levels' one column and the bottom file's footer, not the rows."""
        levels = pq.read_table(str(tables.FORECAST_LEVELS.path(self.root, day)), columns=["level"]).column("level")
        counts = {int(c["values"]): int(c["counts"]) for c in pc.value_counts(levels).to_pylist()}
        bottom = pq.ParquetFile(str(tables.FORECASTS.path(self.root, day))).metadata.num_rows
        return counts | {LEVELS[-1][0]: bottom}

    def error_by_store_dept(self, day: dt.date) -> pd.DataFrame:
        """The scored forecast of ``day``, each store x department series (M5 level 9) as
        ``series_accuracy`` holds it: WAPE and bias in % (empty if it was scored before that table)."""
        try:
            cells = read_partition(self.root, tables.SERIES_ACCURACY, day, filters=[("level", "=", 9)])
        except FileNotFoundError:
            return pd.DataFrame(columns=["store_id", "dept_id", "wape", "bias"])
        return cells[["store_id", "dept_id", "wape", "bias"]].astype({"store_id": str, "dept_id": str})

    def feature_catalog(self) -> pd.DataFrame:
        return read_parquet(tables.FEATURE_CATALOG.path(self.root))

    def feature_rows(self, day: dt.date) -> pd.DataFrame:
        """Every series' feature row of one day (each store's file skips the row groups of other days)."""
        return duckdb.connect().execute(f"SELECT * FROM {self._scan(tables.FEATURES)} WHERE date = ?", [day]).df()

    def newest_feature_row(self, series_id: str) -> dict | None:
        """The feature row of the newest forecast date: what the model saw for the next day."""
        frame = (
            duckdb.connect()
            .execute(
                f"SELECT * FROM {self._scan(tables.FEATURES)} WHERE id = ? AND date = ?",
                [series_id, self.newest_forecast_date()],
            )
            .df()
        )
        return None if frame.empty else frame.iloc[0].to_dict()
