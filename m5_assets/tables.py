"""Every warehouse table declared once: its name, partition column and column descriptions.

Assets name their dependencies, the resource and the checks find their files, the store writes
partitions, the read side reads them and the API describes its responses, all from these
declarations, so a table is renamed or documented in one place.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from m5_assets import warehouse
from m5_assets.table_files import StoreFiles, TableFiles, read_store_files

SERIES_DESCRIPTIONS = {
    "id": "series id: item_id + store_id + _validation/_evaluation",
    "item_id": "item (department + number)",
    "dept_id": "department (category + number)",
    "cat_id": "category: FOODS, HOBBIES, HOUSEHOLD",
    "store_id": "store (state + number)",
    "state_id": "state: CA, TX, WI",
}
SERIES_COLUMNS = tuple(SERIES_DESCRIPTIONS)  # a series' id and hierarchy, in Kaggle's column order
INTERVAL_DESCRIPTIONS = {
    f"{side}_{level}": f"{'lower' if side == 'lo' else 'upper'} bound of the {level} % prediction interval "
    "(central; for an item-store series, from 0 where forecasts of its size sold nothing on at least its lower tail's share of days)"
    for level in (50, 80, 95)
    for side in ("lo", "hi")
}
FORECAST_VALUE_DESCRIPTIONS = {
    "date": "the day forecast",
    "horizon": "days ahead of the forecast date, 1 .. 28",
    "forecast": "point forecast of units sold that day",
    **INTERVAL_DESCRIPTIONS,
    "sigma": "standard deviation of that day's error (actual - forecast), from the calibration's residuals at the forecast's size",
    "model_version": "registered version of m5-demand that issued it",
    "mlflow_run_id": "MLflow run of that version",
}

# (level number, name, hierarchy columns that identify its series) in M5's order.
LEVELS: tuple[tuple[int, str, tuple[str, ...]], ...] = (
    (1, "Total", ()),
    (2, "State", ("state_id",)),
    (3, "Store", ("store_id",)),
    (4, "Category", ("cat_id",)),
    (5, "Department", ("dept_id",)),
    (6, "State x Category", ("state_id", "cat_id")),
    (7, "State x Department", ("state_id", "dept_id")),
    (8, "Store x Category", ("store_id", "cat_id")),
    (9, "Store x Department", ("store_id", "dept_id")),
    (10, "Item", ("item_id",)),
    (11, "Item x State", ("item_id", "state_id")),
    (12, "Item x Store", ("item_id", "store_id")),
)

LEVEL_KEYS = {level: keys for level, _, keys in LEVELS}
LEVEL_NAMES = {level: name for level, name, _ in LEVELS}


def level_key(level: int, row: Mapping[str, object]) -> str:
    """A level's group as one string, as the API and the dashboard name it: its key columns'
    values joined by '/' ('CA_1/FOODS' at level 8), 'total' for level 1."""
    keys = LEVEL_KEYS[level]
    return "/".join(str(row[k]) for k in keys) if keys else "total"


def level_filters(level: int, key: str) -> dict[str, str]:
    """The hierarchy filter a level's key stands for ('CA_1/FOODS' at level 8 -> store and category)."""
    keys = LEVEL_KEYS[level]
    return dict(zip(keys, key.split("/"), strict=True)) if keys else {}


@dataclass(frozen=True, eq=False)
class Table:
    """A warehouse table: one folder, optionally hive-partitioned by ``partition_column``.
    Each is declared once below, so tables compare (and hash) by identity."""

    name: str
    description: str
    columns: dict[str, str] = field(default_factory=dict)  # column -> description
    partition_column: str | None = None
    date_keyed: bool = True  # partition keys are days (YYYY-MM-DD), not names
    # Columns that come in families (one per day, state or level): (full-match pattern, description
    # with {0} for the column's name and {1} for the pattern's group).
    column_families: tuple[tuple[str, str], ...] = ()
    # Stored a file per store, published by a manifest (``table_files``), not as one data file.
    by_store: bool = False

    def describe(self, column: str) -> str | None:
        """The description of ``column``: its own, or its family's."""
        if column in self.columns:
            return self.columns[column]
        for pattern, text in self.column_families:
            found = re.fullmatch(pattern, column)
            if found:
                return text.format(column, *found.groups())
        return None

    def path(self, root: Path, key: dt.date | str | None = None) -> Path:
        """The data file: the table's, or one partition's when the table is partitioned."""
        if self.by_store:
            raise ValueError(f"table {self.name} is stored a file per store: read it through files()")
        if (key is None) != (self.partition_column is None):
            raise ValueError(f"table {self.name}: a partition key is {'required' if key is None else 'not expected'}")
        value = key.isoformat() if isinstance(key, dt.date) else key
        if value is None:
            return warehouse.table_path(root, self.name, None)
        assert self.partition_column is not None  # the check above gives a key only to a partitioned table
        return warehouse.table_path(root, self.name, (self.partition_column, value))

    def folder(self, root: Path) -> Path:
        return root / self.name

    def files(self, root: Path) -> TableFiles:
        """The files of the table's published version (an unpartitioned table's)."""
        return read_store_files(self.folder(root)) if self.by_store else TableFiles.of(self.path(root))

    def new_store_files(self, root: Path, generation: str, stores: Sequence[str]) -> StoreFiles:
        """Where a generation of a table stored by store is written before it is published."""
        if not self.by_store:
            raise ValueError(f"table {self.name} is one file, not stored by store")
        return StoreFiles(self.folder(root), generation, stores)

    def write_partition(self, storage: warehouse.Warehouse, key: dt.date | str, frame: pd.DataFrame) -> Path:
        """Publish one partition's file whole or not at all (a reader never sees half of it)."""
        path = self.path(storage.root, key)
        storage.write_with(path, lambda partial: self.write_partition_file(frame, partial))
        return path

    def write_partition_file(self, frame: pd.DataFrame, path: Path) -> None:
        """Write ``frame`` at ``path`` as a partition file of this table is published."""
        data = pa.Table.from_pandas(frame.drop(columns=[self.partition_column], errors="ignore"), preserve_index=False)
        pq.write_table(data, path, compression="zstd")

    def publish_partition_file(self, storage: warehouse.Warehouse, key: dt.date | str, written: Path) -> Path:
        """Publish ``written`` (by ``write_partition_file``, kept where it is) as the partition of
        ``key``, whole or not at all: linked where it can be, so its bytes are not written twice."""
        path = self.path(storage.root, key)
        storage.write_with(path, lambda partial: _link_or_copy(written, partial))
        return path


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system (or one without hard links)
        shutil.copyfile(source, target)


RAW_CALENDAR = Table(
    "raw_calendar",
    "calendar.csv: one row per day with Walmart week, events and SNAP flags per state.",
    {
        "date": "calendar day",
        "wm_yr_wk": "Walmart week (1 + fiscal year + week)",
        "weekday": "day name",
        "wday": "day of the Walmart week, 1 (Saturday) .. 7",
        "month": "month, 1 .. 12",
        "year": "year",
        "d": "Kaggle day label, such as d_1914",
        "event_name_1": "first event of the day",
        "event_type_1": "its type",
        "event_name_2": "second event of the day, if any",
        "event_type_2": "its type",
    },
    column_families=((r"snap_(\w+)", "1 if SNAP purchases are allowed in {1} that day"),),
)
RAW_SELL_PRICES = Table(
    "raw_sell_prices",
    "sell_prices.csv: weekly shelf price per store and item.",
    {
        "store_id": SERIES_DESCRIPTIONS["store_id"],
        "item_id": SERIES_DESCRIPTIONS["item_id"],
        "wm_yr_wk": "Walmart week",
        "sell_price": "shelf price that week, in US dollars",
    },
)
RAW_SALES = Table(
    "raw_sales",
    "sales_train_evaluation.csv (or _validation): daily units per item-store, one column per day.",
    SERIES_DESCRIPTIONS,
    column_families=((r"d_(\d+)", "units sold on day {1} of the data (calendar.csv's d = {0})"),),
)
SALES_LONG = Table(
    "sales_long",
    "Sales unpivoted to one row per series and day, with calendar, SNAP flag of the series' state, "
    "events and that week's shelf price. Ordered by id, then date.",
    {
        **SERIES_DESCRIPTIONS,
        "date": "calendar day",
        "d": "Kaggle day label, such as d_1914",
        "wm_yr_wk": "Walmart week (1 + fiscal year + week)",
        "units": "units sold that day",
        "sell_price": "shelf price that week; null before the item is sold at the store",
        "snap": "1 if that day is a SNAP day in the series' state",
        "event_name_1": "first event of the day",
        "event_type_1": "its type: Cultural, National, Religious, Sporting",
        "event_name_2": "second event of the day, if any",
        "event_type_2": "its type",
    },
)
FEATURE_CATALOG = Table(
    "feature_catalog",
    "Every feature declared once: name, description, dtype, family, entity, version, rule.",
    {
        "name": "feature column",
        "description": "what it measures",
        "dtype": "stored type",
        "family": "ids, lags, rolling, level, price, calendar, snap or events",
        "entity": "what it is keyed by",
        "version": "catalog version",
        "rule": "values it must satisfy",
        "min_value": "smallest value allowed (null: no lower bound)",
        "max_value": "largest value allowed (null: no upper bound)",
        "nullable": "whether the feature may be null (before a series' history or price begins)",
    },
)
FEATURES = Table(
    "features",
    "Offline feature store: one row per series and day, the label and every catalog feature.",
    {
        "id": "series id (key)",
        "date": "day (key)",
        "units": "label: units sold that day; null for the days after the data",
        "stocked_out": "1 on days of a likely stock-out (an improbably long run of zero sales): training skips them",
    },
    by_store=True,
)
FORECASTS = Table(
    "forecasts",
    "The 28-day forecast issued on the partition's date, per series and day, with 50/80/95 % intervals.",
    {**SERIES_DESCRIPTIONS, **FORECAST_VALUE_DESCRIPTIONS},
    partition_column="forecast_date",
)
FORECASTS_SHADOW = Table(
    "forecasts_shadow",
    "The forecast a challenger (a newer version that did not pass the gate) would have issued on the "
    "partition's date: written beside the champion's, never over it, and scored beside it.",
    {**SERIES_DESCRIPTIONS, **FORECAST_VALUE_DESCRIPTIONS},
    partition_column="forecast_date",
)
FORECAST_LEVELS = Table(
    "forecast_levels",
    "The bottom forecasts summed to M5 levels 1-11, each with intervals from its own calibration.",
    {
        "level": "M5 aggregation level, 1 (total) .. 11 (state x item)",
        "level_name": "what the level groups by",
        **{k: f"{v} (null where the level does not determine it)" for k, v in SERIES_DESCRIPTIONS.items() if k != "id"},
        **FORECAST_VALUE_DESCRIPTIONS,
    },
    partition_column="forecast_date",
)
FORECAST_ACCURACY = Table(
    "forecast_accuracy",
    "The forecast issued on the partition's date scored once its 28 days have actuals.",
    {
        "model_version": "version that issued the forecast",
        "wrmsse": "WRMSSE over the 12 M5 levels",
        "seasonal_naive_wrmsse": "the same for seasonal naive (7 days) issued the same day",
        "rmse": "root mean squared error at item-store level",
        "mae": "mean absolute error at item-store level",
        "bias": "mean of forecast minus actual at item-store level",
        "seasonal_naive_mae": "seasonal naive's mean absolute error",
        "bias_pct": "bias as a share of the mean actual, in %",
        "mean_rmsse": "mean RMSSE over the item-store series (each scaled by its own naive error)",
        "moving_average_28_wrmsse": "WRMSSE of the 28-day mean issued the same day",
        "moving_average_28_mean_rmsse": "the 28-day mean's mean RMSSE over the item-store series",
        "shadow_model_version": "the challenger that issued in shadow that day, if any",
        "shadow_wrmsse": "its WRMSSE on the same days (null without one)",
        "shadow_mean_rmsse": "its mean RMSSE over the item-store series",
        "shadow_bias_pct": "its bias as a share of the mean actual, in %",
        **{f"coverage_{c}": f"share of item-store days inside the {c} % interval, in %" for c in (50, 80, 95)},
    },
    partition_column="forecast_date",
    column_families=(
        (r"wrmsse_level_(\d+)", "WRMSSE at M5 level {1}"),
        (
            r"wape_level_(\d+)",
            "WAPE at M5 level {1}: sum of |forecast - actual| over its series and days / sum of actuals, in %",
        ),
        (
            r"bias_level_(\d+)",
            "bias at M5 level {1}: sum of (forecast - actual) over its series and days / sum of actuals, in %",
        ),
        (r"coverage_(\d+)_level_(\d+)", "share of M5 level {2}'s series-days inside their own {1} % interval, in %"),
    ),
)
SERIES_ACCURACY = Table(
    "series_accuracy",
    "Each series of M5 levels 1-11 in the forecast issued on the partition's date, scored with "
    "forecast_accuracy once its 28 days have actuals: what a planner's drill-down reads.",
    {
        "level": "M5 aggregation level, 1 (total) .. 11 (state x item)",
        **{k: f"{v} (null where the level does not determine it)" for k, v in SERIES_DESCRIPTIONS.items() if k != "id"},
        "units_sold": "units sold over the 28 days",
        "units_forecast": "units forecast for them",
        "wape": "sum of |forecast - actual| over the 28 days / units sold, in %",
        "bias": "sum of (forecast - actual) over the 28 days / units sold, in %",
        "coverage_80": "share of the 28 days inside the series' own 80 % interval, in %",
        "coverage_95": "share of the 28 days inside its 95 % interval, in %",
    },
    partition_column="forecast_date",
)
FEATURE_DRIFT = Table(
    "feature_drift",
    "Per feature, how far the rows the forecast issued on the partition's date reads have moved from "
    "the serving model's validation window.",
    {
        "feature": "feature (catalog name); ids and calendar features are left out",
        "family": "its catalog family",
        "psi": "population stability index over the validation window's deciles",
        "ks": "two-sample Kolmogorov-Smirnov statistic: the largest gap between the two empirical CDFs",
        "no_change_psi": "the PSI this comparison shows with no change: 99th percentile over items (all their stores) swapped between the windows at random",
        "importance": "the feature's weight: its gain in the serving model over the mean gain of the judged features, at most 1",
        "score": "importance x (psi - no_change_psi), at least 0 (0.1: warn, 0.25: drift)",
        "status": "ok, warn or drift, by score against the run's thresholds; calendar: shown, not judged",
        "reference_rows": "validation-window rows compared",
        "current_rows": "forecast rows compared (dated D .. D+27)",
        "model_version": "the serving model whose validation window is the reference",
        "reference_start": "first day of that validation window",
        "reference_end": "its cutoff: the day after its last day",
    },
    partition_column="forecast_date",
)
INVENTORY_PLAN = Table(
    "inventory_plan",
    "Per item-store, a replenishment plan from the forecast issued on the partition's date: lead-time "
    "demand and its uncertainty, safety stock, reorder point, order-up-to level, EOQ, days of cover.",
    {
        **SERIES_DESCRIPTIONS,
        "lead_time_days": "days from order to delivery",
        "review_days": "days between order reviews",
        "service_level": "chance of no stock-out in a replenishment cycle",
        "unit_price": "shelf price on the forecast date",
        "mean_daily_demand": "mean forecast over the 28 days",
        "lead_time_demand": "forecast units over the lead time",
        "lead_time_sigma": "their standard deviation: the root of the summed daily sigma squared",
        "safety_stock": "z(service level) x lead_time_sigma",
        "reorder_point": "lead_time_demand + safety_stock: order when stock falls to it",
        "order_up_to": "demand over lead time + review period plus its safety stock: the level a periodic review orders up to",
        "eoq": "economic order quantity: sqrt(2 x annual demand x ordering cost / (holding rate x unit price))",
        "days_of_cover": "(safety_stock + eoq) / mean_daily_demand: what a delivery at the reorder point lasts",
    },
    partition_column="forecast_date",
)
BACKTEST_REPORT = Table(
    "backtest_report",
    "A rolling-origin backtest: the product's forecast issued every 7 days over the last 52 weeks of "
    "actuals, each by the monthly model it would have used, scored beside simple, statistical and "
    "mlforecast peers on the same days with the same metrics. Rewritten whole by each backtest run.",
    {
        "origin": "the forecast date: every forecast reads sales before it only",
        "method": "issued (the product's forecast), or a peer",
        "wrmsse": "WRMSSE over the 12 M5 levels",
        "mean_rmsse": "mean RMSSE over the item-store series",
        "bias_pct": "sum(forecast - actual) / sum(actual) over the 28 days, in %",
        "forecast_units": "units forecast over every series and day",
        "actual_units": "units sold over the same series and days",
        "model_version": "the backtest model (registered as m5-backtest) that issued the origin",
        "cutoff": "that model's training cutoff",
        "beyond_band_series": "issued only: series the forecasts_within_history check names (highests floored at 1 unit a day)",
        "beyond_twice_highest_series": "issued only: series forecast above 2 x their highest 28-day mean or day before the origin",
        "highest_month_ratio": "issued only: the largest 28-day forecast mean over the series' highest 28-day mean",
        "highest_day_ratio": "issued only: the largest forecast day over the series' highest day",
    },
    column_families=(
        (r"wrmsse_level_(\d+)", "WRMSSE at M5 level {1}"),
        (
            r"coverage_(\d+)_level_(\d+)",
            "share of actuals inside the {1} % interval at that level, in % (issued and the 28-day mean)",
        ),
        (r"width_(\d+)_level_(\d+)", "mean width of that interval at that level, in units"),
    ),
)
MODEL_CARDS = Table(
    "model_cards",
    "One card per registered model version: what serving needs to know about a model without MLflow.",
    {
        "cutoff": "training cutoff: the model saw data before this day",
        "mlflow_run_id": "MLflow run that trained it",
        "trained_at": "when the run finished (UTC)",
        "validation_start": "first day of the 28-day validation window",
        "promoted": "whether it passed the promotion gate (may issue forecasts)",
        "promotion_decision": "why",
        "champion_at_training": "whether it took the champion alias when trained",
        "serving_version": "the version it was compared with, if any",
        "serving_wrmsse_same_window": "that version's WRMSSE on this model's validation window (like for like with "
        "wrmsse; NaN without one)",
        "wrmsse": "validation WRMSSE of the issued forecast",
        "seasonal_naive_wrmsse": "seasonal naive's on the same window",
        "params": "training parameters (JSON)",
        "validation_scores": "WRMSSE, RMSE, MAE and bias of the issued forecast, the model alone and each baseline (JSON)",
        "issue_rule": "how forecasts are issued: the blend weight of model and demand level, why, every blend tried (JSON)",
        "feature_importance": "gain importance per feature, largest first (JSON)",
    },
    # Keyed by version, not cutoff: retraining a month must not erase the card of a version that
    # still serves.
    partition_column="model_version",
    date_keyed=False,
)

RUN_OUTCOMES = Table(
    "run_outcomes",
    "How the latest run of each daily job ended, one partition per job: what the dashboard warns "
    "about without reading the Dagster instance.",
    {
        "run_id": "its latest run",
        "status": "succeeded or failed",
        "launched_by": "the schedule or sensor that launched it, or manual",
        "partition": "the partition (or range) it ran for",
        "step": "the step that failed (empty when it succeeded)",
        "message": "why it failed (empty when it succeeded)",
        "ended_at": "when its last step ended (UTC)",
    },
    partition_column="job",
    date_keyed=False,
)
CHECK_RESULTS = Table(
    "check_results",
    "The latest result of every asset check, one partition per check: what the dashboard shows "
    "without reading the Dagster instance.",
    {
        "asset": "asset checked",
        "check": "check name",
        "passed": "whether it passed",
        "severity": "ERROR (blocks downstream) or WARN",
        "description": "what it found",
        "evaluated_at": "when (UTC)",
        "run_id": "the Dagster run that evaluated it",
    },
    partition_column="check_key",
    date_keyed=False,
)

RAW_TABLES = (RAW_CALENDAR, RAW_SELL_PRICES, RAW_SALES)
ALL = (
    *RAW_TABLES,
    SALES_LONG,
    FEATURE_CATALOG,
    FEATURES,
    MODEL_CARDS,
    FORECASTS,
    FORECASTS_SHADOW,
    FORECAST_LEVELS,
    FORECAST_ACCURACY,
    SERIES_ACCURACY,
    FEATURE_DRIFT,
    INVENTORY_PLAN,
    RUN_OUTCOMES,
    CHECK_RESULTS,
    BACKTEST_REPORT,
)


def named(name: str) -> Table:
    """The declaration of the table called ``name``."""
    return next(t for t in ALL if t.name == name)
