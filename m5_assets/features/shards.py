"""The feature store built by store group: each group's rows apart, then one file in the unsharded
order.

A series' features depend on its own sales and prices, the calendar and its state's SNAP days
only, so a group computes its series exactly as the whole build does. Combining puts the groups'
rows back into id order, block by block (a block of the combined file holds the same series as a
block of the unsharded one), and rebuilds the id columns' dictionaries from every series, so the
combined file has the unsharded file's rows, values, schema and row groups. Each group also
stages its series (one row each, the id columns) beside its rows: combining learns the order
from them without reading a row.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from m5_assets.features.build import FeatureStats, load_inputs, series_per_block, with_genuine_days, write_features
from m5_assets.grid import SERIES_COLUMNS as ID_COLUMNS
from m5_assets.grid import dictionary_array
from m5_assets.warehouse import Warehouse


@dataclass(frozen=True)
class StagedGroup:
    """Where a group staged its feature rows and its series, and the days they cover."""

    rows: str
    series: str
    capped: str
    first_date: str
    last_date: str
    last_sales_date: str


def build_feature_group(
    con: duckdb.DuckDBPyConnection,
    sales_long: Path,
    calendar: Path,
    prices: Path,
    folder: Path,
    stores: Sequence[str],
    genuine_days: Path | None = None,
    *,
    storage: Warehouse,
) -> StagedGroup:
    """Compute the feature rows of ``stores``' series into ``folder``, each file atomically."""
    inputs = with_genuine_days(load_inputs(con, sales_long, calendar, prices, stores), genuine_days)
    rows, series, capped = folder / "rows.parquet", folder / "series.parquet", folder / "capped.parquet"
    stats = write_features(inputs, rows, storage=storage)
    ids = pa.Table.from_pandas(inputs.series[ID_COLUMNS].astype(str), preserve_index=False)
    storage.write_with(series, lambda partial: pq.write_table(ids, partial))
    storage.write_with(capped, lambda partial: stats.capped.to_parquet(partial, index=False))
    days = (str(d.date()) for d in (stats.first_date, stats.last_date, stats.last_sales_date))
    return StagedGroup(str(rows), str(series), str(capped), *days)


class _Rows:
    """A group's staged rows read forward, row group by row group, without the id columns."""

    def __init__(self, path: Path) -> None:
        self._file = pq.ParquetFile(path)
        self._columns = [c for c in self._file.schema_arrow.names if c not in ID_COLUMNS]
        self._next_group = 0
        self._buffer = self._file.schema_arrow.empty_table().select(self._columns)

    def take(self, n: int) -> pa.Table:
        parts = [self._buffer]
        held = self._buffer.num_rows
        while held < n:
            part = self._file.read_row_group(self._next_group, columns=self._columns)
            self._next_group += 1
            parts.append(part)
            held += part.num_rows
        both = pa.concat_tables(parts)
        self._buffer = both.slice(n)
        return both.slice(0, n)


def combine_feature_groups(groups: Sequence[StagedGroup], target: Path, *, storage: Warehouse) -> FeatureStats:
    """Every group's rows in one file at ``target``, as the unsharded build writes it."""
    if len({(g.first_date, g.last_date, g.last_sales_date) for g in groups}) != 1:
        raise ValueError(
            "feature groups cover different days: "
            + "; ".join(f"{g.rows}: {g.first_date} .. {g.last_date}" for g in groups)
        )
    series_of = [pq.read_table(g.series).to_pandas() for g in groups]
    series = pd.concat(series_of, ignore_index=True)
    owner = np.concatenate([np.full(len(s), k) for k, s in enumerate(series_of)])
    if series["id"].duplicated().any():
        raise ValueError(f"feature groups share series: {series.loc[series['id'].duplicated(), 'id'].head(5).tolist()}")
    n_days = _days_per_series(groups, series_of)
    order = np.argsort(series["id"].to_numpy(), kind="stable")
    series, owner = series.iloc[order].reset_index(drop=True), owner[order]
    template = pq.read_schema(groups[0].rows)
    if len(groups) == 1:  # its rows are in id order with the whole build's row groups already
        storage.write_with(target, lambda partial: _link_or_copy(Path(groups[0].rows), partial))
        return _stats(groups, series, n_days)

    def blocks() -> Iterator[pa.Table]:
        readers = [_Rows(Path(g.rows)) for g in groups]
        per_block = series_per_block(n_days)
        for start in range(0, len(series), per_block):
            owners = owner[start : start + per_block]
            mine = [np.flatnonzero(owners == k) for k in range(len(groups))]
            joined = pa.concat_tables([reader.take(len(at) * n_days) for reader, at in zip(readers, mine, strict=True)])
            # joined holds group 0's series of this block, then group 1's, ...; put them in id order.
            taken = np.argsort(np.concatenate(mine), kind="stable")
            body = joined.take(pa.array((taken[:, None] * n_days + np.arange(n_days)).ravel()))
            series_of_row = np.repeat(np.arange(start, start + len(owners)), n_days)
            ids = {name: dictionary_array(series[name], series_of_row) for name in ID_COLUMNS}
            yield pa.table({name: ids[name] if name in ids else body.column(name) for name in template.names})

    storage.write_parquet_blocks(target, blocks(), dictionary_columns=ID_COLUMNS)
    return _stats(groups, series, n_days)


def _link_or_copy(source: Path, target: Path) -> None:
    """``target`` as a second name of ``source`` (no copy: the staged file stays for a re-execution
    until the run is published), or a copy where the two are on different file systems."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _stats(groups: Sequence[StagedGroup], series: pd.DataFrame, n_days: int) -> FeatureStats:
    first = groups[0]
    return FeatureStats(
        rows=len(series) * n_days,
        series=len(series),
        first_date=pd.Timestamp(dt.date.fromisoformat(first.first_date)),
        last_date=pd.Timestamp(dt.date.fromisoformat(first.last_date)),
        last_sales_date=pd.Timestamp(dt.date.fromisoformat(first.last_sales_date)),
        capped=pd.concat([pq.read_table(g.capped).to_pandas() for g in groups], ignore_index=True),
    )


def _days_per_series(groups: Sequence[StagedGroup], series_of: list[pd.DataFrame]) -> int:
    days = set()
    for group, series in zip(groups, series_of, strict=True):
        rows = pq.ParquetFile(group.rows).metadata.num_rows
        if not len(series) or rows % len(series):
            raise ValueError(f"{group.rows}: {rows} rows is not a whole number of days for its {len(series)} series")
        days.add(rows // len(series))
    if len(days) != 1:
        raise ValueError(f"feature groups have different numbers of days per series: {sorted(days)}")
    return days.pop()
