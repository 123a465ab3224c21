"""Where the raw Kaggle files are and what their header says: the one place that finds them.

Storage level, with no reading of values: the pipeline's ingest (``m5_assets.ingest``), the
partitions, the sensors, ``m5 run`` and the read side all locate the files here. The files are
either loose in the raw folder or members of one Kaggle archive there (``m5-forecasting-accuracy.zip``
as downloaded); an archive's members are unpacked beside the raw folder, never into it, and read
from there exactly as loose files are.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from m5_assets import tables
from m5_assets.validation.violations import DataValidationError, Violation

CALENDAR_FILE = "calendar.csv"
PRICES_FILE = "sell_prices.csv"
SALES_FILES = ("sales_train_evaluation.csv", "sales_train_validation.csv")
ARCHIVE_SUFFIX = ".zip"
KAGGLE_ARCHIVE = "m5-forecasting-accuracy.zip"
# Compression methods Python's zipfile reads; anything else is refused before unpacking.
_READABLE = {zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA}

SALES_ID_COLUMNS = tables.SERIES_COLUMNS
DAY_COLUMN = re.compile(r"^d_(\d+)$")

_EXPECTED = f"{CALENDAR_FILE}, {PRICES_FILE} and {' or '.join(SALES_FILES)}"


class RawFilesError(FileNotFoundError):
    """The raw folder holds no usable Kaggle file set: files missing, a foreign or broken archive."""


@dataclass(frozen=True)
class RawFiles:
    """The three Kaggle files the pipeline reads; ``archive`` is the archive they were unpacked
    from, if they came in one."""

    calendar: Path
    prices: Path
    sales: Path
    archive: Path | None = None


@dataclass(frozen=True)
class KaggleArchive:
    """A Kaggle archive in the raw folder whose members passed the checks: ``members`` maps each
    file the pipeline reads (calendar, prices, sales, in that order) to its name in the archive."""

    path: Path
    members: dict[str, str]


def visible_entries(raw_dir: Path) -> list[Path]:
    """What the folder holds, hidden files (``.gitkeep``, ``.DS_Store``) aside; none if it does not exist."""
    return sorted(p for p in raw_dir.iterdir() if not p.name.startswith(".")) if raw_dir.is_dir() else []


def _listed(names: list[str], limit: int = 10) -> str:
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def check_raw_folder(raw_dir: Path) -> RawFiles | KaggleArchive:
    """The Kaggle file set the folder holds, loose or in one archive, checked without reading a
    value or unpacking anything; RawFilesError naming what is wrong and what was found otherwise."""
    entries = visible_entries(raw_dir)
    loose = [p for p in entries if p.is_file() and p.suffix.lower() == ".csv"]
    archives = [p for p in entries if p.is_file() and p.suffix.lower() == ARCHIVE_SUFFIX]
    if loose and archives:
        raise RawFilesError(
            f"{raw_dir} holds both loose CSV files ({_listed([p.name for p in loose])}) and the archive(s) "
            f"{_listed([p.name for p in archives])}: keep either the loose files or the archive, not both"
        )
    if len(archives) > 1:
        raise RawFilesError(
            f"{raw_dir} holds {len(archives)} archives ({_listed([p.name for p in archives])}): keep one Kaggle archive"
        )
    if archives:
        return check_archive(archives[0])
    if not loose:
        found = [p.name + ("/" if p.is_dir() else "") for p in entries]
        raise RawFilesError(
            f"{raw_dir} holds no Kaggle files{': found ' + _listed(found) if found else ''}. Put {_EXPECTED} there, "
            f"or the Kaggle archive ({KAGGLE_ARCHIVE}), or empty the folder so that `make run` generates the demo set into it."
        )
    missing = [name for name in (CALENDAR_FILE, PRICES_FILE) if not (raw_dir / name).is_file()]
    sales = next((raw_dir / n for n in SALES_FILES if (raw_dir / n).is_file()), None)
    if sales is None:
        missing.append(" or ".join(SALES_FILES))
    if missing:
        raise RawFilesError(
            f"{raw_dir}: missing raw file(s) {', '.join(missing)}. Put the whole Kaggle M5 file set there "
            f"(or the Kaggle archive, {KAGGLE_ARCHIVE}), or empty the folder so that `make run` generates the demo set into it."
        )
    assert sales is not None  # else ``missing`` names it and we raised above
    return RawFiles(calendar=raw_dir / CALENDAR_FILE, prices=raw_dir / PRICES_FILE, sales=sales)


def _hidden_member(name: str) -> bool:
    """Metadata an archiver adds (``__MACOSX/``, ``._x``, ``.DS_Store``): not a file of the data set."""
    parts = PurePosixPath(name).parts
    return any(part.startswith(".") or part == "__MACOSX" for part in parts)


def check_archive(archive: Path) -> KaggleArchive:
    """The archive's Kaggle members (found by file name, at any one folder depth), or RawFilesError
    naming what it holds instead. The same rule as loose files: the evaluation sales file wins."""
    try:
        with zipfile.ZipFile(archive) as opened:
            infos = [i for i in opened.infolist() if not i.is_dir() and not _hidden_member(i.filename)]
    except (zipfile.BadZipFile, OSError) as error:
        raise RawFilesError(
            f"{archive}: not a readable zip archive ({error}); is the download or copy complete?"
        ) from None
    names = [i.filename for i in infos]
    by_file: dict[str, list[zipfile.ZipInfo]] = {}
    for info in infos:
        by_file.setdefault(PurePosixPath(info.filename).name, []).append(info)
    sales = next((n for n in SALES_FILES if n in by_file), None)
    wanted = [CALENDAR_FILE, PRICES_FILE] + ([sales] if sales else [])
    missing = [n for n in (CALENDAR_FILE, PRICES_FILE) if n not in by_file] + (
        [] if sales else [" or ".join(SALES_FILES)]
    )
    if missing:
        raise RawFilesError(
            f"{archive} is not the Kaggle M5 archive: it lacks {', '.join(missing)}; it holds "
            f"{_listed(names) if names else 'no file'}. Expected {_EXPECTED} (Kaggle's {KAGGLE_ARCHIVE})."
        )
    repeated = [n for n in wanted if len(by_file[n]) > 1]
    if repeated:
        copies = [i.filename for n in repeated for i in by_file[n]]
        raise RawFilesError(
            f"{archive} holds more than one {', '.join(repeated)} ({_listed(copies)}): keep one of each"
        )
    for name in wanted:
        info = by_file[name][0]
        if info.flag_bits & 0x1:
            raise RawFilesError(
                f"{archive}: member {info.filename} is encrypted; unpack it yourself into the raw folder instead"
            )
        if info.compress_type not in _READABLE:
            raise RawFilesError(
                f"{archive}: member {info.filename} uses compression method {info.compress_type}, which cannot be read"
            )
    return KaggleArchive(archive, {name: by_file[name][0].filename for name in wanted})


def unpack_dir(raw_dir: Path) -> Path:
    """Where an archive's members are unpacked: beside the raw folder, which nothing writes into."""
    return raw_dir.parent / f"{raw_dir.name}_unpacked"


def unpack(archive: KaggleArchive, into: Path) -> RawFiles:
    """The archive's files, unpacked into a folder of ``into`` named after their content (names,
    CRCs and sizes): a later call, or another process, reuses it; a changed archive gets a new one
    and the old one is removed. The folder appears whole or not at all (written beside, renamed)."""
    with zipfile.ZipFile(archive.path) as opened:
        infos = {name: opened.getinfo(member) for name, member in archive.members.items()}
        identity = [[name, i.filename, i.CRC, i.file_size] for name, i in infos.items()]
        target = into / hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
        if not target.is_dir():
            into.mkdir(parents=True, exist_ok=True)
            _remove_abandoned(into)
            partial = into / f".partial-{os.getpid()}-{uuid.uuid4().hex}"
            partial.mkdir()
            try:
                for name, info in infos.items():
                    # zipfile checks each member's CRC as it reads: a damaged member raises here.
                    with opened.open(info) as source, open(partial / name, "wb") as out:
                        shutil.copyfileobj(source, out, 1 << 20)
            except BaseException as error:
                shutil.rmtree(partial)
                if isinstance(error, zipfile.BadZipFile | EOFError):
                    raise RawFilesError(
                        f"{archive.path}: a member could not be unpacked ({error}); is the download complete?"
                    ) from None
                raise
            try:
                partial.rename(target)
            except OSError:
                shutil.rmtree(partial)  # another process unpacked the same archive first
                if not target.is_dir():
                    raise
            for other in into.iterdir():
                if other != target and not other.name.startswith("."):
                    # What an earlier archive unpacked; another process may be removing it too.
                    shutil.rmtree(other, ignore_errors=True)
    names = list(infos)
    return RawFiles(calendar=target / names[0], prices=target / names[1], sales=target / names[2], archive=archive.path)


def _remove_abandoned(into: Path) -> None:
    """Partial folders of processes that are gone (killed while unpacking)."""
    for partial in into.glob(".partial-*"):
        pid = partial.name.split("-")[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(partial, ignore_errors=True)  # another process may be removing it too


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def locate_raw_files(raw_dir: Path) -> RawFiles:
    """Find the Kaggle files, loose or in an archive (unpacked beside ``raw_dir``); the evaluation
    sales file wins over the validation one. RawFilesError (a FileNotFoundError) says what is wrong."""
    found = check_raw_folder(raw_dir)
    return found if isinstance(found, RawFiles) else unpack(found, unpack_dir(raw_dir))


def read_header(path: Path) -> list[str]:
    """Column names from the first line (a UTF-8 byte-order mark is allowed)."""
    # Only the first line is decoded here; DuckDB names the line of any later bad byte.
    with open(path, "rb") as handle:
        first = b""
        while (chunk := handle.read(1 << 16)) and not re.search(b"[\r\n]", first + chunk):
            first += chunk
        first = re.split(b"[\r\n]", first + chunk, maxsplit=1)[0]
    try:
        header = next(csv.reader([first.decode("utf-8-sig")]), None)
    except UnicodeDecodeError:
        raise DataValidationError(
            [
                Violation(
                    path.name, "(header)", "file must be UTF-8 text (is it UTF-16 or a legacy code page?)", lines=(1,)
                )
            ]
        ) from None
    if not header or not any(name.strip() for name in header):
        rule = (
            "file is empty: it must start with a header line"
            if path.stat().st_size == 0
            else "file must start with a header line"
        )
        raise DataValidationError([Violation(path.name, "(header)", rule, lines=(1,))])
    return [name.strip() for name in header]


def cut_off(path: Path) -> str | None:
    """Why ``path`` looks cut off mid-copy, or None when it looks whole: a file is whole when it
    ends with a line break, or when its last line has as many fields as its header (Kaggle's
    files may end without one)."""
    size = path.stat().st_size
    if size == 0:
        return None  # an empty file is refused by name when read, not waited for
    with open(path, "rb") as handle:
        # The last line of the full sales file is about 6 KB; a mebibyte holds it whole.
        handle.seek(max(0, size - (1 << 20)))
        tail = handle.read()
    if tail.endswith((b"\n", b"\r")):
        return None
    try:
        header = read_header(path)
    except DataValidationError:
        return None  # not a CSV this can judge: reading it names the problem
    last = re.split(b"[\r\n]", tail)[-1].decode("utf-8", "replace")
    fields = len(next(csv.reader([last]), []))
    if fields == len(header):
        return None
    return (
        f"{path.name} ends mid-line: its last line has {fields} of the header's {len(header)} fields and no line break"
    )
