"""Read the Kaggle M5 files under their contract and keep typed Parquet copies of them.

Reading is strict: a missing or unexpected column, a value that does not parse as its type, or a
row with too few or too many fields stops the read with a :class:`DataValidationError` that names
the file, the column, the rule and the offending lines. Nothing is coerced and no row is dropped.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from m5_assets.warehouse import atomic_target
from m5_assets.validation.violations import DataValidationError, Violation

CALENDAR_FILE = "calendar.csv"
PRICES_FILE = "sell_prices.csv"
SALES_FILES = ("sales_train_evaluation.csv", "sales_train_validation.csv")

SALES_ID_COLUMNS = ("id", "item_id", "dept_id", "cat_id", "store_id", "state_id")
DAY_COLUMN = re.compile(r"^d_(\d+)$")
SNAP_COLUMN = re.compile(r"^snap_\w+$")

CALENDAR_TYPES = {
    "date": "DATE",
    "wm_yr_wk": "INTEGER",
    "weekday": "VARCHAR",
    "wday": "INTEGER",
    "month": "INTEGER",
    "year": "INTEGER",
    "d": "VARCHAR",
    "event_name_1": "VARCHAR",
    "event_type_1": "VARCHAR",
    "event_name_2": "VARCHAR",
    "event_type_2": "VARCHAR",
}
PRICES_TYPES = {"store_id": "VARCHAR", "item_id": "VARCHAR", "wm_yr_wk": "INTEGER", "sell_price": "DOUBLE"}


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
            f"{raw_dir}: missing raw file(s) {', '.join(missing)}. Put the Kaggle M5 files there, "
            "or generate the demo set with `m5 generate --scale small --out <dir>`."
        )
    return RawFiles(calendar=raw_dir / CALENDAR_FILE, prices=raw_dir / PRICES_FILE, sales=sales)


def read_header(path: Path) -> list[str]:
    """Column names from the first line (a UTF-8 byte-order mark is allowed)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        header = next(csv.reader(handle), None)
    if not header:
        raise DataValidationError([Violation(path.name, "(header)", "file must start with a header line", 1)])
    return [name.strip() for name in header]


def calendar_types(header: list[str]) -> dict[str, str]:
    """Kaggle calendar columns plus one ``snap_<STATE>`` 0/1 column per state."""
    types = dict(CALENDAR_TYPES)
    types.update({c: "TINYINT" for c in header if SNAP_COLUMN.match(c)})
    return types


def sales_types(header: list[str]) -> dict[str, str]:
    """Sales id columns as text and one integer column of units per ``d_<k>``."""
    types = {c: "VARCHAR" for c in SALES_ID_COLUMNS}
    types.update({c: "INTEGER" for c in header if DAY_COLUMN.match(c)})
    return types


def _header_violations(path: Path, header: list[str], expected: dict[str, str]) -> list[Violation]:
    missing = [c for c in expected if c not in header]
    unexpected = [c for c in header if c not in expected]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    found = []
    for column in missing:
        found.append(Violation(path.name, column, "required column is missing", 0))
    for column in unexpected:
        found.append(Violation(path.name, column, "column is not part of the Kaggle M5 schema", 0))
    for column in duplicated:
        found.append(Violation(path.name, column, "column name appears more than once", 0))
    return found


def _day_column_violations(path: Path, header: list[str]) -> list[Violation]:
    """Day columns must be consecutive ``d_k`` in increasing order."""
    days = [int(DAY_COLUMN.match(c).group(1)) for c in header if DAY_COLUMN.match(c)]
    if not days:
        return [Violation(path.name, "d_1", "at least one day column d_k is required", 0)]
    expected = list(range(days[0], days[0] + len(days)))
    if days != expected:
        bad = next(f"d_{a}" for a, b in zip(days, expected, strict=True) if a != b)
        return [Violation(path.name, bad, "day columns must be consecutive d_k in increasing order", 1)]
    return []


def _reject_violations(con: duckdb.DuckDBPyConnection, path: Path, types: dict[str, str]) -> list[Violation]:
    """Turn DuckDB's reject table into violations grouped by column and error kind."""
    rejects = con.sql(
        "SELECT line, column_name, error_type, error_message FROM reject_errors ORDER BY line, column_idx"
    ).df()
    if rejects.empty:
        return []
    violations = []
    # A short row reports every missing column; the first one is the useful one.
    rejects = rejects.drop_duplicates(subset=["line", "error_type"])
    for (column, kind), rows in rejects.groupby(["column_name", "error_type"], sort=False, observed=True):
        if kind == "CAST":
            rule = f"values must parse as {types.get(column, '?')}"
        elif kind in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
            rule = f"every row must have {len(types)} fields ({kind.lower()}; truncated or malformed file?)"
        else:
            rule = f"row must be well-formed CSV ({kind.lower()})"
        examples = rows.assign(error=rows["error_message"].str.slice(0, 100))[["line", "error"]]
        violations.append(Violation(path.name, str(column), rule, len(rows), examples))
    return violations


def copy_raw_csv(con: duckdb.DuckDBPyConnection, path: Path, types: dict[str, str], target: Path) -> None:
    """Copy a raw CSV to Parquet with exactly ``types``, or raise naming every structural problem.

    The Parquet file is published only when every line parsed, so a bad file leaves no table.
    """
    header = read_header(path)
    violations = _header_violations(path, header, types)
    if path.name in SALES_FILES:
        violations += _day_column_violations(path, header)
    if violations:
        raise DataValidationError(violations)
    ordered = {c: types[c] for c in header}
    con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
    query = (
        f"SELECT * FROM read_csv('{path}', header = true, auto_detect = false, columns = {ordered!r}, "
        "store_rejects = true, dateformat = '%Y-%m-%d')"
    )
    with atomic_target(target) as partial:
        con.execute(f"COPY ({query}) TO '{partial}' (FORMAT parquet, COMPRESSION zstd)")
        violations = _reject_violations(con, path, ordered)
        if violations:
            raise DataValidationError(violations)
