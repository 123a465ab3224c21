"""The warehouse: Parquet tables under ``$M5_DATA_DIR/warehouse``, written atomically.

Every table is one folder; an unpartitioned table is ``<name>/data.parquet`` and a partitioned
one ``<name>/<key>=<value>/data.parquet`` (hive style). Writers write into ``_tmp/`` beside the
tables and rename, so a reader sees the old file or the new one, never half of one, and a glob
over a table's folder never meets a file being written. A table that must pass checks first is
built whole in the staging folder and renamed only once they pass (``staged_table``). This
module is the one reader of the warehouse that the assets, the API and the dashboard share.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from m5_assets.object_store import RemoteWarehouse, local_lock, mirrored_under, record_versions, relative_to_root

DATA_FILE = "data.parquet"


def table_path(warehouse: Path, name: str, partition: tuple[str, str] | None = None) -> Path:
    """Path of a table's data file, optionally inside a hive partition folder."""
    folder = warehouse / name
    if partition is not None:
        folder = folder / f"{partition[0]}={partition[1]}"
    return folder / DATA_FILE


STAGING_FOLDER = "_tmp"
# Another host's staging folder cannot be checked for a live writer; past this age it is stale.
STALE_AFTER_SECONDS = 24 * 3600


def staging_folder(path: Path) -> Path:
    """Where a table file is written before it is published: ``_tmp/`` beside the table folders.

    Outside every table's folder, no glob over a table (``forecasts/**``) ever sees a file being
    written; on the same file system, publishing it is an atomic rename.
    """
    table_folder = path.parent.parent if "=" in path.parent.name else path.parent
    return table_folder.parent / STAGING_FOLDER


def _writer_alive(name: str, host: str) -> bool:
    writer_host, _, pid = name.rpartition("-")
    if writer_host != host or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def remove_stale_partials(staging: Path, target: Path | None = None) -> list[Path]:
    """Delete what killed writers left: staging folders of dead processes on this host, folders of
    other hosts older than a day, and files left beside ``target`` by writers before ``_tmp/``."""
    host, removed = socket.gethostname(), []
    if staging.is_dir():
        now = time.time()
        for folder in staging.iterdir():
            try:
                stale = not _writer_alive(folder.name, host) or now - folder.stat().st_mtime > STALE_AFTER_SECONDS
            except FileNotFoundError:
                continue  # another writer removed it first
            if stale:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
    if target is not None and target.parent.is_dir():
        for legacy in target.parent.glob(f".{target.name}.*.partial"):
            legacy.unlink(missing_ok=True)
            removed.append(legacy)
    return removed


# Local warehouse roots whose published files are published to an object store too.
_mirrors: dict[Path, RemoteWarehouse] = {}


def mirror_to(root: Path, remote: RemoteWarehouse | None) -> None:
    """From now on, publish every file written under ``root`` to ``remote`` as well (None: stop)."""
    if remote is None:
        _mirrors.pop(root.resolve(), None)
    else:
        _mirrors[root.resolve()] = remote


def _mirror_of(path: Path) -> tuple[Path, RemoteWarehouse, str] | None:
    for root, remote in _mirrors.items():
        relative = relative_to_root(path, root)
        if relative is not None:
            return root, remote, relative
    return None


def _writer_folder(path: Path) -> Path:
    """This process's folder in the staging folder of ``path``, made after clearing what killed
    writers left behind."""
    staging = staging_folder(path)
    remove_stale_partials(staging, path)
    mine = staging / f"{socket.gethostname()}-{os.getpid()}"
    mine.mkdir(parents=True, exist_ok=True)
    return mine


def _publish(written: Path, path: Path, mirror: bool = True) -> None:
    """Rename ``written`` onto ``path``; under a mirrored root, push it to the object store first."""
    # Made only now: a table's folder never exists without its file.
    path.parent.mkdir(parents=True, exist_ok=True)
    mirrored = _mirror_of(path) if mirror else None
    if mirrored is None:
        os.replace(written, path)
    else:
        root, remote, relative = mirrored
        with local_lock(root):
            published = remote.push(written, relative)
            os.replace(written, path)
            record_versions(root, {relative: published.version})


@contextmanager
def atomic_target(path: Path, mirror: bool = True):
    """Yield a temporary path in the staging folder; rename it onto ``path`` only if the block
    succeeds. A writer first clears what killed writers left behind. Under a mirrored root the
    file is published to the object store first, then renamed locally (see ``object_store``)."""
    partial = _writer_folder(path) / f"{path.parent.name}.{path.name}.{uuid.uuid4().hex}.partial"
    try:
        yield partial
        _publish(partial, path, mirror)
    finally:
        partial.unlink(missing_ok=True)


class StagedTable:
    """A table file built where no reader looks, published only when :meth:`publish` is called."""

    def __init__(self, target: Path, path: Path):
        self.target = target  # the published file
        self.path = path  # where it is built and checked

    def publish(self) -> None:
        """Rename the staged file onto the published one (through the object store if mirrored)."""
        _publish(self.path, self.target)


@contextmanager
def staged_table(target: Path):
    """Yield a :class:`StagedTable` for ``target``: build its file at ``.path`` (a table path under
    this process's staging folder, so builders write it atomically as they write any table), check
    it, then ``publish()``. Leaving the block unpublished, by a refusal or an error, removes the
    staged file and leaves ``target`` byte-identical: readers keep the last good table. A killed
    run's staged file goes with its writer folder (see ``remove_stale_partials``)."""
    folder = _writer_folder(target) / f"staged-{uuid.uuid4().hex}"
    staged = StagedTable(target, folder / target.parent.name / target.name)
    try:
        yield staged
    finally:
        shutil.rmtree(folder, ignore_errors=True)


SHARDS_FOLDER = "_shards"


def shard_folder(warehouse: Path, run_id: str, name: str) -> Path:
    """Where a run's parallel steps stage their parts before one step combines and publishes them:
    ``_shards/<run>/<name>``, beside the tables, so no reader of a table ever sees a part."""
    return warehouse / SHARDS_FOLDER / run_id / name


def drop_shard_runs(warehouse: Path, run_folders: Iterable[Path]) -> None:
    """Delete runs' staged parts once they are published, then the shards folder if no other run
    is staging there. A run that failed keeps its parts for its re-execution, which reads them."""
    for folder in set(run_folders):
        unpublish_tree(folder)
        shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):  # not empty: another run is staging
        (warehouse / SHARDS_FOLDER).rmdir()


def unpublish_tree(folder: Path) -> None:
    """Withdraw the files under ``folder`` from the object store its root mirrors to, if any."""
    mirrored = _mirror_of(folder)
    if mirrored is None:
        return
    root, remote, relative = mirrored
    with local_lock(root):
        gone = mirrored_under(root, relative)
        for path in gone:
            remote.remove(path)
        record_versions(root, dict.fromkeys(gone))


def write_with(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(partial_path)`` and publish the file atomically when it returns."""
    with atomic_target(path) as partial:
        write(partial)


def write_parquet_blocks(path: Path, blocks: Iterable[pa.Table], dictionary_columns: Sequence[str] = ()) -> None:
    """Write blocks of one schema to a single Parquet file (a row group each), atomically.

    Encoding a block runs on a writer thread while the caller computes the next one (pyarrow
    releases the GIL), so building and writing overlap on two cores. Dictionary encoding is kept
    to the named columns: on float columns it costs time and saves nothing.
    """

    def write(partial: Path) -> None:
        writer, pending = None, None
        with ThreadPoolExecutor(max_workers=1) as pool:
            try:
                for block in blocks:
                    if writer is None:
                        writer = pq.ParquetWriter(
                            partial,
                            block.schema,
                            compression="zstd",
                            compression_level=1,
                            use_dictionary=list(dictionary_columns),
                        )
                    if pending is not None:
                        pending.result()
                    pending = pool.submit(writer.write_table, block, row_group_size=len(block))
                if pending is not None:
                    pending.result()
            finally:
                if writer is not None:
                    writer.close()

    write_with(path, write)


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


def scalar(con: duckdb.DuckDBPyConnection, query: str):
    """The single value a query returns (DuckDB 2 relations keep no result between calls)."""
    return con.sql(query).fetchall()[0][0]
