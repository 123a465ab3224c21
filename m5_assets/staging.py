"""Where a file is written before it is published: this process's folder in ``_tmp/`` beside the
table folders, renamed onto its place only when whole.

Outside every table's folder, no glob over a table (``forecasts/**``) ever sees a file being
written; on the same file system, publishing it is an atomic rename. Each writer clears what
killed writers left behind first.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

STAGING_FOLDER = "_tmp"
SHARDS_FOLDER = "_shards"  # beside the tables: a run's store groups' parts, before one step publishes them
# Another host's staging folder cannot be checked for a live writer; past this age it is stale.
STALE_AFTER_SECONDS = 24 * 3600


def staging_folder(path: Path) -> Path:
    """Where a table file is written before it is published: ``_tmp/`` beside the table folders.

    Outside every table's folder, no glob over a table (``forecasts/**``) ever sees a file being
    written; on the same file system, publishing it is an atomic rename.
    """
    if SHARDS_FOLDER in path.parts:  # a part staged in _shards/<run>/...: the warehouse's staging folder
        return Path(*path.parts[: path.parts.index(SHARDS_FOLDER)]) / STAGING_FOLDER
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


def writer_folder(path: Path) -> Path:
    """This process's folder in the staging folder of ``path``, made after clearing what killed
    writers left behind."""
    staging = staging_folder(path)
    remove_stale_partials(staging, path)
    mine = staging / f"{socket.gethostname()}-{os.getpid()}"
    mine.mkdir(parents=True, exist_ok=True)
    return mine


@contextmanager
def local_atomic_target(path: Path) -> Iterator[Path]:
    """Yield a temporary path in the staging folder; rename it onto ``path`` only if the block
    succeeds (a local file only: publishing to a warehouse goes through ``Warehouse``)."""
    partial = partial_path(path)
    try:
        yield partial
        path.parent.mkdir(parents=True, exist_ok=True)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def partial_path(path: Path) -> Path:
    """A fresh name in this process's staging folder for a file that will become ``path``."""
    return writer_folder(path) / f"{path.parent.name}.{path.name}.{uuid.uuid4().hex}.partial"
