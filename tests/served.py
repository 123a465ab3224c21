"""Helpers for the API tests: the app over a data folder, and partitions read or republished
beside the API, as the pipeline would publish them."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow.parquet as pq

from m5_assets import tables
from m5_assets.settings import data_paths
from m5_serving.app import create_app
from m5_serving.config import ServingSettings
from m5_serving.schemas import UNITS_DECIMALS

# Units are served rounded to UNITS_DECIMALS: a served value is within this of the stored one.
SERVED = 0.5 * 10**-UNITS_DECIMALS


def serving_app(data_dir, **settings):
    clock = settings.pop("clock", None)
    return create_app(ServingSettings(paths=data_paths(data_dir), **settings), clock=clock, watch=False)


def stored_partition(data_dir, table, day) -> pd.DataFrame:
    """The partition read independently of the API, with pyarrow."""
    return pq.read_table(table.path(data_dir / "warehouse", day)).to_pandas()


def republish(data_dir, source: dt.date, day: dt.date, change=None) -> None:
    """Publish ``source``'s partitions again as ``day``'s, the bottom file last (as the pipeline does)."""
    for table in (tables.FORECAST_LEVELS, tables.FORECASTS):
        frame = stored_partition(data_dir, table, source)
        frame["date"] = frame["date"] + (day - source)
        if change is not None and table is tables.FORECASTS:
            frame = change(frame)
        target = table.path(data_dir / "warehouse", day)
        target.parent.mkdir(parents=True, exist_ok=True)
        frame.to_parquet(target)
