"""Content rules on the typed raw tables (Parquet copies of the Kaggle files).

Each function takes a DuckDB connection and the tables' Parquet paths and returns the rules
broken, as :class:`Violation` values naming the original file, its lines, the column and the rule.
Row ``k`` of a typed table is line ``k + 2`` of its file (ingest keeps one row per line).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from m5_assets.features import outliers
from m5_assets.validation.schemas import CALENDAR_SCHEMA, PRICES_SCHEMA, schema_violations
from m5_assets.validation.violations import MAX_EXAMPLES, Violation, lines_of
from m5_assets.warehouse import scalar


@dataclass(frozen=True)
class RawTable:
    """A typed raw table and the name of the file it came from (used in messages)."""

    parquet: Path
    file: str

    def scan(self) -> str:
        """The table with each row's file line as column ``line``."""
        return (
            f"(SELECT * EXCLUDE (file_row_number), file_row_number + 2 AS line "
            f"FROM read_parquet('{self.parquet}', file_row_number = true))"
        )


def _sql_violation(
    con: duckdb.DuckDBPyConnection,
    table: RawTable,
    column: str,
    rule: str,
    where: str,
    select: str,
    source: str | None = None,
) -> list[Violation]:
    """Count rows of ``source`` (default: the table) matching ``where``; a violation if any."""
    source = source or table.scan()
    count = scalar(con, f"SELECT count(*) FROM {source} WHERE {where}")
    if not count:
        return []
    examples = con.sql(f"SELECT {select} FROM {source} WHERE {where} ORDER BY line LIMIT {MAX_EXAMPLES}").df()
    return [Violation(table.file, column, rule, int(count), examples, lines_of(examples))]


def _day_columns(con: duckdb.DuckDBPyConnection, sales: RawTable) -> list[str]:
    return [c for c in con.sql(f"SELECT * FROM {sales.scan()} LIMIT 0").columns if c.startswith("d_")]


# --- calendar -------------------------------------------------------------------------------


def calendar_values(con: duckdb.DuckDBPyConnection, calendar: RawTable) -> list[Violation]:
    """Types, ranges, uniqueness and event-column pairing of the calendar (pandera)."""
    frame = con.sql(f"SELECT * FROM {calendar.scan()}").df()
    return schema_violations(CALENDAR_SCHEMA, frame, calendar.file)


def calendar_continuous(con: duckdb.DuckDBPyConnection, calendar: RawTable) -> list[Violation]:
    """Dates follow each other day by day and ``d_k`` counts up by one with them."""
    ordered = f"""(SELECT line, date, d,
        date - lag(date) OVER (ORDER BY date) AS day_step,
        CAST(substr(d, 3) AS INTEGER) - lag(CAST(substr(d, 3) AS INTEGER)) OVER (ORDER BY date) AS d_step,
        lag(date) OVER (ORDER BY date) AS previous_date
        FROM {calendar.scan()} WHERE date IS NOT NULL AND regexp_matches(d, '^d_[0-9]+$'))"""
    return _sql_violation(
        con,
        calendar,
        "date",
        "dates must be consecutive days (no gaps or repeats)",
        "day_step <> 1",
        "line, previous_date, date, d",
        ordered,
    ) + _sql_violation(
        con,
        calendar,
        "d",
        "d_k must increase by exactly one from each day to the next",
        "day_step = 1 AND d_step <> 1",
        "line, previous_date, date, d",
        ordered,
    )


# --- sales ----------------------------------------------------------------------------------


def sales_units_valid(con: duckdb.DuckDBPyConnection, sales: RawTable) -> list[Violation]:
    """Every units cell is present and non-negative (integrality is enforced on read)."""
    long = f"(SELECT * FROM {sales.scan()} UNPIVOT INCLUDE NULLS (units FOR d IN (COLUMNS('^d_[0-9]+$'))))"
    found = []
    for rule, where in (
        ("units must be present (no empty cells)", "units IS NULL"),
        ("units must be non-negative integers", "units < 0"),
    ):
        for v in _sql_violation(con, sales, "d_*", rule, where, "line, id, d, units", long):
            column = ", ".join(sorted(set(v.examples["d"]), key=lambda d: int(d[2:])))
            found.append(Violation(v.file, column, v.rule, v.count, v.examples, v.lines))
    return found


def sales_units_plausible(con: duckdb.DuckDBPyConnection, sales: RawTable) -> list[Violation]:
    """No day beyond what any shop sells (a data error; see ``features.outliers``)."""
    days = _day_columns(con, sales)
    # Only series with a day above the absolute floor can break the rule: the rest is never read.
    suspects = f"(SELECT * FROM {sales.scan()} WHERE greatest({', '.join(days)}) > {outliers.ABSURD_UNITS})"
    frame = con.sql(f"SELECT line, id, {', '.join(days)} FROM {suspects} ORDER BY line").df()
    if frame.empty:
        return []
    rows, at, bounds = outliers.absurd_days(frame[days].to_numpy(dtype=np.float64))
    if not len(rows):
        return []
    examples = pd.DataFrame(
        {
            "line": frame["line"].to_numpy()[rows],
            "id": frame["id"].to_numpy()[rows],
            "d": np.asarray(days)[at],
            "units": frame[days].to_numpy()[rows, at],
            "bound": bounds.round(0),
        }
    ).sort_values(["line", "d"], key=lambda c: c.str[2:].astype(int) if c.name == "d" else c, ignore_index=True)
    rule = (
        f"units must not exceed {outliers.ABSURD_UNITS:,} and {outliers.ABSURD_MULTIPLE:,.0f} x the series' 99th percentile "
        "of its non-zero days: no shop sells that in a day (a broken export or a shifted column)"
    )
    column = ", ".join(sorted(set(examples["d"]), key=lambda d: int(d[2:])))
    shown = examples.head(MAX_EXAMPLES)
    return [Violation(sales.file, column, rule, len(examples), shown, lines_of(shown))]


def sales_ids_consistent(con: duckdb.DuckDBPyConnection, sales: RawTable) -> list[Violation]:
    """Ids are unique and agree with their parts; the hierarchy prefixes nest."""
    dup = f"(SELECT min(line) AS line, id, count(*) AS copies, list(line ORDER BY line) AS lines FROM {sales.scan()} GROUP BY id HAVING count(*) > 1)"
    found = []
    for v in _sql_violation(con, sales, "id", "id must be unique", "true", "id, copies, lines", dup):
        lines = tuple(dict.fromkeys(n for copies in v.examples["lines"] for n in copies))
        found.append(Violation(v.file, v.column, v.rule, v.count, v.examples, lines))
    # Kaggle's validation file holds _validation ids and its evaluation file _evaluation ids.
    suffix = "_validation" if "validation" in sales.file else "_evaluation"
    rules = [
        (
            "id",
            f"id must equal item_id + '_' + store_id + '{suffix}' (one suffix, the file's)",
            f"id IS NULL OR item_id IS NULL OR store_id IS NULL OR id <> item_id || '_' || store_id || '{suffix}'",
            "line, id, item_id, store_id",
        ),
        (
            "item_id",
            "item_id must start with its dept_id + '_'",
            "item_id IS NULL OR dept_id IS NULL OR NOT starts_with(item_id, dept_id || '_')",
            "line, id, item_id, dept_id",
        ),
        (
            "dept_id",
            "dept_id must start with its cat_id + '_'",
            "dept_id IS NULL OR cat_id IS NULL OR NOT starts_with(dept_id, cat_id || '_')",
            "line, id, dept_id, cat_id",
        ),
        (
            "store_id",
            "store_id must start with its state_id + '_'",
            "store_id IS NULL OR state_id IS NULL OR NOT starts_with(store_id, state_id || '_')",
            "line, id, store_id, state_id",
        ),
    ]
    for column, rule, where, select in rules:
        found += _sql_violation(con, sales, column, rule, where, select)
    return found


def calendar_covers_sales(con: duckdb.DuckDBPyConnection, sales: RawTable, calendar: RawTable) -> list[Violation]:
    """Every sales day is a calendar day, and every sales state has a SNAP column."""
    days = pd.DataFrame({"d": _day_columns(con, sales)})
    con.register("sales_days", days)
    found = _sql_violation(
        con,
        sales,
        "d_*",
        f"every sales day must appear in column 'd' of {calendar.file}",
        f"d NOT IN (SELECT d FROM {calendar.scan()} WHERE d IS NOT NULL)",
        "line, d",
        "(SELECT 1 AS line, d FROM sales_days)",
    )
    con.unregister("sales_days")
    snap_columns = {c for c in con.sql(f"SELECT * FROM {calendar.scan()} LIMIT 0").columns if c.startswith("snap_")}
    states = con.sql(f"SELECT DISTINCT state_id FROM {sales.scan()} WHERE state_id IS NOT NULL ORDER BY 1").df()
    missing = states[~("snap_" + states["state_id"]).isin(snap_columns)]
    if len(missing):
        found.append(
            Violation(
                calendar.file,
                "snap_<state>",
                f"every state of {sales.file} needs a SNAP column",
                len(missing),
                missing,
                (1,),
            )
        )
    return found


# --- prices ---------------------------------------------------------------------------------


def prices_values(con: duckdb.DuckDBPyConnection, prices: RawTable) -> list[Violation]:
    """Prices are positive and present, one per store, item and week (pandera)."""
    frame = con.sql(f"SELECT * FROM {prices.scan()}").df()
    return schema_violations(PRICES_SCHEMA, frame, prices.file)


def prices_keyed(
    con: duckdb.DuckDBPyConnection, prices: RawTable, sales: RawTable, calendar: RawTable
) -> list[Violation]:
    """Each price belongs to a store-item pair of the sales file and a week of the calendar."""
    pairs = f"(SELECT DISTINCT store_id, item_id FROM {sales.scan()})"
    return _sql_violation(
        con,
        prices,
        "store_id, item_id",
        f"store-item pair must exist in {sales.file}",
        f"(store_id, item_id) NOT IN (SELECT (store_id, item_id) FROM {pairs})",
        "line, store_id, item_id, wm_yr_wk, sell_price",
    ) + _sql_violation(
        con,
        prices,
        "wm_yr_wk",
        f"week must exist in column 'wm_yr_wk' of {calendar.file}",
        f"wm_yr_wk NOT IN (SELECT DISTINCT wm_yr_wk FROM {calendar.scan()} WHERE wm_yr_wk IS NOT NULL)",
        "line, store_id, item_id, wm_yr_wk, sell_price",
    )


# A store-item's genuine prices stay within a small factor of their usual level: over the 280
# genuine series of ``real_280`` (67,361 weekly prices) every price lies between 0.17 and 1.40 times
# its pair's median, over ``real_subset`` between 0.75 and 1.17, in generated data between 0.52 and
# 1.53. A price 20 times its usual level, or a 20th of it, is a unit or decimal error (cents written
# as dollars), not a markdown or a price rise; left in, it moves every price feature of its weeks.
PRICE_MULTIPLE = 20


def prices_within_history(con: duckdb.DuckDBPyConnection, prices: RawTable) -> list[Violation]:
    """Each positive price lies within ``PRICE_MULTIPLE`` times its store-item's median price, either way."""
    usual = (
        f"(SELECT line, store_id, item_id, wm_yr_wk, sell_price, "
        f"median(sell_price) OVER (PARTITION BY store_id, item_id) AS usual_price "
        f"FROM {prices.scan()} WHERE sell_price > 0)"
    )
    return _sql_violation(
        con,
        prices,
        "sell_price",
        f"a price must lie between 1/{PRICE_MULTIPLE} and {PRICE_MULTIPLE} times its store-item's median price "
        "(usual_price): further off is a unit or decimal error",
        f"sell_price > {PRICE_MULTIPLE} * usual_price OR sell_price * {PRICE_MULTIPLE} < usual_price",
        "line, store_id, item_id, wm_yr_wk, sell_price, usual_price",
        usual,
    )
