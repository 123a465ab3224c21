"""The Parquet files that hold one version of a table, and tables stored a file per store.

Most tables are one file (``<table>/data.parquet``). The feature store is stored a file per store,
``<table>/generation=<g>/<store>.parquet``, so a store group's step writes its own stores' files
and nothing else, and a read of some stores or some days opens only what it needs (each file's
row groups run in date order). A generation is published by one small write, the table's
``_manifest.json`` naming it: a reader sees every store of the old generation or every store of
the new one, never a mix, on a local folder as on an object store (which has no atomic rename of
a folder). The generation before the current one stays for readers still on it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from m5_assets.staging import STALE_AFTER_SECONDS

if TYPE_CHECKING:  # the writers pass their warehouse in; this module is read without one
    from m5_assets.warehouse import Warehouse

MANIFEST = "_manifest.json"
GENERATION_PREFIX = "generation="
LEGACY_FILE = "data.parquet"
# The text keys readers of a table stored by store skip row groups by: a series (a lookup of some
# series' forecasts or features) and a store (a sharded read over every store's file).
SKIPPED_BY = ("id", "store_id")
MIGRATE_COMMAND = "m5 migrate-warehouse"
# A store file's layout: each row's row group from its series' and day's positions, and the
# store's numbers of series and days.
RowGroupsOf = Callable[[np.ndarray, np.ndarray, int, int], np.ndarray]


class LegacyLayout(RuntimeError):
    """A table written before it was stored by store: the message names the command that moves it."""


@dataclass(frozen=True)
class TableFiles:
    """Parquet files read as one table, in order."""

    paths: tuple[Path, ...]

    @classmethod
    def of(cls, source: Path | str | TableFiles) -> TableFiles:
        """``source`` as files: itself, or the one file at a path."""
        return source if isinstance(source, TableFiles) else cls((Path(source),))

    def __str__(self) -> str:
        return (
            str(self.paths[0]) if len(self.paths) == 1 else f"{self.paths[0].parent.parent} ({len(self.paths)} files)"
        )

    def scan(self) -> str:
        """A DuckDB table expression over the files (folder names are not read as columns)."""
        listed = ", ".join(f"'{path}'" for path in self.paths)
        return f"read_parquet([{listed}], hive_partitioning = false)"

    def read(self, columns: Sequence[str] | None = None, filters: ds.Expression | list | None = None) -> pa.Table:
        """The rows ``filters`` keeps (an expression, or pyarrow's list form), file by file in
        order; row groups whose statistics rule the filter out are skipped."""
        if len(self.paths) == 1:
            return pq.read_table(self.paths[0], columns=columns, filters=filters)
        if isinstance(filters, list):
            filters = pq.filters_to_expression(filters)
        dataset = ds.dataset([str(p) for p in self.paths], format="parquet")
        return dataset.to_table(columns=list(columns) if columns is not None else None, filter=filters)

    @property
    def schema(self) -> pa.Schema:
        return pq.read_schema(self.paths[0])

    @property
    def location(self) -> Path:
        """The file, or the folder holding all of them."""
        return self.paths[0] if len(self.paths) == 1 else Path(os.path.commonpath(self.paths))

    def digest(self) -> str:
        """A short fingerprint of the files from their footers (name, rows, row groups, columns,
        size): it changes when any file is rewritten differently, without reading a row."""
        fingerprint = hashlib.sha256()
        for path in self.paths:
            meta = pq.read_metadata(path)
            fields = (path.name, meta.num_rows, meta.num_row_groups, meta.num_columns, meta.serialized_size)
            fingerprint.update(repr((*fields, path.stat().st_size)).encode())
        return fingerprint.hexdigest()[:12]

    @property
    def rows(self) -> int:
        return sum(pq.read_metadata(path).num_rows for path in self.paths)

    @property
    def bytes(self) -> int:
        return sum(path.stat().st_size for path in self.paths)


TableSource = Path | TableFiles  # what a reader of a table is given: a data file, or the table's files


@dataclass(frozen=True, init=False)
class StoreFiles(TableFiles):
    """One generation of a table stored a file per store."""

    folder: Path  # the table's folder
    generation: str
    stores: tuple[str, ...]

    def __init__(self, folder: Path, generation: str, stores: Iterable[str]) -> None:
        stores = tuple(sorted(map(str, stores)))
        object.__setattr__(self, "folder", Path(folder))
        object.__setattr__(self, "generation", generation)
        object.__setattr__(self, "stores", stores)
        object.__setattr__(self, "paths", tuple(self.path(store) for store in stores))

    @property
    def generation_folder(self) -> Path:
        return self.folder / f"{GENERATION_PREFIX}{self.generation}"

    def path(self, store: str) -> Path:
        return self.generation_folder / f"{store}.parquet"

    def of_stores(self, stores: Iterable[str]) -> StoreFiles:
        """The files of ``stores`` only."""
        wanted = set(map(str, stores))
        unknown = wanted - set(self.stores)
        if unknown:
            raise ValueError(f"{self.folder}: no store {sorted(unknown)} in generation {self.generation}")
        return StoreFiles(self.folder, self.generation, wanted)


def new_generation(tag: str = "") -> str:
    """A generation name that sorts in time: UTC time, then ``tag`` (a run id) or a random part."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{(tag or uuid.uuid4().hex)[:8]}"


def _manifest(folder: Path) -> dict | None:
    path = folder / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def read_store_files(folder: Path) -> StoreFiles:
    """The published generation of the table in ``folder``.

    Raises ``LegacyLayout`` (naming the command that moves it) for a table written as one file
    before it was stored by store, and ``FileNotFoundError`` for a table never published.
    """
    manifest = _manifest(folder)
    if manifest is None:
        if (folder / LEGACY_FILE).exists():
            raise LegacyLayout(
                f"{folder / LEGACY_FILE} is the feature store as one file, from before it was stored by "
                f"store; run `{MIGRATE_COMMAND}` to move it to the current layout (or materialize it again)"
            )
        raise FileNotFoundError(f"{folder / MANIFEST}: the table has not been published yet")
    return StoreFiles(folder, manifest["generation"], manifest["stores"])


def publish_store_files(storage: Warehouse, files: StoreFiles) -> None:
    """Make ``files`` the table's published generation (one manifest write), then delete what no
    reader can be on: generations before the one just replaced, and generations never published
    and older than a day (a killed run's). A younger unpublished generation is another run's,
    still writing."""
    missing = [str(path) for path in files.paths if not path.exists()]
    if missing:
        raise FileNotFoundError(f"{files.folder}: generation {files.generation} lacks {missing[:3]}")
    current = _manifest(files.folder)
    previous = current["generation"] if current and current["generation"] != files.generation else None
    if current and previous is None:
        previous = current.get("previous")
    manifest = {"generation": files.generation, "previous": previous, "stores": list(files.stores)}
    storage.write_with(files.folder / MANIFEST, lambda partial: partial.write_text(json.dumps(manifest, indent=1)))
    if (files.folder / LEGACY_FILE).exists():  # the one file of before the move: no reader opens it now
        storage.remove(files.folder / LEGACY_FILE)
    for name, folder in generations(files.folder).items():
        if name in (files.generation, previous):
            continue
        stale = time.time() - folder.stat().st_mtime > STALE_AFTER_SECONDS
        if (previous is not None and name < previous) or stale:
            storage.remove_folder(folder)


def generations(folder: Path) -> dict[str, Path]:
    """The generation folders in a table's ``folder``, by name."""
    if not folder.is_dir():
        return {}
    return {
        path.name.removeprefix(GENERATION_PREFIX): path
        for path in folder.iterdir()
        if path.is_dir() and path.name.startswith(GENERATION_PREFIX)
    }


def drop_generation(storage: Warehouse, files: StoreFiles) -> None:
    """Delete an unpublished generation (a refused build's); a published one is never dropped."""
    manifest = _manifest(files.folder)
    if manifest and files.generation in (manifest["generation"], manifest.get("previous")):
        raise ValueError(f"{files.folder}: generation {files.generation} is published")
    storage.remove_folder(files.generation_folder)


def migrate_to_store_files(
    storage: Warehouse, folder: Path, row_groups_of: RowGroupsOf, dictionary_columns: Sequence[str]
) -> StoreFiles | None:
    """Move the one-file table in ``folder`` (``data.parquet``, from before it was stored by
    store) to a generation of one file per store, in the row groups ``row_groups_of`` gives a
    store's rows (from each row's series position in the store and day position, and the store's
    series and days), and publish it; None if there is no such file. Rows and values are
    unchanged."""
    legacy = folder / LEGACY_FILE
    if (folder / MANIFEST).exists() or not legacy.exists():
        return None
    keys = pq.read_table(legacy, columns=["store_id", "date"])
    stores = sorted(str(s) for s in pc.unique(keys.column("store_id").cast(pa.string())).to_pylist())
    first = pc.min(keys.column("date")).as_py()
    n_days = (pc.max(keys.column("date")).as_py() - first).days + 1
    files = StoreFiles(folder, new_generation("migrate"), stores)
    for store in stores:
        table = pq.read_table(legacy, filters=pc.field("store_id") == store)
        # The file's dictionaries hold every store's values: keep this store's only.
        table = pa.table(
            {
                name: column.cast(column.type.value_type).dictionary_encode()
                if pa.types.is_dictionary(column.type)
                else column
                for name, column in zip(table.column_names, table.columns, strict=True)
            }
        )
        days = pc.days_between(pa.scalar(first, pa.date32()), table.column("date")).to_numpy()
        ids, series = np.unique(
            table.column("id").cast(pa.string()).to_numpy(zero_copy_only=False), return_inverse=True
        )
        group = row_groups_of(series, days, len(ids), n_days)
        order = np.lexsort((days, series, group))  # each row group's rows series by series, in date order
        table, group = table.take(pa.array(order)), group[order]
        bounds = np.flatnonzero(np.diff(group)) + 1
        storage.write_parquet_blocks(
            files.path(store),
            (table.slice(a, b - a) for a, b in zip([0, *bounds], [*bounds, len(group)], strict=True)),
            dictionary_columns=dictionary_columns,
            skipped_by=SKIPPED_BY,
        )
    publish_store_files(storage, files)
    return files
