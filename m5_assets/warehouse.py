"""The warehouse: Parquet tables under ``$M5_DATA_DIR/warehouse``, written atomically.

Every table is one folder; an unpartitioned table is ``<name>/data.parquet`` and a partitioned
one ``<name>/<key>=<value>/data.parquet`` (hive style). Writers write into ``_tmp/`` beside the
tables and rename (``staging``), so a reader sees the old file or the new one, never half of one.
A table that must pass checks first is built whole in the staging folder and published only once
they pass (``Warehouse.staged_table``).

Where a write is published is a value, not a global: a ``Warehouse`` is the local folder, an
``ObjectStoreWarehouse`` is that folder as the working copy of a bucket (``object_store``). One
is built from the settings (``open_warehouse``) and passed to every writer.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from m5_assets.object_store import RemoteWarehouse, local_lock, mirrored_under, record_versions, relative_to_root
from m5_assets.staging import SHARDS_FOLDER, partial_path, writer_folder

DATA_FILE = "data.parquet"


def table_path(warehouse: Path, name: str, partition: tuple[str, str] | None = None) -> Path:
    """Path of a table's data file, optionally inside a hive partition folder."""
    folder = warehouse / name
    if partition is not None:
        folder = folder / f"{partition[0]}={partition[1]}"
    return folder / DATA_FILE


class Warehouse:
    """The warehouse folder at ``root``: a written file is published by renaming it into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.display})"

    @property
    def display(self) -> str:
        return str(self.root)

    def pull(self) -> list[str]:
        """Bring the folder up to date with where the warehouse lives; the paths that changed."""
        return []

    def _publish(self, written: Path, path: Path) -> None:
        """Make ``written`` the file at ``path``, whole or not at all."""
        # Made only now: a table's folder never exists without its file.
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(written, path)

    def _unpublish(self, folder: Path) -> None:
        """Withdraw the files under ``folder`` from wherever they were published beyond the folder."""

    @contextmanager
    def atomic_target(self, path: Path) -> Iterator[Path]:
        """Yield a temporary path in the staging folder; publish it as ``path`` only if the block
        succeeds."""
        partial = partial_path(path)
        try:
            yield partial
            self._publish(partial, path)
        finally:
            partial.unlink(missing_ok=True)

    def write_with(self, path: Path, write: Callable[[Path], Any]) -> None:
        """Call ``write(partial_path)`` and publish the file atomically when it returns."""
        with self.atomic_target(path) as partial:
            write(partial)

    def write_parquet_blocks(
        self,
        path: Path,
        blocks: Iterable[pa.Table],
        dictionary_columns: Sequence[str] = (),
        *,
        overlap: bool = True,
        skipped_by: Sequence[str] = (),
    ) -> None:
        """Write blocks of one schema to a single Parquet file (a row group each), atomically.

        With ``overlap``, encoding a block runs on a writer thread while the caller computes the
        next one (pyarrow releases the GIL), so building and writing overlap on two cores; without
        it, each block is encoded before the next is asked for (a caller that reuses a block's
        memory once it is written needs that). Dictionary encoding is kept to the named columns: on
        float columns it costs time and saves nothing. Of the dictionary columns, only those named
        in ``skipped_by`` (text keys a reader can skip row groups by) get min/max statistics:
        pyarrow computes them from every row's text, at more than the cost of encoding the column
        (at full scale the long table's writer took 12 s with them on all eleven, 5 s with none).
        Other columns keep theirs.
        """
        self.write_with(path, lambda partial: _write_blocks(partial, blocks, dictionary_columns, overlap, skipped_by))

    def remove_folder(self, folder: Path) -> None:
        """Delete ``folder`` and its files, wherever they were published."""
        self._unpublish(folder)
        shutil.rmtree(folder, ignore_errors=True)

    def remove(self, path: Path) -> None:
        """Delete the file at ``path``, wherever it was published."""
        self._unpublish(path)
        path.unlink(missing_ok=True)

    @contextmanager
    def staged_table(self, target: Path) -> Iterator[StagedTable]:
        """Yield a :class:`StagedTable` for ``target``: build its file at ``.path`` (a table path
        under this process's staging folder, so builders write it atomically as they write any
        table), check it, then ``publish()``. Leaving the block unpublished, by a refusal or an
        error, removes the staged file and leaves ``target`` byte-identical: readers keep the last
        good table. A killed run's staged file goes with its writer folder."""
        folder = writer_folder(target) / f"staged-{uuid.uuid4().hex}"
        staged = StagedTable(self, target, folder / target.parent.name / target.name)
        try:
            yield staged
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def shard_folder(self, run_id: str, asset: str, shard: str) -> Path:
        """Where one step of a run stages its part of ``asset`` before one step combines and
        publishes the parts: ``_shards/<run>/<asset>/<shard>/``, beside the tables, so no reader of
        a table sees a part."""
        return self.root / SHARDS_FOLDER / run_id / asset / shard

    def drop_shard_runs(self, staged: Iterable[Path]) -> None:
        """Delete the runs whose parts ``staged`` are (any path under ``_shards/<run>/``) once they
        are published, then the shards folder if no other run is staging there. A run that failed
        keeps its parts for its re-execution; a re-execution's parts may be its parent run's, so
        each part names its own run."""
        for folder in {self._shard_run(Path(path)) for path in staged}:
            self._unpublish(folder)
            shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):  # not empty: another run is staging
            (self.root / SHARDS_FOLDER).rmdir()

    def _shard_run(self, path: Path) -> Path:
        """The ``_shards/<run>`` folder that ``path`` was staged in."""
        shards = self.root / SHARDS_FOLDER
        relative = path.relative_to(shards)  # ValueError for a path staged anywhere else
        return shards / relative.parts[0]


class ObjectStoreWarehouse(Warehouse):
    """The folder at ``root`` as the local working copy of a warehouse on an object store: each
    file is published to the store first, then renamed locally (see ``object_store``)."""

    def __init__(self, root: Path, remote: RemoteWarehouse) -> None:
        super().__init__(root)
        self.remote = remote

    @property
    def display(self) -> str:
        return f"{self.remote.display} (working copy {self.root})"

    def pull(self) -> list[str]:
        return self.remote.pull(self.root)

    def _publish(self, written: Path, path: Path) -> None:
        relative = relative_to_root(path, self.root)
        if relative is None:  # outside the warehouse, or a staging file: local only
            super()._publish(written, path)
            return
        with local_lock(self.root):
            published = self.remote.push(written, relative)
            super()._publish(written, path)
            record_versions(self.root, {relative: published.version})

    def _unpublish(self, folder: Path) -> None:
        relative = relative_to_root(folder, self.root)
        if relative is None:
            return
        with local_lock(self.root):
            gone = mirrored_under(self.root, relative)
            for path in gone:
                self.remote.remove(path)
            record_versions(self.root, dict.fromkeys(gone))


def open_warehouse(root: Path, url: str = "") -> Warehouse:
    """The warehouse whose local folder is ``root``: on the object store at ``url`` if one is
    given (``$M5_WAREHOUSE_URL``), else the folder itself."""
    return ObjectStoreWarehouse(root, RemoteWarehouse(url)) if url else Warehouse(root)


class StagedTable:
    """A table file built where no reader looks, published only when :meth:`publish` is called."""

    def __init__(self, warehouse: Warehouse, target: Path, path: Path) -> None:
        self.warehouse = warehouse
        self.target = target  # the published file
        self.path = path  # where it is built and checked

    def publish(self) -> None:
        """Publish the staged file as the target (through the object store, on one)."""
        self.warehouse._publish(self.path, self.target)


def _write_blocks(
    partial: Path,
    blocks: Iterable[pa.Table],
    dictionary_columns: Sequence[str],
    overlap: bool,
    skipped_by: Sequence[str],
) -> None:
    writer, pending = None, None
    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            for block in blocks:
                if writer is None:
                    writer = pq.ParquetWriter(
                        partial,
                        block.schema,
                        # LZ4 rather than zstd: the feature store is 1.6 times the size on
                        # disk (1.0 -> 1.6 GB at full scale), but encoding it took 3 s less of
                        # the 22 s features took, and reading 28 days of it 0.27 s, not 0.40.
                        compression="lz4",
                        use_dictionary=list(dictionary_columns),
                        write_statistics=[
                            name for name in block.schema.names if name not in dictionary_columns or name in skipped_by
                        ],
                        # Version 2 pages leave the null levels uncompressed and larger batches
                        # cut per-batch work: a full-scale store file of features encoded in
                        # 1.9 s instead of 2.5 s, the same size, read as fast.
                        data_page_version="2.0",
                        write_batch_size=65_536,
                    )
                if pending is not None:
                    pending.result()
                pending = pool.submit(writer.write_table, block, row_group_size=len(block))
                if not overlap:
                    pending.result()
            if pending is not None:
                pending.result()
        finally:
            if writer is not None:
                writer.close()


@dataclass(frozen=True)
class PartitionFacts:
    """What is shown of one published partition: read from its footer and from the frame written."""

    path: Path
    rows: int
    bytes: int
    schema: pa.Schema
    preview: pd.DataFrame
    series: int | None
    first_date: str | None
    last_date: str | None


def partition_facts(path: Path, frame: pd.DataFrame, preview_rows: int = 5) -> PartitionFacts:
    """The facts of the partition file at ``path``, just written from ``frame``."""
    summary = parquet_summary(path)
    dated = "date" in frame and len(frame)
    return PartitionFacts(
        path=path,
        rows=summary["rows"],
        bytes=summary["bytes"],
        schema=summary["schema"],
        preview=frame.head(preview_rows).round(3),
        series=int(frame["id"].nunique()) if "id" in frame else None,
        first_date=str(min(frame["date"])) if dated else None,
        last_date=str(max(frame["date"])) if dated else None,
    )


def parquet_summary(path: Path) -> dict:
    """Row count, size on disk and column schema of a Parquet file, from its footer only."""
    meta = pq.read_metadata(path)
    return {
        "rows": meta.num_rows,
        "bytes": path.stat().st_size,
        "schema": pq.read_schema(path),
    }


def connect(temp_dir: Path | None = None, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-process DuckDB connection that spills to ``temp_dir`` when memory runs short."""
    con = duckdb.connect()
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = '{temp_dir}'")
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{memory_limit}'")
    return con


def scalar(con: duckdb.DuckDBPyConnection, query: str) -> Any:
    """The single value a query returns (DuckDB 2 relations keep no result between calls)."""
    return con.sql(query).fetchall()[0][0]
