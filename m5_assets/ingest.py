"""Read the Kaggle M5 files under their contract and keep typed Parquet copies of them.

Reading is strict: a missing or unexpected column, a value that does not parse as its type, or a
row with too few or too many fields stops the read with a :class:`DataValidationError` that names
the file, the column, the rule and the offending lines. Nothing is coerced and no row is dropped:
an integer column holding ``1.5`` is an error, not a 2.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from m5_assets.raw_files import DAY_COLUMN, SALES_FILES, SALES_ID_COLUMNS, read_header
from m5_assets.validation.violations import MAX_EXAMPLES, DataValidationError, Violation, lines_of
from m5_assets.warehouse import Warehouse

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
INTEGER_RANGES = {"INTEGER": (-(2**31), 2**31 - 1), "TINYINT": (-128, 127)}
# The message a checked read stops with when an integer column holds a fraction or is out of range.
NOT_WHOLE = "m5: integer column holds a value that is not a whole number of its type"


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
    if len(header) == 1 and (separator := next((s for s in ";\t|" if s in header[0]), None)):
        return [Violation(path.name, "(header)", f"fields must be separated by commas, not {separator!r}", lines=(1,))]
    found = []
    for position, name in enumerate(header, start=1):
        if not name:
            found.append(
                Violation(
                    path.name,
                    f"(column {position})",
                    "header names every column: an empty name (a stray delimiter at the end of the line?)",
                    lines=(1,),
                )
            )
    for column in [c for c in expected if c not in header]:
        found.append(Violation(path.name, column, "required column is missing from the header", lines=(1,)))
    for column in [c for c in header if c and c not in expected]:
        found.append(Violation(path.name, column, "column is not part of the Kaggle M5 schema", lines=(1,)))
    for column in sorted({c for c in header if c and header.count(c) > 1}):
        found.append(Violation(path.name, column, "column name appears more than once in the header", lines=(1,)))
    return found


def _day_column_violations(path: Path, header: list[str]) -> list[Violation]:
    """Day columns must be consecutive ``d_k`` in increasing order."""
    days = [int(found.group(1)) for c in header if (found := DAY_COLUMN.match(c))]
    if not days:
        return [Violation(path.name, "d_1", "at least one day column d_k is required in the header", lines=(1,))]
    missing = sorted(set(range(min(days), max(days) + 1)) - set(days))
    if missing:
        names = ", ".join(f"d_{k}" for k in missing[:MAX_EXAMPLES]) + (", ..." if len(missing) > MAX_EXAMPLES else "")
        rule = f"day column(s) missing from the header: days must run d_{min(days)} .. d_{max(days)} without a gap"
        return [Violation(path.name, names, rule, lines=(1,))]
    if len(set(days)) == len(days) and days != sorted(days):
        bad = next(f"d_{a}" for a, b in zip(days, sorted(days), strict=True) if a != b)
        return [Violation(path.name, bad, "day columns must be consecutive d_k in increasing order", lines=(1,))]
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
            if rows["error_message"].str.contains(f'string "{column}"', regex=False).all():
                rule += " (the header line repeats inside the file?)"
            # Integer columns are read as DOUBLE (see _read_query); say the type of the contract.
            rows = rows.assign(error_message=rows["error_message"].str.replace("'DOUBLE'", f"'{types.get(column)}'"))
        elif kind in ("MISSING COLUMNS", "TOO MANY COLUMNS"):
            rule = f"every row must have {len(types)} fields ({kind.lower()}; truncated or malformed file?)"
        elif kind == "INVALID ENCODING":
            rule = "file must be UTF-8 text (is it UTF-16 or a legacy code page?)"
        else:
            rule = f"row must be well-formed CSV ({kind.lower()})"
        examples = rows.assign(error=rows["error_message"].str.slice(0, 100))[["line", "error"]]
        violations.append(Violation(path.name, str(column), rule, len(rows), examples, lines_of(examples)))
    return violations


def _text_lines(path: Path) -> int:
    """Lines up to the last one holding text, whatever the line ends (LF, CRLF or CR)."""
    breaks, carriage_before = 0, False
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            pairs = chunk.count(b"\r\n") + (carriage_before and chunk.startswith(b"\n"))
            breaks += chunk.count(b"\n") + chunk.count(b"\r") - pairs
            carriage_before = chunk.endswith(b"\r")
        handle.seek(max(0, handle.tell() - 4096))
        tail = handle.read()
    ends = tail[len(tail.rstrip(b"\r\n")) :]
    return breaks - (ends.count(b"\n") + ends.count(b"\r") - ends.count(b"\r\n")) + 1


def _first_irregular_line(path: Path) -> Violation:
    """The first blank line, or record spread over several lines, before the last record."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader, ended = csv.reader(handle), 0
        for record in reader:
            if not record:
                return Violation(
                    path.name,
                    "(row)",
                    "blank line between rows: every line after the header holds one row",
                    lines=(reader.line_num,),
                )
            if reader.line_num - ended > 1:
                return Violation(
                    path.name,
                    "(row)",
                    f"a quoted value spans lines {ended + 1} .. {reader.line_num}: values must not contain line breaks",
                    lines=(ended + 1,),
                )
            ended = reader.line_num
    return Violation(path.name, "(row)", "every line after the header must hold exactly one row", lines=(2,))


def _layout_violations(path: Path, rows: int) -> list[Violation]:
    """A file with no rows, or rows that are not one per line (line numbers would be wrong)."""
    if rows == 0:
        return [
            Violation(
                path.name, "(rows)", "file holds no data rows: at least one row must follow the header", lines=(2,)
            )
        ]
    if _text_lines(path) != rows + 1:
        return [_first_irregular_line(path)]
    return []


def _is_integer(sql_type: str) -> bool:
    return sql_type in INTEGER_RANGES


def _read_query(path: Path, types: dict[str, str], checked: bool) -> str:
    """Integer columns are read as DOUBLE, so that a fraction is seen rather than rounded, and cast
    back only where whole (``checked``: anything else stops the query; otherwise kept as read)."""
    read_as = {c: "DOUBLE" if _is_integer(t) else t for c, t in types.items()}
    columns = []
    for column, sql_type in types.items():
        name = f'"{column}"'
        if _is_integer(sql_type) and checked:
            # TRY_CAST rounds 1.5 to 2 and gives NULL for NaN, infinities and values out of range,
            # so it equals the value read exactly when that is a whole number of the type.
            value = f"TRY_CAST({name} AS {sql_type})"
            columns.append(
                f"CASE WHEN {name} IS NULL OR {value} = {name} THEN {value} ELSE error('{NOT_WHOLE}') END AS {name}"
            )
        else:
            columns.append(name)
    return (
        f"SELECT {', '.join(columns)} FROM read_csv('{path}', header = true, auto_detect = false, "
        f"columns = {read_as!r}, store_rejects = true, dateformat = '%Y-%m-%d')"
    )


def _not_whole_violations(
    con: duckdb.DuckDBPyConnection, path: Path, types: dict[str, str], as_read: Path
) -> list[Violation]:
    """Integer cells of ``as_read`` (the file copied with integer columns as DOUBLE) that are not
    whole numbers of their type, one violation per column type's rule."""
    found = []
    for sql_type, (low, high) in INTEGER_RANGES.items():
        columns = [c for c, t in types.items() if t == sql_type]
        if not columns:
            continue
        quoted = ", ".join(f'"{c}"' for c in columns)
        bad = con.sql(
            f"""SELECT line, "column", value FROM (
                    UNPIVOT (SELECT file_row_number + 2 AS line, {quoted} FROM read_parquet('{as_read}', file_row_number = true))
                    ON {quoted} INTO NAME "column" VALUE value)
                WHERE NOT (isfinite(value) AND value = trunc(value) AND value BETWEEN {low} AND {high})
                ORDER BY line"""
        ).df()
        if bad.empty:
            continue
        names = list(dict.fromkeys(bad["column"]))
        column = ", ".join(names[:MAX_EXAMPLES]) + (", ..." if len(names) > MAX_EXAMPLES else "")
        rule = f"values must be whole numbers of type {sql_type} ({low} .. {high}); nothing is rounded"
        found.append(Violation(path.name, column, rule, len(bad), bad.head(MAX_EXAMPLES), lines_of(bad)))
    return found


def copy_raw_csv(
    con: duckdb.DuckDBPyConnection, path: Path, types: dict[str, str], target: Path, *, storage: Warehouse
) -> None:
    """Copy a raw CSV to Parquet with exactly ``types``, or raise naming every problem found.

    The Parquet file is published only when every line parsed, so a bad file leaves no table.
    Rows are one per line, so row ``k`` of the table (from 0) is line ``k + 2`` of the file.
    """
    header = read_header(path)
    violations = _header_violations(path, header, types)
    if path.name in SALES_FILES and not violations:
        violations = _day_column_violations(path, header)
    if violations:
        raise DataValidationError(violations)
    ordered = {c: types[c] for c in header}
    with storage.atomic_target(target) as partial:
        con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
        try:
            con.execute(
                f"COPY ({_read_query(path, ordered, checked=True)}) TO '{partial}' (FORMAT parquet, COMPRESSION zstd)"
            )
            not_whole = False
        except duckdb.InvalidInputException as error:
            if NOT_WHOLE not in str(error):
                raise
            # Copy again as read, to name every offending cell and its line.
            con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
            con.execute(f"COPY ({_read_query(path, ordered, checked=False)}) TO '{partial}' (FORMAT parquet)")
            not_whole = True
        violations = _reject_violations(con, path, ordered) or _layout_violations(
            path, pq.read_metadata(partial).num_rows
        )
        if not violations and not_whole:
            violations = _not_whole_violations(con, path, ordered, partial)
        if violations:
            raise DataValidationError(violations)
