"""Build the offline feature store from the long table, the calendar and the prices.

The long table is read once as a dense series-by-day matrix of units (it is stored ordered by
series, then day), features are computed a block of series at a time, and each block is
appended to one Parquet file that is published atomically at the end. Features and the label
read units with outliers for modelling capped (``features.outliers``); the long table keeps
what was sold. The grid runs up to
``HORIZON`` calendar days past the last sales day, so that the rows a forecast of the days just
after the data needs exist already (their label, ``units``, is null).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from m5_assets.features.calendar import calendar_features, event_features
from m5_assets.features.catalog import (
    FEATURES,
    HORIZON,
    LAGS,
    LEVEL_FEATURE,
    LEVEL_WINDOW,
    MIN_LAG,
    STOCKED_OUT_COLUMN,
    WINDOWS,
)
from m5_assets.features.outliers import cap_outliers, read_genuine_days
from m5_assets.features.price import price_features
from m5_assets.features.windows import demand_level_and_stock_outs, lag, lagged_rolling_mean_std
from m5_assets.grid import SERIES_COLUMNS as ID_COLUMNS
from m5_assets.grid import daily_prices, dictionary_array, read_calendar, snap_by_state
from m5_assets.warehouse import Warehouse

ROWS_PER_BLOCK = 2_000_000
_ARROW_TYPES = {"float32": pa.float32(), "int8": pa.int8(), "int16": pa.int16()}


@dataclass(frozen=True)
class FeatureInputs:
    """Everything the builder needs, as dense arrays aligned on series and feature days."""

    series: pd.DataFrame  # one row per series, ordered by id, with state_idx
    dates: pd.DatetimeIndex  # feature days: the sales days, then up to HORIZON more
    n_sales_days: int
    units: np.ndarray  # series x feature days, NaN after the last sales day
    price: np.ndarray  # series x feature days, NaN before release
    snap_by_state: np.ndarray  # states x feature days
    day_features: dict[str, np.ndarray]  # calendar and event features per feature day
    genuine_days: np.ndarray | None = None  # series x feature days: known genuine, never capped


@dataclass(frozen=True)
class FeatureStats:
    rows: int
    series: int
    first_date: pd.Timestamp
    last_date: pd.Timestamp
    last_sales_date: pd.Timestamp
    capped: pd.DataFrame  # outliers for modelling: id, date, units sold, units the features read


def load_inputs(
    con: duckdb.DuckDBPyConnection, sales_long: Path, calendar: Path, prices: Path, stores: Sequence[str] | None = None
) -> FeatureInputs:
    """Read the long table as a matrix and line calendar, SNAP and prices up with it; with
    ``stores``, the series of those stores only (the days are always the whole table's)."""
    long_scan = f"read_parquet('{sales_long}')"
    first, last, n_sales_days = con.sql(
        f"SELECT min(date), max(date), count(DISTINCT date) FROM {long_scan}"
    ).fetchall()[0]
    # Read with pyarrow, which keeps file order under a filter (DuckDB 2.0's parallel scan
    # filtered on store_id does not): the matrix below relies on it.
    mine = pc.field("store_id").isin(list(map(str, stores))) if stores is not None else None
    on_first_day = pc.field("date") == first
    series = pq.read_table(
        sales_long, columns=ID_COLUMNS, filters=on_first_day if mine is None else mine & on_first_day
    ).to_pandas()
    series = series.astype({name: str for name in ID_COLUMNS})
    units = pq.read_table(sales_long, columns=["units"], filters=mine).column("units").to_numpy()
    if len(units) != len(series) * n_sales_days or not series["id"].is_monotonic_increasing:
        raise ValueError(
            f"{sales_long}: expected a complete grid ordered by id and date "
            f"({len(series)} series x {n_sales_days} days), found {len(units)} rows"
        )
    if not len(series):
        raise ValueError(f"{sales_long}: no series of stores {list(stores or [])}")

    cal = read_calendar(con, calendar)
    end = min(pd.Timestamp(last) + pd.Timedelta(days=HORIZON), cal["date"].max())
    in_grid = (cal["date"] >= pd.Timestamp(first)) & (cal["date"] <= end)
    days = cal[in_grid].reset_index(drop=True)

    # Units are whole numbers far below 2**24, so float32 holds them exactly.
    grid = np.full((len(series), len(days)), np.nan, dtype=np.float32)
    grid[:, :n_sales_days] = np.asarray(units).reshape(len(series), n_sales_days)

    states = sorted(series["state_id"].unique())
    series["state_idx"] = series["state_id"].map({s: k for k, s in enumerate(states)})

    day_features = calendar_features(pd.DatetimeIndex(days["date"]))
    events = event_features(cal["event_type_1"])
    day_features.update({name: values[in_grid.to_numpy()] for name, values in events.items()})

    return FeatureInputs(
        series=series,
        dates=pd.DatetimeIndex(days["date"]),
        n_sales_days=int(n_sales_days),
        units=grid,
        price=daily_prices(con, prices, series, days["wm_yr_wk"].to_numpy()),
        snap_by_state=snap_by_state(days, states),
        day_features=day_features,
    )


def sales_features(units: np.ndarray) -> dict[str, np.ndarray]:
    """Lag, rolling and level features of a block of series (series x days matrix of units), and
    the stocked_out flag kept beside the label."""
    out = {f"units_lag_{k}": lag(units, k) for k in LAGS}
    for w, (mean, std) in lagged_rolling_mean_std(units, WINDOWS, MIN_LAG).items():
        out[f"roll_mean_{w}"], out[f"roll_std_{w}"] = mean, std
    level, out[STOCKED_OUT_COLUMN] = demand_level_and_stock_outs(units, LEVEL_WINDOW, MIN_LAG)
    out[LEVEL_FEATURE] = level.astype(np.float32)
    return out


def _arrow_column(values: np.ndarray, dtype: str) -> pa.Array:
    """NaN becomes null; integer columns keep their width."""
    flat = np.ravel(values)
    if dtype == "float32":
        return pa.array(flat.astype(np.float32), from_pandas=True)
    missing = np.isnan(flat) if flat.dtype.kind == "f" else None
    filled = np.nan_to_num(flat) if missing is not None else flat
    return pa.array(filled.astype(dtype), type=_ARROW_TYPES[dtype], mask=missing)


def capped_units(inputs: FeatureInputs, rows: slice) -> tuple[np.ndarray, pd.DataFrame]:
    """The units of the series in ``rows`` as features and training read them (outliers for
    modelling capped), and the capped days: id, date, units sold, units read."""
    keep = inputs.genuine_days[rows] if inputs.genuine_days is not None else None
    capped, was_capped = cap_outliers(inputs.units[rows], keep)
    at_row, at_day = np.nonzero(was_capped)
    found = pd.DataFrame(
        {
            "id": inputs.series["id"].to_numpy()[rows][at_row],
            "date": inputs.dates[at_day].date,
            "units": inputs.units[rows][at_row, at_day],
            "capped_to": capped[at_row, at_day],
        }
    )
    return capped.astype(np.float32), found


def feature_block(inputs: FeatureInputs, rows: slice, units: np.ndarray) -> pa.Table:
    """The feature table of the series in ``rows`` from their ``units`` (as ``capped_units``
    returns them): keys, label, then every catalog feature."""
    block = inputs.series.iloc[rows]
    n_days = len(inputs.dates)
    computed = sales_features(units) | price_features(inputs.price[rows])
    computed["snap"] = inputs.snap_by_state[block["state_idx"].to_numpy()]
    for name, per_day in inputs.day_features.items():
        computed[name] = np.tile(per_day, len(block))

    series_of_row = np.repeat(np.arange(len(inputs.series))[rows], n_days)
    columns: dict[str, pa.Array] = {name: dictionary_array(inputs.series[name], series_of_row) for name in ID_COLUMNS}
    columns["date"] = pa.array(np.tile(inputs.dates.to_numpy("datetime64[D]"), len(block)))
    columns["units"] = _arrow_column(units, "float32")
    columns[STOCKED_OUT_COLUMN] = _arrow_column(computed[STOCKED_OUT_COLUMN], "int8")
    for spec in FEATURES:
        if spec.family != "ids":
            columns[spec.name] = _arrow_column(computed[spec.name], spec.dtype)
    return pa.table(columns)


def series_per_block(n_days: int) -> int:
    """Series in one row group of the feature store: about ``ROWS_PER_BLOCK`` rows."""
    return max(1, ROWS_PER_BLOCK // n_days)


def build_features(
    con: duckdb.DuckDBPyConnection,
    sales_long: Path,
    calendar: Path,
    prices: Path,
    target: Path,
    stores: Sequence[str] | None = None,
    genuine_days: Path | None = None,
    *,
    storage: Warehouse,
) -> FeatureStats:
    """Compute every catalog feature for every series (of ``stores``, if given) and feature day
    into ``target``; days listed in ``genuine_days`` (a CSV, when it exists) are never capped."""
    return write_features(
        with_genuine_days(load_inputs(con, sales_long, calendar, prices, stores), genuine_days), target, storage=storage
    )


def with_genuine_days(inputs: FeatureInputs, path: Path | None) -> FeatureInputs:
    """``inputs`` with the known genuine days of the CSV at ``path`` (unchanged without one)."""
    if path is None or not Path(path).exists():
        return inputs
    return dataclasses.replace(inputs, genuine_days=read_genuine_days(Path(path), inputs.series, inputs.dates))


def write_features(inputs: FeatureInputs, target: Path, *, storage: Warehouse) -> FeatureStats:
    """Compute the feature rows of ``inputs``' series, a block of series at a time, into ``target``."""
    n_series = len(inputs.series)
    per_block = series_per_block(len(inputs.dates))
    capped: list[pd.DataFrame] = []

    def blocks() -> Iterator[pa.Table]:
        for start in range(0, n_series, per_block):
            rows = slice(start, start + per_block)
            units, found = capped_units(inputs, rows)
            capped.append(found)
            yield feature_block(inputs, rows, units)

    storage.write_parquet_blocks(target, blocks(), dictionary_columns=ID_COLUMNS)
    return FeatureStats(
        rows=n_series * len(inputs.dates),
        series=n_series,
        first_date=inputs.dates[0],
        last_date=inputs.dates[-1],
        last_sales_date=inputs.dates[inputs.n_sales_days - 1],
        capped=pd.concat(capped, ignore_index=True),
    )
