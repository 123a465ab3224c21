"""Malformed raw files: each fails the right check with the file, line, column and rule, leaves
nothing downstream, and changes nothing under raw/.

The cases are what a retailer's export job gets wrong: types and values, encodings, line
endings, quoting, delimiters, truncation, duplicated or missing columns and rows, mixed id
suffixes, empty files and a header repeated mid-file.
"""

import hashlib
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from forecasting import run_pipeline, table_bytes

from m5_assets import tables
from m5_assets.table_files import MANIFEST
from m5_assets.warehouse import table_path

SALES, PRICES, CALENDAR = "sales_train_evaluation.csv", "sell_prices.csv", "calendar.csv"


def _edit_lines(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def _set_cell(path: Path, row: int, column: str, value: str) -> None:
    """Row ``row`` counts from the header (0), so it is file line ``row + 1``."""

    def edit(lines):
        header = lines[0].split(",")
        cells = lines[row].split(",")
        cells[header.index(column)] = value
        lines[row] = ",".join(cells)
        return lines

    _edit_lines(path, edit)


def _drop_column(path: Path, column: str) -> None:
    def edit(lines):
        k = lines[0].split(",").index(column)
        return [",".join(c for j, c in enumerate(line.split(",")) if j != k) for line in lines]

    _edit_lines(path, edit)


def _truncate_mid_line(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) - len(text.splitlines()[-1]) // 2 - 1])


def _write_bytes(path: Path, transform: Callable[[bytes], bytes]) -> None:
    path.write_bytes(transform(path.read_bytes()))


def _latin1_cell(path: Path, row: int, column: str) -> None:
    _set_cell(path, row, column, "CAFÉ_1_001")
    _write_bytes(path, lambda data: data.decode("utf-8").encode("latin-1"))


def _mixed_suffix(path: Path) -> None:
    _edit_lines(path, lambda lines: lines[:3] + [lines[3].replace("_evaluation,", "_validation,", 1)] + lines[4:])


def _quoted_line_break(path: Path, row: int) -> None:
    _edit_lines(path, lambda lines: lines[:row] + ['"' + lines[row].replace(",", '\n",', 1)] + lines[row + 1 :])


def _price_times(path: Path, factor: float, first_row: int, weeks: int) -> None:
    """Prices of ``weeks`` consecutive rows (one store-item's weeks) times ``factor``, as an export
    that wrote cents where dollars belong would."""

    def edit(lines):
        k = lines[0].split(",").index("sell_price")
        pairs = set()
        for row in range(first_row, first_row + weeks):
            cells = lines[row].split(",")
            pairs.add((cells[0], cells[1]))
            cells[k] = f"{float(cells[k]) * factor:.2f}"
            lines[row] = ",".join(cells)
        assert len(pairs) == 1, f"rows {first_row} .. {first_row + weeks - 1} span store-items {pairs}"
        return lines

    _edit_lines(path, edit)


LAST = -1  # the file's last line, whatever its length

# name: (corrupt raw/, (asset, check) that fails, (file, column, rule phrase), file line named)
CASES = {
    # --- sales: values
    "negative units": (
        lambda raw: _set_cell(raw / SALES, 3, "d_5", "-3"),
        ("raw_sales", "units_valid"),
        (SALES, "d_5", "non-negative"),
        4,
    ),
    "text in a units column": (
        lambda raw: _set_cell(raw / SALES, 3, "d_7", "abc"),
        ("raw_sales", "parses"),
        (SALES, "d_7", "must parse as INTEGER"),
        4,
    ),
    "fractional units": (
        lambda raw: _set_cell(raw / SALES, 2, "d_3", "1.5"),
        ("raw_sales", "parses"),
        (SALES, "d_3", "whole numbers of type INTEGER"),
        3,
    ),
    "negative fraction": (
        lambda raw: _set_cell(raw / SALES, 4, "d_2", "-0.4"),
        ("raw_sales", "parses"),
        (SALES, "d_2", "nothing is rounded"),
        5,
    ),
    "units beyond INTEGER": (
        lambda raw: _set_cell(raw / SALES, 6, "d_4", "3e9"),
        ("raw_sales", "parses"),
        (SALES, "d_4", "whole numbers of type INTEGER"),
        7,
    ),
    "empty units cell": (
        lambda raw: _set_cell(raw / SALES, 2, "d_9", ""),
        ("raw_sales", "units_valid"),
        (SALES, "d_9", "must be present"),
        3,
    ),
    # --- sales: ids and structure
    "duplicated id": (
        lambda raw: _edit_lines(raw / SALES, lambda lines: lines[:6] + [lines[4]] + lines[6:]),
        ("raw_sales", "ids_consistent"),
        (SALES, "id", "must be unique"),
        5,
    ),
    "id disagrees with its parts": (
        lambda raw: _set_cell(raw / SALES, 1, "dept_id", "HOBBIES_2"),
        ("raw_sales", "ids_consistent"),
        (SALES, "item_id", "must start with its dept_id"),
        2,
    ),
    "mixed id suffixes": (
        lambda raw: _mixed_suffix(raw / SALES),
        ("raw_sales", "ids_consistent"),
        (SALES, "id", "one suffix, the file's"),
        4,
    ),
    "truncated last line": (
        lambda raw: _truncate_mid_line(raw / SALES),
        ("raw_sales", "parses"),
        (SALES, "d_", "fields (missing columns; truncated"),
        LAST,
    ),
    "day columns out of order": (
        lambda raw: _edit_lines(raw / SALES, lambda lines: [lines[0].replace("d_3,d_4,", "d_4,d_3,")] + lines[1:]),
        ("raw_sales", "parses"),
        (SALES, "d_4", "consecutive d_k in increasing order"),
        1,
    ),
    "a day column dropped": (
        lambda raw: _drop_column(raw / SALES, "d_10"),
        ("raw_sales", "parses"),
        (SALES, "d_10", "missing from the header"),
        1,
    ),
    "header only": (
        lambda raw: _edit_lines(raw / SALES, lambda lines: lines[:1]),
        ("raw_sales", "parses"),
        (SALES, "(rows)", "no data rows"),
        2,
    ),
    "semicolon separated": (
        lambda raw: _write_bytes(raw / SALES, lambda data: data.replace(b",", b";")),
        ("raw_sales", "parses"),
        (SALES, "(header)", "separated by commas, not ';'"),
        1,
    ),
    "quoted value with a line break": (
        lambda raw: _quoted_line_break(raw / SALES, 2),
        ("raw_sales", "parses"),
        (SALES, "(row)", "must not contain line breaks"),
        3,
    ),
    "calendar shorter than the sales": (
        lambda raw: _edit_lines(raw / CALENDAR, lambda lines: lines[:300]),
        ("raw_sales", "calendar_covers_sales"),
        (SALES, "d_*", "must appear in column 'd' of calendar.csv"),
        1,
    ),
    # --- prices
    "missing column": (
        lambda raw: _drop_column(raw / PRICES, "store_id"),
        ("raw_sell_prices", "parses"),
        (PRICES, "store_id", "required column is missing"),
        1,
    ),
    "unknown store in prices": (
        lambda raw: _set_cell(raw / PRICES, 5, "store_id", "CA_9"),
        ("raw_sell_prices", "keys_known"),
        (PRICES, "store_id, item_id", "must exist in " + SALES),
        6,
    ),
    "non-positive price": (
        lambda raw: _set_cell(raw / PRICES, 7, "sell_price", "0.0"),
        ("raw_sell_prices", "prices_valid"),
        (PRICES, "sell_price", "must be greater than 0"),
        8,
    ),
    "a price x 100 for 28 days": (
        lambda raw: _price_times(raw / PRICES, 100, 30, 4),
        ("raw_sell_prices", "prices_within_history"),
        (PRICES, "sell_price", "times its store-item's median price"),
        31,
    ),
    "duplicated price week": (
        lambda raw: _edit_lines(raw / PRICES, lambda lines: lines[:11] + [lines[9]] + lines[11:]),
        ("raw_sell_prices", "prices_valid"),
        (PRICES, "store_id, item_id, wm_yr_wk", "must be unique together"),
        12,
    ),
    "fractional week": (
        lambda raw: _set_cell(raw / PRICES, 4, "wm_yr_wk", "11452.5"),
        ("raw_sell_prices", "parses"),
        (PRICES, "wm_yr_wk", "whole numbers of type INTEGER"),
        5,
    ),
    "latin-1 byte": (
        lambda raw: _latin1_cell(raw / PRICES, 3, "item_id"),
        ("raw_sell_prices", "parses"),
        (PRICES, "item_id", "must be UTF-8"),
        4,
    ),
    "stray trailing delimiter": (
        lambda raw: _edit_lines(raw / PRICES, lambda lines: [line + "," for line in lines]),
        ("raw_sell_prices", "parses"),
        (PRICES, "(column 5)", "stray delimiter"),
        1,
    ),
    "header repeated mid-file": (
        lambda raw: _edit_lines(raw / PRICES, lambda lines: lines[:20] + [lines[0]] + lines[20:]),
        ("raw_sell_prices", "parses"),
        (PRICES, "wm_yr_wk", "header line repeats"),
        21,
    ),
    "zero-length file": (
        lambda raw: (raw / PRICES).write_bytes(b""),
        ("raw_sell_prices", "parses"),
        (PRICES, "(header)", "file is empty"),
        1,
    ),
    # --- calendar
    "gap in the calendar": (
        lambda raw: _edit_lines(raw / CALENDAR, lambda lines: lines[:40] + lines[41:]),
        ("raw_calendar", "days_continuous"),
        (CALENDAR, "date", "consecutive days"),
        41,
    ),
    "SNAP flag out of range": (
        lambda raw: _set_cell(raw / CALENDAR, 12, "snap_TX", "2"),
        ("raw_calendar", "values_valid"),
        (CALENDAR, "snap_TX", "must be one of 0, 1"),
        13,
    ),
    "duplicated column": (
        lambda raw: _edit_lines(raw / CALENDAR, lambda lines: [lines[0].replace(",month,", ",year,")] + lines[1:]),
        ("raw_calendar", "parses"),
        (CALENDAR, "year", "appears more than once"),
        1,
    ),
    "blank line between rows": (
        lambda raw: _edit_lines(raw / CALENDAR, lambda lines: lines[:10] + [""] + lines[10:]),
        ("raw_calendar", "parses"),
        (CALENDAR, "(row)", "blank line"),
        11,
    ),
    "UTF-16 export": (
        lambda raw: _write_bytes(raw / CALENDAR, lambda data: data.decode().encode("utf-16")),
        ("raw_calendar", "parses"),
        (CALENDAR, "(header)", "must be UTF-8"),
        1,
    ),
    "unbalanced quote": (
        lambda raw: _set_cell(raw / CALENDAR, 30, "event_name_1", '"Easter'),
        ("raw_calendar", "parses"),
        (CALENDAR, "event_name_1", "well-formed CSV"),
        31,
    ),
}


def _fingerprint(raw: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(raw.iterdir())}


def _named_lines(message: str) -> set[int]:
    """Every line number the message names ("line 4", "lines 5, 12, ...", "line 1 (header)")."""
    return {int(n) for group in re.findall(r"\blines? ((?:\d+, )*\d+)", message) for n in group.split(", ")}


def test_the_suite_covers_at_least_25_cases_across_the_three_files():
    files = {phrases[0] for _, _, phrases, _ in CASES.values()}
    assert len(CASES) >= 25 and files == {SALES, PRICES, CALENDAR}


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input_fails_the_right_check_and_leaves_nothing_downstream(case, data_dir):
    corrupt, (asset, check), (file, column, rule), line = CASES[case]
    raw = data_dir / "raw"
    corrupt(raw)
    if line == LAST:
        line = len((raw / file).read_bytes().splitlines())
    before = _fingerprint(raw)

    result = run_pipeline(data_dir)

    assert not result.success
    failed = {
        (e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations() if not e.passed
    }
    assert (asset, check) in failed, f"expected {asset}.{check} to fail, failed: {sorted(failed)}"
    message = failed[(asset, check)].description
    assert message.startswith(file) or f"\n{file}" in message, message
    assert f"column '{column}" in message and rule in message, message
    assert line in _named_lines(message), f"line {line} not named in {message!r}"
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert not materialized & {"sales_long", "features"}
    warehouse = data_dir / "warehouse"
    assert not table_path(warehouse, "sales_long").exists()
    assert not (tables.FEATURES.folder(warehouse) / MANIFEST).exists()
    assert not [p for p in warehouse.rglob("*") if p.is_file() and "_tmp" in p.parts]
    assert _fingerprint(raw) == before


def test_a_value_with_a_trailing_space_is_shown_quoted_so_the_space_is_visible(data_dir):
    prices = data_dir / "raw" / PRICES
    store = prices.read_text().splitlines()[5].split(",")[0]
    _set_cell(prices, 5, "store_id", store + " ")

    result = run_pipeline(data_dir)

    failed = {
        (e.asset_key.to_user_string(), e.check_name): e.description
        for e in result.get_asset_check_evaluations()
        if not e.passed
    }
    message = failed[("raw_sell_prices", "keys_known")]
    assert "line 6, column 'store_id, item_id': store-item pair must exist" in message, message
    assert repr(store + " ") in message and "starts or ends with white space" in message, message


VARIANTS = {
    "CRLF line ends": lambda data: data.replace(b"\n", b"\r\n"),
    "a byte-order mark": lambda data: b"\xef\xbb\xbf" + data,
    "no newline after the last line": lambda data: data.rstrip(b"\n"),
    "blank lines after the last row": lambda data: data + b"\n\n",
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_harmless_export_variants_read_the_same_as_the_clean_files(variant, data_dir, built_tiny_tables):
    for name in (SALES, PRICES, CALENDAR):
        _write_bytes(data_dir / "raw" / name, VARIANTS[variant])
    result = run_pipeline(data_dir)
    assert result.success
    for table, clean in built_tiny_tables.items():
        assert table_path(data_dir / "warehouse", table).read_bytes() == clean, f"{table} differs under {variant}"


@pytest.fixture(scope="module")
def built_tiny_tables(tmp_path_factory, tiny_raw) -> dict[str, bytes]:
    data_dir = tmp_path_factory.mktemp("clean-tiny")
    shutil.copytree(tiny_raw, data_dir / "raw")
    assert run_pipeline(data_dir).success
    return {
        t: table_path(data_dir / "warehouse", t).read_bytes()
        for t in ("raw_sales", "raw_sell_prices", "raw_calendar", "sales_long")
    }


def test_a_clean_tiny_data_set_passes_every_check(data_dir):
    result = run_pipeline(data_dir)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 14 and all(e.passed for e in evaluations)


def test_a_file_that_turns_bad_between_two_runs_keeps_the_last_good_tables(data_dir):
    assert run_pipeline(data_dir).success
    warehouse = data_dir / "warehouse"
    published = {t: table_bytes(warehouse, t) for t in ("raw_sales", "sales_long", "features")}
    _set_cell(data_dir / "raw" / SALES, 3, "d_7", "2.5")
    before = _fingerprint(data_dir / "raw")

    result = run_pipeline(data_dir)

    assert not result.success
    assert {t: table_bytes(warehouse, t) for t in published} == published
    assert _fingerprint(data_dir / "raw") == before
