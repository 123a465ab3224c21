"""The warehouse on object storage: an ``s3://`` URL (any S3-compatible store), mirrored by the
local warehouse folder, through pyarrow's filesystem layer.

Compute stays on local files: DuckDB has no S3 reader here (its httpfs extension cannot be
installed offline) and every builder writes a file beside its target and renames it. So the local
warehouse folder is a working copy of the remote one:

- **push**: each file the warehouse publishes locally is uploaded as a new, never-overwritten
  object ``<path>.<version>``, then its manifest ``_manifests/<path>.json`` (a few hundred bytes
  naming that object) is written. S3 has no rename, so the manifest is the publish: a single PUT,
  which a reader sees whole or not at all. Until it lands, readers resolve the old manifest and
  read the old object; a writer killed before it leaves an object that nothing names. Objects are
  never overwritten because a Parquet reader makes several ranged reads of one file (footer, then
  row groups): had the file been replaced in place between two of them, it would mix versions.
  The version before the current one is kept for readers still on it; older ones (and objects a
  failed push left, once an hour old) are deleted by the next publish.
- **pull**: every manifest is read, and each file whose version differs from the local copy's is
  downloaded beside its place and renamed onto it; a file whose manifest was removed is removed.

A file's path under the warehouse root is its key under the URL's prefix, so a warehouse can be
moved between a folder and a bucket unchanged.
"""

from __future__ import annotations

import calendar
import fcntl
import functools
import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from m5_assets.staging import local_atomic_target

MANIFESTS = "_manifests"
LOCAL_INDEX = "_remote_versions.json"  # in the local root: the version of each file pulled or pushed
LOCK_FILE = "_remote.lock"
VERSION_TIME = "%Y%m%dT%H%M%S"  # a version starts with its UTC time, then microseconds: they sort in time
# An object without a manifest this young may be a push in flight (upload done, manifest next).
IN_FLIGHT_SECONDS = 3600
NOT_MIRRORED = ("_tmp", "tmp")  # writers' staging folders: local only
_THREADS = 8

T = TypeVar("T")


class RemoteError(RuntimeError):
    """The object store refused or failed a request; the message names the URL and the key."""


@dataclass(frozen=True)
class Manifest:
    path: str  # the file's path under the warehouse root
    object: str  # the key of its current version, under the prefix
    version: str
    size: int
    published_at: float

    def to_json(self) -> str:
        return json.dumps(self.__dict__)


class RemoteWarehouse:
    """A warehouse root on an object store: ``s3://bucket/prefix``, with any of pyarrow's S3
    options as query parameters (``?endpoint_override=host:port&scheme=http`` for a store other
    than AWS); credentials come from the usual AWS variables."""

    def __init__(self, url: str, filesystem: pafs.FileSystem | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise ValueError(f"warehouse URL must look like s3://bucket/prefix, got {url!r}")
        self.url = url
        self.fs, base = (
            (filesystem, f"{parts.netloc}{parts.path}") if filesystem is not None else pafs.FileSystem.from_uri(url)
        )
        self.base = base.rstrip("/")

    def __repr__(self) -> str:
        return f"RemoteWarehouse({self.display})"

    @property
    def display(self) -> str:
        """The URL without its query (which may carry an endpoint or a session setting)."""
        return self.url.split("?", 1)[0]

    def _key(self, relative: str) -> str:
        return f"{self.base}/{relative}"

    def _manifest_key(self, relative: str) -> str:
        return self._key(f"{MANIFESTS}/{relative}.json")

    def _call(self, what: str, key: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except OSError as exc:  # pyarrow's S3 errors are OSErrors
            raise RemoteError(f"{self.display}: {what} {key!r} failed: {exc}") from exc

    # -- publishing ---------------------------------------------------------------------------

    def push(self, local: Path, relative: str) -> Manifest:
        """Upload ``local`` as a new version of ``relative``, then publish it with its manifest.
        A failure before the manifest is written leaves the published version as it was."""
        now = time.time()
        version = f"{time.strftime(VERSION_TIME, time.gmtime(now))}.{int(now % 1 * 1e6):06d}-{uuid.uuid4().hex[:8]}"
        obj = f"{relative}.{version}"
        previous = self._read_manifest(self._manifest_key(relative))
        self._call(
            "upload of", obj, lambda: pafs.copy_files(str(local), self._key(obj), destination_filesystem=self.fs)
        )
        manifest = Manifest(
            path=relative, object=obj, version=version, size=local.stat().st_size, published_at=time.time()
        )
        self._write(self._manifest_key(relative), manifest.to_json().encode())  # the publish
        if previous is not None:
            self._drop_versions(relative, keep={obj, previous.object}, superseded_before=previous.version)
        return manifest

    def remove(self, relative: str) -> None:
        """Unpublish ``relative`` (its manifest first, so no reader resolves it), then its objects."""
        key = self._manifest_key(relative)
        if self._call("reading", key, lambda: self.fs.get_file_info(key)).type != pafs.FileType.NotFound:
            self._call("deleting", key, lambda: self.fs.delete_file(key))
        self._drop_versions(relative, keep=set(), in_flight_seconds=0)

    def _write(self, key: str, data: bytes) -> None:
        def put() -> None:
            with self.fs.open_output_stream(key) as out:
                out.write(data)

        self._call("writing", key, put)

    def _drop_versions(
        self, relative: str, keep: set[str], superseded_before: str = "", in_flight_seconds: float = IN_FLIGHT_SECONDS
    ) -> None:
        """Delete the objects of ``relative`` but ``keep`` (the current version, and the one before
        it for readers that resolved it). Versions older than ``superseded_before`` were published
        and replaced; a younger one that no manifest names may be a push in flight (uploaded, its
        manifest next), so it goes only once ``in_flight_seconds`` old."""
        folder, name = self._key(relative).rsplit("/", 1)
        found = self._call(
            "listing", folder, lambda: self.fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
        )
        for info in found:
            if (
                info.type != pafs.FileType.File
                or not info.base_name.startswith(f"{name}.")
                or info.path[len(self.base) + 1 :] in keep
            ):
                continue
            version = info.base_name[len(name) + 1 :]
            made = _version_time(version)
            if version < superseded_before or made is None or time.time() - made >= in_flight_seconds:
                self._call("deleting", info.path, functools.partial(self.fs.delete_file, info.path))

    # -- reading ------------------------------------------------------------------------------

    def manifests(self) -> dict[str, Manifest]:
        """Every published file, by its path under the root."""
        root = self._key(MANIFESTS)
        found = self._call(
            "listing",
            root,
            lambda: self.fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True)),
        )
        keys = [info.path for info in found if info.type == pafs.FileType.File and info.path.endswith(".json")]
        with ThreadPoolExecutor(_THREADS) as pool:
            read = list(pool.map(self._read_manifest, keys))
        return {m.path: m for m in read if m is not None}

    def _read_manifest(self, key: str) -> Manifest | None:
        try:
            with self.fs.open_input_stream(key) as stream:
                return Manifest(**json.loads(stream.read()))
        except FileNotFoundError:
            return None  # unpublished since it was listed
        except (OSError, ValueError, TypeError) as exc:
            raise RemoteError(f"{self.display}: manifest {key!r} could not be read: {exc}") from exc

    def pull(self, root: Path) -> list[str]:
        """Bring the local warehouse at ``root`` up to the remote one; the paths that changed.
        Holds the root's lock, so no local writer publishes a file while it is replaced."""
        with local_lock(root):
            index = _read_index(root)
            published = self.manifests()
            changed = [
                m for path, m in published.items() if index.get(path) != m.version or not (root / path).is_file()
            ]
            with ThreadPoolExecutor(_THREADS) as pool:
                list(pool.map(lambda m: self._download(m, root), changed))
            gone = [path for path in index if path not in published]
            for path in gone:
                (root / path).unlink(missing_ok=True)
            _write_index(root, {path: m.version for path, m in published.items()})
        return sorted([m.path for m in changed] + gone)

    def _download(self, manifest: Manifest, root: Path) -> None:
        target = root / manifest.path
        with local_atomic_target(target) as partial:
            self._call(
                "download of",
                manifest.object,
                lambda: pafs.copy_files(self._key(manifest.object), str(partial), source_filesystem=self.fs),
            )


def _version_time(version: str) -> float | None:
    try:
        return calendar.timegm(time.strptime(version.split(".", 1)[0], VERSION_TIME))
    except ValueError:
        return None


def relative_to_root(path: Path, root: Path) -> str | None:
    """``path``'s key under ``root``, or None when it is outside it or in a staging folder."""
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return None
    if relative.parts and relative.parts[0] in NOT_MIRRORED + (MANIFESTS, LOCAL_INDEX, LOCK_FILE):
        return None
    return relative.as_posix()


def _read_index(root: Path) -> dict[str, str]:
    try:
        return json.loads((root / LOCAL_INDEX).read_text())
    except FileNotFoundError:
        return {}


def _write_index(root: Path, index: dict[str, str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    partial = root / f".{LOCAL_INDEX}.{os.getpid()}.{uuid.uuid4().hex}"
    partial.write_text(json.dumps(index, sort_keys=True))
    os.replace(partial, root / LOCAL_INDEX)


def record_versions(root: Path, versions: dict[str, str | None]) -> None:
    """Note pushed (or, with None, removed) versions in the local index, so the next pull neither
    downloads them back nor deletes them. Call it holding ``local_lock(root)``."""
    index = _read_index(root)
    for path, version in versions.items():
        if version is None:
            index.pop(path, None)
        else:
            index[path] = version
    _write_index(root, index)


def mirrored_under(root: Path, folder: str) -> list[str]:
    """The mirrored files under ``folder`` (a path under ``root``; the file itself if it is one),
    from the local index."""
    prefix = folder.rstrip("/") + "/"
    return [path for path in _read_index(root) if path.startswith(prefix) or path == folder]


@contextmanager
def local_lock(root: Path) -> Iterator[None]:
    """One process at a time publishes to, or pulls into, the local working copy at ``root``:
    a pull must not put an older version over a file another process has just pushed."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
