"""Malformed raw files fail the right check, say file, column and rule, and leave nothing downstream."""

from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import run_pipeline
from m5_assets.warehouse import table_path


def _edit_lines(path: Path, edit: Callable[[list[str]], list[str]]) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def _set_cell(path: Path, row: int, column: str, value: str) -> None:
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


SALES = "sales_train_evaluation.csv"
CASES = {
    "missing column": (
        lambda raw: _drop_column(raw / "sell_prices.csv", "store_id"),
        ("raw_sell_prices", "parses"), ("sell_prices.csv", "store_id", "required column is missing"),
    ),
    "negative units": (
        lambda raw: _set_cell(raw / SALES, 3, "d_5", "-3"),
        ("raw_sales", "units_valid"), (SALES, "d_5", "non-negative"),
    ),
    "text in a units column": (
        lambda raw: _set_cell(raw / SALES, 3, "d_7", "abc"),
        ("raw_sales", "parses"), (SALES, "d_7", "must parse as INTEGER", "abc"),
    ),
    "empty units cell": (
        lambda raw: _set_cell(raw / SALES, 2, "d_9", ""),
        ("raw_sales", "units_valid"), (SALES, "d_9", "must be present"),
    ),
    "duplicated id": (
        lambda raw: _edit_lines(raw / SALES, lambda lines: lines + [lines[4]]),
        ("raw_sales", "ids_consistent"), (SALES, "id", "must be unique"),
    ),
    "id disagrees with its parts": (
        lambda raw: _set_cell(raw / SALES, 1, "dept_id", "HOBBIES_2"),
        ("raw_sales", "ids_consistent"), (SALES, "item_id", "must start with its dept_id"),
    ),
    "gap in the calendar": (
        lambda raw: _edit_lines(raw / "calendar.csv", lambda lines: lines[:40] + lines[41:]),
        ("raw_calendar", "days_continuous"), ("calendar.csv", "date", "consecutive days"),
    ),
    "calendar shorter than the sales": (
        lambda raw: _edit_lines(raw / "calendar.csv", lambda lines: lines[:300]),
        ("raw_sales", "calendar_covers_sales"), (SALES, "d_*", "must appear in column 'd' of calendar.csv"),
    ),
    "unknown store in prices": (
        lambda raw: _set_cell(raw / "sell_prices.csv", 5, "store_id", "CA_9"),
        ("raw_sell_prices", "keys_known"), ("sell_prices.csv", "store_id, item_id", "must exist in " + SALES),
    ),
    "non-positive price": (
        lambda raw: _set_cell(raw / "sell_prices.csv", 7, "sell_price", "0.0"),
        ("raw_sell_prices", "prices_valid"), ("sell_prices.csv", "sell_price", "greater_than(0)"),
    ),
    "duplicated price week": (
        lambda raw: _edit_lines(raw / "sell_prices.csv", lambda lines: lines + [lines[9]]),
        ("raw_sell_prices", "prices_valid"), ("sell_prices.csv", "store_id, item_id, wm_yr_wk", "uniqueness"),
    ),
    "truncated file": (
        lambda raw: _truncate_mid_line(raw / SALES),
        ("raw_sales", "parses"), (SALES, "fields", "truncated"),
    ),
    "day columns out of order": (
        lambda raw: _edit_lines(raw / SALES, lambda lines: [lines[0].replace("d_3,d_4,", "d_4,d_3,")] + lines[1:]),
        ("raw_sales", "parses"), (SALES, "d_4", "consecutive d_k in increasing order"),
    ),
    "SNAP flag out of range": (
        lambda raw: _set_cell(raw / "calendar.csv", 12, "snap_TX", "2"),
        ("raw_calendar", "values_valid"), ("calendar.csv", "snap_TX", "isin"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_malformed_input_fails_the_right_check_and_leaves_nothing_downstream(case, data_dir):
    corrupt, (asset, check), phrases = CASES[case]
    corrupt(data_dir / "raw")

    result = run_pipeline(data_dir)

    assert not result.success
    failed = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations() if not e.passed}
    assert (asset, check) in failed, f"expected {asset}.{check} to fail, failed: {sorted(failed)}"
    message = failed[(asset, check)].description
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} not in {message!r}"
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert not materialized & {"sales_long", "features"}
    warehouse = data_dir / "warehouse"
    assert not table_path(warehouse, "sales_long").exists()
    assert not table_path(warehouse, "features").exists()
    assert not list(warehouse.rglob("*.partial"))


def test_a_clean_tiny_data_set_passes_every_check(data_dir):
    result = run_pipeline(data_dir)
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 13 and all(e.passed for e in evaluations)


def test_a_bad_file_replacing_a_good_one_keeps_the_last_good_table(data_dir):
    assert run_pipeline(data_dir).success
    raw_sales = table_path(data_dir / "warehouse", "raw_sales")
    before = raw_sales.read_bytes()
    _set_cell(data_dir / "raw" / SALES, 3, "d_7", "abc")
    assert not run_pipeline(data_dir).success
    assert raw_sales.read_bytes() == before
