"""Feature rows as one float32 matrix: what LightGBM trains on and predicts from.

Handing LightGBM a pandas frame with categorical columns makes it convert the whole frame to
float64 (it writes missing category codes as NaN), a second copy of the data at twice the width:
at full M5 scale that alone is more than 6 GiB. Here every column is written once into a float32
matrix, categorical columns as their index in a sorted vocabulary, and the vocabulary is stored
in the booster the way LightGBM stores a pandas frame's categories, so the model also predicts
correctly from a pandas frame (MLflow's pyfunc) and keeps its meaning when the set of series
changes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from m5_assets.features.catalog import FEATURE_NAMES, FEATURES, LABEL_COLUMN, STOCKED_OUT_COLUMN
from m5_assets.table_files import StoreFiles, TableFiles, TableSource

CATEGORICAL = tuple(f.name for f in FEATURES if f.dtype == "category")
CATEGORICAL_INDEX = tuple(FEATURE_NAMES.index(name) for name in CATEGORICAL)
Vocabulary = list[list[str]]  # one sorted list of values per categorical feature, in catalog order


@dataclass
class Rows:
    """Feature rows: keys, label and matrix share one row order."""

    keys: pd.DataFrame  # id, date
    label: np.ndarray  # float32
    matrix: np.ndarray  # float32, rows x FEATURE_NAMES, C order
    vocabulary: Vocabulary

    def __len__(self) -> int:
        return len(self.label)


def vocabulary_of(table: pa.Table) -> Vocabulary:
    """Sorted distinct values of each categorical feature."""
    return [sorted(str(v) for v in pc.unique(table.column(name)).to_pylist() if v is not None) for name in CATEGORICAL]


def _codes(column: pa.ChunkedArray, values: list[str]) -> np.ndarray:
    """Index of each value in ``values`` as float32; NaN for nulls and for values not in it.

    A dictionary column is coded through its dictionaries, never cast to plain strings: the cast
    wrote every row's string out (half a GiB for a full-scale training window's ids, per column).
    """
    value_set = pa.array(values, type=pa.string())
    if not pa.types.is_dictionary(column.type):
        return pc.index_in(column, value_set=value_set).to_numpy(zero_copy_only=False).astype(np.float32)
    out = np.empty(len(column), dtype=np.float32)
    at = 0
    for chunk in column.chunks:
        coded = pc.index_in(chunk.dictionary.cast(pa.string()), value_set=value_set)
        # NaN where a dictionary value is not in ``values``, then one slot more for null rows.
        by_entry = np.append(coded.to_numpy(zero_copy_only=False).astype(np.float32), np.float32("nan"))
        entries = pc.fill_null(chunk.indices.cast(pa.int64()), len(chunk.dictionary)).to_numpy(zero_copy_only=False)
        out[at : at + len(chunk)] = by_entry[entries]
        at += len(chunk)
    return out


def _column(table: pa.Table, name: str) -> np.ndarray:
    return _column_values(table.column(name))


def _column_values(column: pa.ChunkedArray) -> np.ndarray:
    return column.to_numpy().astype(np.float32, copy=False)


def fill_matrix(table: pa.Table, vocabulary: Vocabulary, order: np.ndarray | None = None) -> np.ndarray:
    """The catalog's features of ``table`` as a float32 matrix, rows taken in ``order`` if given."""
    return matrix_of(drained(table), table.num_rows, vocabulary, order)


def drained(table: pa.Table) -> Iterator[tuple[str, pa.ChunkedArray]]:
    """The catalog's feature columns of ``table``, each dropped from it as it is taken. Handed the
    last reference to ``table``, as ``read_rows`` does, each column's memory is freed once it is
    copied, so reading holds about one copy of the data, not the Arrow table and the matrix
    whole (3.3 GiB each for a full-scale training window)."""
    for name in FEATURE_NAMES:
        column = table.column(name)
        table = table.drop_columns([name])
        yield name, column
        del column


def matrix_of(
    columns: Iterator[tuple[str, pa.ChunkedArray]], n_rows: int, vocabulary: Vocabulary, order: np.ndarray | None
) -> np.ndarray:
    """``columns`` (the catalog's, in its order) written one by one into a float32 matrix.

    The matrix is column-major, so writing a column touches only that column's memory: in row
    order the first column written made all 3.3 GiB of a training window's matrix resident while
    the Arrow table was still whole. LightGBM takes it in this order without a copy."""
    matrix = np.empty((n_rows, len(FEATURE_NAMES)), dtype=np.float32, order="F")
    vocab = dict(zip(CATEGORICAL, vocabulary, strict=True))
    for j, (name, column) in enumerate(columns):
        values = _codes(column, vocab[name]) if name in vocab else _column_values(column)
        del column  # the column's last reference, when ``drained`` was handed the table's
        matrix[:, j] = values if order is None else values[order]
        del values
        pa.default_memory_pool().release_unused()  # jemalloc would keep it for seconds more
    return matrix


def read_rows(
    features: TableSource,
    start: dt.date,
    end: dt.date,
    vocabulary: Vocabulary | None = None,
    last_from: dt.date | None = None,
    labelled: bool = True,
    key_columns: tuple[str, ...] = ("id", "date"),
    stores: Sequence[str] | None = None,
) -> Rows:
    """Released rows dated in [start, end) (of ``stores`` only, if given); unless ``labelled`` is
    False, only those with a label that is demand (not a likely stock-out's zero).

    With ``last_from``, rows dated on or after it are placed last (each part keeping file order),
    so a caller can slice the matrix into two views without copying it.
    """
    wanted = (pc.field("date") >= start) & (pc.field("date") < end) & pc.field("sell_price").is_valid()
    if labelled:
        wanted &= pc.field(LABEL_COLUMN).is_valid() & (pc.field(STOCKED_OUT_COLUMN) == 0)
    extra_keys = [c for c in key_columns if c not in FEATURE_NAMES]
    files = TableFiles.of(features)
    if stores is not None and isinstance(files, StoreFiles):
        files = files.of_stores(stores)  # their files hold their rows and no other
    elif stores is not None:
        wanted &= pc.field("store_id").isin(list(stores))
    by_store = isinstance(files, StoreFiles)  # even one store's file runs by blocks of days
    # Files by store run store by store, then by blocks of days: put back in series, then day
    # order, as the one-file store was, so a model trains on the same rows in the same order
    # however the store is laid out (LightGBM's result depends on the row order).
    read_keys = list(dict.fromkeys([*extra_keys, *(("id", "date") if by_store else ())]))
    table = files.read(columns=[*read_keys, LABEL_COLUMN, *FEATURE_NAMES], filters=wanted)
    vocabulary = vocabulary if vocabulary is not None else vocabulary_of(table)
    late = None
    if last_from is not None:
        late = pc.greater_equal(table.column("date"), pa.scalar(last_from, pa.date32())).to_numpy(zero_copy_only=False)
    order = series_day_order(table, late) if by_store else None
    if order is None and late is not None:
        order = np.argsort(late, kind="stable")
    keys = table.select(list(key_columns)).to_pandas()
    label = _column(table, LABEL_COLUMN)
    if order is not None:
        keys, label = keys.iloc[order].reset_index(drop=True), label[order]
    n_rows = table.num_rows
    columns = drained(table)
    del table  # the generator's is now the only reference: each column is freed once copied
    matrix = matrix_of(columns, n_rows, vocabulary, order)
    return Rows(keys=keys, label=label, matrix=matrix, vocabulary=vocabulary)


def series_day_order(table: pa.Table, late: np.ndarray | None = None) -> np.ndarray:
    """The permutation that puts ``table``'s rows in series (id), then day order; with ``late``
    (a flag per row), the flagged rows after the others, each part in that order."""
    if not table.num_rows:
        return np.arange(0)
    ids = table.column("id")
    if pa.types.is_dictionary(ids.type):  # each file's dictionary ranked in one sorted vocabulary
        values = np.unique(np.concatenate([c.dictionary.to_numpy(zero_copy_only=False) for c in ids.chunks]))
        rank = np.concatenate(
            [
                np.searchsorted(values, c.dictionary.to_numpy(zero_copy_only=False))[c.indices.to_numpy()]
                for c in ids.chunks
            ]
        )
    else:
        values, rank = np.unique(ids.to_numpy(zero_copy_only=False), return_inverse=True)
    day = table.column("date").cast(pa.int32()).to_numpy().astype(np.int64)
    key = rank.astype(np.int64) * (int(day.max()) + 1 - int(day.min())) + (day - day.min())
    if late is not None:
        key += late.astype(np.int64) * len(values) * (int(day.max()) + 1 - int(day.min()))
    return np.argsort(key, kind="stable")
