"""Forecast partitions in the warehouse: hive folders keyed by forecast date, written atomically.

``forecasts/forecast_date=D/data.parquet`` holds the bottom level, ``forecast_levels/...`` the
aggregates, ``forecast_accuracy/...`` the score once actuals exist. The pipeline writes here and
the API and dashboard read here, through these functions only.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from m5_assets import warehouse

FORECASTS = "forecasts"
FORECAST_LEVELS = "forecast_levels"
FORECAST_ACCURACY = "forecast_accuracy"
PARTITION_COLUMN = "forecast_date"


def partition_path(root: Path, table: str, day: dt.date) -> Path:
    return warehouse.table_path(root, table, (PARTITION_COLUMN, day.isoformat()))


def write_partition(root: Path, table: str, day: dt.date, frame: pd.DataFrame) -> Path:
    """Publish one partition's file whole or not at all (a reader never sees half of it)."""
    path = partition_path(root, table, day)
    data = pa.Table.from_pandas(frame.drop(columns=[PARTITION_COLUMN], errors="ignore"), preserve_index=False)
    warehouse.write_with(path, lambda partial: pq.write_table(data, partial, compression="zstd"))
    return path


def read_partition(root: Path, table: str, day: dt.date) -> pd.DataFrame:
    path = partition_path(root, table, day)
    if not path.exists():
        raise FileNotFoundError(f"{table}: no partition for {day} ({path})")
    return pd.read_parquet(path).assign(**{PARTITION_COLUMN: day})


def partition_days(root: Path, table: str) -> list[dt.date]:
    """Forecast dates with a published partition, oldest first."""
    folder = root / table
    if not folder.exists():
        return []
    prefix = f"{PARTITION_COLUMN}="
    return sorted(
        dt.date.fromisoformat(p.name.removeprefix(prefix))
        for p in folder.iterdir()
        if p.name.startswith(prefix) and (p / warehouse.DATA_FILE).exists()
    )


def read_accuracy(root: Path) -> pd.DataFrame:
    """Every scored partition, one row each."""
    days = partition_days(root, FORECAST_ACCURACY)
    if not days:
        return pd.DataFrame(columns=[PARTITION_COLUMN, "wrmsse", "coverage_95"])
    return pd.concat([read_partition(root, FORECAST_ACCURACY, d) for d in days], ignore_index=True)
