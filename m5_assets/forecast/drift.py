"""Feature drift of each forecast date's input rows from the validation window of the model that
serves that date (the statistics are ``monitoring.drift``'s), published as one partition a day."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
from mlflow.tracking import MlflowClient

from m5_assets import tables
from m5_assets.features.catalog import HORIZON
from m5_assets.model import registry
from m5_assets.monitoring.drift import (
    FLAGGED,
    PreparedReference,
    Thresholds,
    drift_table,
    forecast_rows,
    prepare,
    read_window,
)
from m5_assets.table_files import TableSource
from m5_assets.warehouse import Warehouse


@dataclass(frozen=True)
class DayDrift:
    """One forecast date's published drift table, against which model's window."""

    day: dt.date
    table: pd.DataFrame
    path: Path
    model_version: str
    reference: tuple[dt.date, dt.date]  # [start, end) of the serving model's validation window

    @property
    def flagged(self) -> pd.DataFrame:
        return self.table[self.table["status"].isin(FLAGGED)]


def drift_days(
    con: duckdb.DuckDBPyConnection,
    features: TableSource,
    client: MlflowClient,
    days: list[dt.date],
    thresholds: Thresholds,
    storage: Warehouse,
) -> list[DayDrift]:
    """Each day's drift table, published. Raises ``LookupError`` for a day no promoted model serves."""
    serving = registry.serving_versions(registry.promoted_versions(client), days)
    references: dict[str, tuple[tuple[dt.date, dt.date], PreparedReference, dict[str, float]]] = {}
    # Every day's forecast rows in one scan of the feature store.
    forecasts = read_window(con, features, days[0], days[-1] + dt.timedelta(days=HORIZON))
    out = []
    for day in days:
        version = serving[day]
        if version.version not in references:  # a version's window and gains, read once per run
            window = (registry.validation_start(client, version), version.cutoff)
            gains = registry.feature_gains(client, version)
            references[version.version] = (window, prepare(read_window(con, features, *window)), gains)
        window, prepared, gains = references[version.version]
        table = drift_table(prepared, forecast_rows(forecasts, day), thresholds, gains).assign(
            model_version=version.version, reference_start=window[0], reference_end=window[1]
        )
        path = tables.FEATURE_DRIFT.write_partition(storage, day, table)
        out.append(DayDrift(day, table, path, version.version, window))
    return out
