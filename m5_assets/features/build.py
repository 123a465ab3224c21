"""Build the offline feature store from the long table, the calendar and the prices.

The long table is read once as a dense series-by-day matrix of units (it is stored ordered by
series, then day). The feature store is written a file per store (``write_store_features``),
a run of series at a time: a run's features are computed, held by blocks of days, then written
to the store's file as row groups of whole ``DAYS_PER_ROW_GROUP``-day blocks, so a read of some
days skips the others by their statistics. ``write_features`` writes the same rows as one file
in series order (the layout before the store files, kept as a reference for tests and
benchmarks). Features and the label
read units with outliers for modelling capped (``features.outliers``); the long table keeps what
was sold. The grid runs up to ``HORIZON`` calendar days past the last sales day, so that the rows
a forecast of the days just after the data needs exist already (their label, ``units``, is null).
"""

from __future__ import annotations

import dataclasses
import queue
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
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
from m5_assets.grid import DailyPrices, Dictionary, arrow_array, daily_prices, read_calendar, snap_by_state
from m5_assets.table_files import SKIPPED_BY, StoreFiles
from m5_assets.warehouse import Warehouse

ROWS_PER_BLOCK = 2_000_000
# A row group of a store's file: a whole number of these days of one run of the store's series,
# so a forecast's 28 days touch two row groups of a run at most; as many as it takes to hold at
# least MIN_ROWS_PER_ROW_GROUP rows, since small row groups compress worse and cost metadata (at
# full scale, 28-day row groups made a store's file 8 % larger for no faster read of 28 days).
DAYS_PER_ROW_GROUP = 28
MIN_ROWS_PER_ROW_GROUP = 65_536


@dataclass(frozen=True)
class FeatureInputs:
    """Everything the builder needs, as dense arrays aligned on series and feature days."""

    series: pd.DataFrame  # one row per series, ordered by id, with state_idx
    dates: pd.DatetimeIndex  # feature days: the sales days, then up to HORIZON more
    n_sales_days: int
    units: np.ndarray  # series x feature days, NaN after the last sales day
    price: DailyPrices | np.ndarray  # series x feature days, NaN before release
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
        return arrow_array(flat.astype(np.float32, copy=False))
    missing = np.isnan(flat) if flat.dtype.kind == "f" else None
    filled = np.where(missing, 0, flat) if missing is not None else flat
    return arrow_array(filled.astype(dtype), missing)


def capped_units(inputs: FeatureInputs, rows: slice | np.ndarray) -> tuple[np.ndarray, pd.DataFrame]:
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


def feature_arrays(inputs: FeatureInputs, rows: slice | np.ndarray, units: np.ndarray) -> dict[str, np.ndarray]:
    """The label and every feature of the series in ``rows`` that varies by series, each a series x
    days matrix, from their ``units`` (as ``capped_units`` returns them)."""
    computed = sales_features(units) | price_features(inputs.price[rows])
    computed["snap"] = inputs.snap_by_state[inputs.series["state_idx"].to_numpy()[rows]]
    computed["units"] = units
    return computed


@dataclass(frozen=True)
class IdColumns:
    """The id columns of a set of series (ordered as the inputs), dictionary-encoded once: each
    block of rows takes its codes, all blocks share the dictionaries."""

    rows: np.ndarray  # the series, as positions in the inputs' series, ascending
    dictionaries: dict[str, Dictionary]

    @classmethod
    def of(cls, inputs: FeatureInputs, rows: slice | np.ndarray) -> IdColumns:
        positions = np.arange(len(inputs.series))[rows]
        series = inputs.series.iloc[positions]
        return cls(rows=positions, dictionaries={name: Dictionary.of(series[name]) for name in ID_COLUMNS})

    def columns(self, rows: np.ndarray, per_series: int) -> dict[str, pa.Array]:
        """The id columns of ``rows`` (some of these series), each repeated ``per_series`` times."""
        at = np.searchsorted(self.rows, rows)
        return {name: d.array(np.repeat(d.codes[at], per_series)) for name, d in self.dictionaries.items()}


def feature_rows(
    inputs: FeatureInputs,
    rows: slice | np.ndarray,
    arrays: dict[str, np.ndarray],
    days: slice = slice(None),
    ids: IdColumns | None = None,
) -> pa.Table:
    """The feature table of the series in ``rows`` on ``days``, series by series and each series'
    days in order: keys, label, then every catalog feature. ``arrays`` hold those days only (a
    series x days matrix each). The id columns' dictionaries are ``ids``' (the series of ``rows``
    only, by default)."""
    positions = np.arange(len(inputs.series))[rows]
    dates = inputs.dates[days]
    columns = (ids or IdColumns.of(inputs, positions)).columns(positions, len(dates))
    columns["date"] = pa.array(np.tile(dates.to_numpy("datetime64[D]"), len(positions)))
    columns["units"] = _arrow_column(arrays["units"], "float32")
    columns[STOCKED_OUT_COLUMN] = _arrow_column(arrays[STOCKED_OUT_COLUMN], "int8")
    for spec in FEATURES:
        if spec.family == "ids":
            continue
        per_day = inputs.day_features.get(spec.name)
        values = np.tile(per_day[days], len(positions)) if per_day is not None else arrays[spec.name]
        columns[spec.name] = _arrow_column(values, spec.dtype)
    return pa.table(columns)


def feature_block(inputs: FeatureInputs, rows: slice, units: np.ndarray) -> pa.Table:
    """The feature table of the series in ``rows``, every day, from their ``units``."""
    return feature_rows(inputs, rows, feature_arrays(inputs, rows, units))


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

    storage.write_parquet_blocks(target, blocks(), dictionary_columns=ID_COLUMNS, skipped_by=SKIPPED_BY)
    return FeatureStats(
        rows=n_series * len(inputs.dates),
        series=n_series,
        first_date=inputs.dates[0],
        last_date=inputs.dates[-1],
        last_sales_date=inputs.dates[inputs.n_sales_days - 1],
        capped=pd.concat(capped, ignore_index=True),
    )


class DateBlocks:
    """A run of series' feature matrices held block of days by block of days: each column of a
    block is contiguous (series by series, each series' days of the block), so a row group of the
    store's file is built without gathering its values from every series' row.

    Reused from run to run (``fill``): fresh matrices of a run's size cost more in page faults
    than filling them."""

    def __init__(self, n_days: int) -> None:
        self.n_days = n_days
        self.n_series, self.days, self.capacity = 0, 0, 0
        self.blocks: dict[str, np.ndarray] = {}  # name -> whole blocks x series x days
        self.rest: dict[str, np.ndarray] = {}  # name -> series x the days after the whole blocks

    @property
    def whole(self) -> int:
        return self.n_days // self.days

    def fill(self, arrays: dict[str, np.ndarray], days: int) -> None:
        """Hold ``arrays`` (a run's series x every day each) in blocks of ``days`` days."""
        n = len(next(iter(arrays.values())))
        if n > self.capacity or days != self.days:
            self.blocks, self.rest, self.capacity = {}, {}, n
        self.n_series, self.days = n, days
        edge = self.whole * self.days
        for name, values in arrays.items():
            # Every float feature is stored as float32: held so, at half the memory of float64.
            dtype = np.dtype(np.float32) if values.dtype == np.float64 else values.dtype
            if name not in self.blocks or self.blocks[name].dtype != dtype:
                self.blocks[name] = np.empty((self.whole, self.capacity, self.days), dtype)
                self.rest[name] = np.empty((self.capacity, self.n_days - edge), dtype)
            self.blocks[name][:, :n, :] = values[:, :edge].reshape(n, self.whole, self.days).transpose(1, 0, 2)
            self.rest[name][:n] = values[:, edge:]

    def __iter__(self) -> Iterator[tuple[slice, dict[str, np.ndarray]]]:
        """Each block's days and matrices (series x its days), in date order."""
        n = self.n_series
        for k in range(self.whole):
            yield slice(k * self.days, (k + 1) * self.days), {name: b[k][:n] for name, b in self.blocks.items()}
        if self.whole * self.days < self.n_days:
            yield slice(self.whole * self.days, self.n_days), {name: r[:n] for name, r in self.rest.items()}


def days_per_row_group(n_series: int) -> int:
    """Days in a row group of a store file, for a run of ``n_series`` series."""
    blocks = max(1, MIN_ROWS_PER_ROW_GROUP // max(1, n_series * DAYS_PER_ROW_GROUP))
    return blocks * DAYS_PER_ROW_GROUP


def series_runs(n_series: int, n_days: int) -> list[slice]:
    """A store's series (positions among its own, in id order) in the runs that are computed and
    written together: near-equal, of at most ``series_per_block`` series each. A store file's row
    groups are each one run's block of days, so what a writer holds is a run's, not a store's."""
    count = -(-n_series // series_per_block(n_days))
    bounds = [n_series * k // count for k in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds, bounds[1:], strict=False)]


def row_groups_of(series: np.ndarray, days: np.ndarray, n_series: int, n_days: int) -> np.ndarray:
    """Each row's row group in its store's file (numbered in file order: run by run, each run's
    blocks of days in date order), from its series' position in the store and its day's position
    among the feature days."""
    runs = series_runs(n_series, n_days)
    run = np.searchsorted([r.start for r in runs], series, side="right") - 1
    per_group = np.array([days_per_row_group(r.stop - r.start) for r in runs])
    groups_before = np.concatenate([[0], np.cumsum(-(-n_days // per_group))])
    return groups_before[run] + days // per_group[run]


# Ends a store's runs for the writer, or (ABORT) tells it to give up the file it is writing.
_END_OF_STORE, _ABORT = "end of store", "abort"
WRITERS = 2  # threads encoding store files
BUFFERS = 3  # runs held at once: one computed while each writer encodes one


def write_store_features(inputs: FeatureInputs, files: StoreFiles, *, storage: Warehouse) -> FeatureStats:
    """Compute the feature rows of ``inputs``' series into one file per store of ``files``, each
    file's row groups a run of series (``series_runs``) by ``days_per_row_group`` days, each
    run's in date order: a read of some days skips the other row groups by their statistics."""
    store_of = inputs.series["store_id"].to_numpy()
    unknown = set(store_of) - set(files.stores)
    if unknown:
        raise ValueError(f"{files.folder}: series of stores {sorted(unknown)} have no file in {files.stores}")
    capped: list[pd.DataFrame] = []
    n_days = len(inputs.dates)
    # A run's row groups are encoded on writer threads (pyarrow releases the GIL) while the next
    # run is computed and made into tables. Encoding costs more than computing, so two writers
    # take alternate stores. The float columns of a run's tables are views of its buffer, which
    # goes back to be filled again once they are encoded: BUFFERS runs are held at most, whatever
    # a store's size.
    free: queue.Queue[DateBlocks] = queue.Queue()
    for _ in range(BUFFERS):
        free.put(DateBlocks(n_days))
    runs: list[queue.Queue[tuple[list[pa.Table], DateBlocks] | str]] = [queue.Queue() for _ in range(WRITERS)]

    def row_groups(mine: queue.Queue[tuple[list[pa.Table], DateBlocks] | str]) -> Iterator[pa.Table]:
        while (item := mine.get()) != _END_OF_STORE:
            if isinstance(item, str):
                raise RuntimeError("feature computation failed: the store's file is not published")
            tables, blocks = item
            yield from tables
            free.put(blocks)  # each table is encoded before the next is asked for

    def write_files(writer: int) -> None:
        for store in files.stores[writer::WRITERS]:
            storage.write_parquet_blocks(
                files.path(store),
                row_groups(runs[writer]),
                dictionary_columns=ID_COLUMNS,
                overlap=False,
                skipped_by=SKIPPED_BY,
            )

    with ThreadPoolExecutor(max_workers=WRITERS) as writers:
        writing = [writers.submit(write_files, writer) for writer in range(WRITERS)]
        try:
            for position, store in enumerate(files.stores):
                mine = runs[position % WRITERS]
                rows = np.flatnonzero(store_of == store)
                ids = IdColumns.of(inputs, rows)
                for run in series_runs(len(rows), n_days):
                    chunk = rows[run]
                    units, found = capped_units(inputs, chunk)
                    capped.append(found)
                    blocks = _free_blocks(free, writing)
                    blocks.fill(feature_arrays(inputs, chunk, units), days_per_row_group(len(chunk)))
                    tables = [feature_rows(inputs, chunk, arrays, days, ids) for days, arrays in blocks]
                    mine.put((tables, blocks))
                mine.put(_END_OF_STORE)
        except BaseException:
            for mine in runs:
                mine.put(_ABORT)
            raise
        for done in writing:
            done.result()
    return FeatureStats(
        rows=len(inputs.series) * n_days,
        series=len(inputs.series),
        first_date=inputs.dates[0],
        last_date=inputs.dates[-1],
        last_sales_date=inputs.dates[inputs.n_sales_days - 1],
        capped=pd.concat(capped, ignore_index=True),
    )


def _free_blocks(free: queue.Queue[DateBlocks], writing: list[Future]) -> DateBlocks:
    """The next buffer a writer is done with, or a writer's error if one stopped."""
    while True:
        try:
            return free.get(timeout=1)
        except queue.Empty:
            for done in writing:
                if done.done():
                    done.result()
                    raise RuntimeError("a feature writer stopped before every store was written") from None
