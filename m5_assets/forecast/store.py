"""Forecast partitions in the warehouse: hive folders keyed by forecast date, written atomically.

``forecasts/forecast_date=D/data.parquet`` holds the bottom level, ``forecast_levels/...`` the
aggregates, ``forecast_accuracy/...`` the score once actuals exist, ``model_cards/model_version=N/...``
what serving needs to know about each model. The pipeline writes here; everything reads through
``m5_assets.reader``.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from m5_assets.tables import Table
from m5_assets.warehouse import Warehouse


def write_partition(storage: Warehouse, table: Table, key: dt.date | str, frame: pd.DataFrame) -> Path:
    """Publish one partition's file whole or not at all (a reader never sees half of it)."""
    path = table.path(storage.root, key)
    data = pa.Table.from_pandas(frame.drop(columns=[table.partition_column], errors="ignore"), preserve_index=False)
    storage.write_with(path, lambda partial: pq.write_table(data, partial, compression="zstd"))
    return path
