"""Where the raw Kaggle files are and what their header says: the one place that finds them.

Storage level, with no reading of values: the pipeline's ingest (``m5_assets.ingest``), the
partitions, the sensors, ``m5 run`` and the read side all locate the files here.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from m5_assets import tables
from m5_assets.validation.violations import DataValidationError, Violation

CALENDAR_FILE = "calendar.csv"
PRICES_FILE = "sell_prices.csv"
SALES_FILES = ("sales_train_evaluation.csv", "sales_train_validation.csv")

SALES_ID_COLUMNS = tables.SERIES_COLUMNS
DAY_COLUMN = re.compile(r"^d_(\d+)$")


@dataclass(frozen=True)
class RawFiles:
    """The three Kaggle files the pipeline reads."""

    calendar: Path
    prices: Path
    sales: Path


def locate_raw_files(raw_dir: Path) -> RawFiles:
    """Find the Kaggle files; the evaluation sales file wins over the validation one."""
    missing = [name for name in (CALENDAR_FILE, PRICES_FILE) if not (raw_dir / name).is_file()]
    sales = next((raw_dir / n for n in SALES_FILES if (raw_dir / n).is_file()), None)
    if sales is None:
        missing.append(" or ".join(SALES_FILES))
    if missing:
        raise FileNotFoundError(
            f"{raw_dir}: missing raw file(s) {', '.join(missing)}. Put the whole Kaggle M5 file set there, "
            "or empty the folder of CSV files so that `make run` generates the demo set into it."
        )
    return RawFiles(calendar=raw_dir / CALENDAR_FILE, prices=raw_dir / PRICES_FILE, sales=sales)


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
            [Violation(path.name, "(header)", "file must be UTF-8 text (is it UTF-16 or a legacy code page?)", lines=(1,))]
        ) from None
    if not header or not any(name.strip() for name in header):
        rule = "file is empty: it must start with a header line" if path.stat().st_size == 0 else "file must start with a header line"
        raise DataValidationError([Violation(path.name, "(header)", rule, lines=(1,))])
    return [name.strip() for name in header]


def raw_csv_files(raw_dir: Path) -> list[Path]:
    """Every CSV file in ``raw_dir`` (none if it does not exist)."""
    return sorted(p for p in raw_dir.iterdir() if p.suffix.lower() == ".csv") if raw_dir.is_dir() else []
