"""Asset checks: data-quality rules of ``m5_assets.validation`` run against the warehouse.

The checks of the raw tables, the long table and the feature store are blocking, and they run
inside their asset, on the file it has just built: :func:`publish_checked` builds a table where no
reader looks (``Warehouse.staged_table``), runs its blocking checks on that file, and publishes it
only when every one passes. A refused file is deleted and the published table stays byte for byte
the last good run's, so no asset of this run or a later one reads refused data.

A failed check's description names the file, the column and the rule, and its metadata shows a
few offending rows.
"""

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from m5_assets import tables
from m5_assets.defs.check_log import recorded
from m5_assets.defs.resources import M5Data
from m5_assets.defs.results import StepContext
from m5_assets.features import outliers
from m5_assets.table_files import StoreFiles, TableFiles, drop_generation, publish_store_files
from m5_assets.tables import Table
from m5_assets.validation import long_rules, raw_rules
from m5_assets.validation.raw_rules import RawTable
from m5_assets.validation.violations import Violation, describe


def result_from(violations: list[Violation]) -> dg.AssetCheckResult:
    """Passed when nothing is broken; otherwise failed with every violation spelled out."""
    if not violations:
        return dg.AssetCheckResult(passed=True, metadata={"offending_rows": 0})
    return dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.ERROR,
        description="\n".join(v.message() for v in violations)[:4000],
        metadata={
            "offending_rows": sum(v.count for v in violations),
            "violations": dg.MetadataValue.md(describe(violations)),
        },
    )


# --- blocking checks: run on the staged file before it is published --------------------------

# What a check is given: the resource, a connection, the staged file and what the build returned.
Evaluate = Callable[[M5Data, duckdb.DuckDBPyConnection, Any, Any], dg.AssetCheckResult]


@dataclass(frozen=True)
class BlockingCheck:
    name: str
    description: str
    evaluate: Evaluate
    # Other published tables the check reads: the asset must be built after them.
    reads: tuple[Table, ...] = ()

    def spec(self, asset: str) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(self.name, asset=asset, blocking=True, description=self.description)


class Refused(Exception):
    """Raised by a build that refuses its input outright: ``check`` fails with ``result``."""

    def __init__(self, check: str, result: dg.AssetCheckResult, message: str):
        super().__init__(message)
        self.check, self.result, self.message = check, result, message


def publish_checked(
    context: StepContext,
    m5_data: M5Data,
    table: Table,
    build: Callable[[duckdb.DuckDBPyConnection, Path], Any],
    checks: Sequence[BlockingCheck],
    describe_table: Callable[[duckdb.DuckDBPyConnection, Path, Any], dict],
) -> Generator[dg.AssetCheckResult, None, dict]:
    """Build ``table`` staged, run its blocking ``checks`` on the staged file, publish it if all
    pass. Yields the check results (recorded); returns the metadata of the table as checked, for
    the caller's materialization (``metadata = yield from publish_checked(...)``). A refusal
    raises ``dg.Failure`` after yielding the failed results, with the published table untouched.
    ``build(con, path)`` writes the table at ``path`` and returns what the checks and
    ``describe_table`` are also given."""
    target, con = m5_data.table(table), m5_data.connect()
    with m5_data.storage.staged_table(target) as staged:
        try:
            built = build(con, staged.path)
        except Refused as refusal:
            yield _recorded(context, m5_data, table, refusal.check, refusal.result)
            raise dg.Failure(description=refusal.message) from refusal
        yield from run_blocking_checks(context, m5_data, con, table, staged.path, built, checks, str(target))
        metadata = describe_table(con, staged.path, built) | {"path": dg.MetadataValue.path(str(target))}
        staged.publish()
    return metadata


def publish_checked_files(
    context: StepContext,
    m5_data: M5Data,
    table: Table,
    files: StoreFiles,
    built: Any,
    checks: Sequence[BlockingCheck],
    describe_table: Callable[[duckdb.DuckDBPyConnection, TableFiles, Any], dict],
) -> Generator[dg.AssetCheckResult, None, dict]:
    """``publish_checked`` for a table stored by store, whose unpublished generation ``files``
    is written already: check it, publish it if every check passes, drop it otherwise."""
    con = m5_data.connect()
    try:
        yield from run_blocking_checks(context, m5_data, con, table, files, built, checks, str(files.folder))
        metadata = describe_table(con, files, built)
    except BaseException:
        drop_generation(m5_data.storage, files)
        raise
    publish_store_files(m5_data.storage, files)
    return metadata | {"path": dg.MetadataValue.path(str(files.folder)), "generation": files.generation}


def run_blocking_checks(
    context: StepContext,
    m5_data: M5Data,
    con: duckdb.DuckDBPyConnection,
    table: Table,
    staged: Path | TableFiles,
    built: Any,
    checks: Sequence[BlockingCheck],
    published: str,
) -> Generator[dg.AssetCheckResult, None, None]:
    """Run ``checks`` on ``staged`` and yield their results (recorded); raise ``dg.Failure``
    naming the refusing checks if any fails, the last good table staying at ``published``."""
    results = [
        _recorded(context, m5_data, table, check.name, check.evaluate(m5_data, con, staged, built)) for check in checks
    ]
    yield from results
    refused = [check.name for check, result in zip(checks, results, strict=True) if not result.passed]
    if refused:
        raise dg.Failure(
            description=f"{table.name} refused by its check(s) {', '.join(refused)}; the table of the last good run "
            f"stays published at {published}, unchanged."
        )


def _recorded(
    context: StepContext, m5_data: M5Data, table: Table, check: str, result: dg.AssetCheckResult
) -> dg.AssetCheckResult:
    result = result._replace(asset_key=dg.AssetKey(table.name), check_name=check)  # ops of graph assets need both
    return recorded(m5_data, context, table.name, check, result)


def _raw_rule(table: Table, name: str, rule: Callable, inputs: tuple[Table, ...], description: str) -> BlockingCheck:
    """A check that applies ``rule`` to the raw tables ``inputs``: ``table`` as staged, read from
    the file the build returns, the others as published."""

    def evaluate(m5_data: M5Data, con: duckdb.DuckDBPyConnection, staged: Path, source: Path) -> dg.AssetCheckResult:
        raw = [RawTable(staged, source.name) if t == table else m5_data.raw_table(t) for t in inputs]
        return result_from(rule(con, *raw))

    return BlockingCheck(name, description, evaluate, reads=tuple(t for t in inputs if t != table))


RAW_CHECKS: dict[str, list[BlockingCheck]] = {
    tables.RAW_CALENDAR.name: [
        _raw_rule(
            tables.RAW_CALENDAR,
            "values_valid",
            raw_rules.calendar_values,
            (tables.RAW_CALENDAR,),
            "dates and d labels unique; wday 1-7, month 1-12, SNAP 0/1; event types paired with names",
        ),
        _raw_rule(
            tables.RAW_CALENDAR,
            "days_continuous",
            raw_rules.calendar_continuous,
            (tables.RAW_CALENDAR,),
            "dates are consecutive days and d_k counts up by one with them",
        ),
    ],
    tables.RAW_SALES.name: [
        _raw_rule(
            tables.RAW_SALES,
            "units_valid",
            raw_rules.sales_units_valid,
            (tables.RAW_SALES,),
            "every units cell is present and a non-negative integer",
        ),
        _raw_rule(
            tables.RAW_SALES,
            "units_plausible",
            raw_rules.sales_units_plausible,
            (tables.RAW_SALES,),
            f"no day above {outliers.ABSURD_UNITS:,} units and {outliers.ABSURD_MULTIPLE:,.0f} x its series' 99th percentile "
            "of non-zero days: a broken value, not a sale",
        ),
        _raw_rule(
            tables.RAW_SALES,
            "ids_consistent",
            raw_rules.sales_ids_consistent,
            (tables.RAW_SALES,),
            "ids unique and equal to item_id + store_id + suffix; item, department and store prefixes nest",
        ),
        _raw_rule(
            tables.RAW_SALES,
            "calendar_covers_sales",
            raw_rules.calendar_covers_sales,
            (tables.RAW_SALES, tables.RAW_CALENDAR),
            "every sales day is in the calendar, and every state has a SNAP column",
        ),
    ],
    tables.RAW_SELL_PRICES.name: [
        _raw_rule(
            tables.RAW_SELL_PRICES,
            "prices_valid",
            raw_rules.prices_values,
            (tables.RAW_SELL_PRICES,),
            "prices present and positive, one per store, item and week",
        ),
        _raw_rule(
            tables.RAW_SELL_PRICES,
            "keys_known",
            raw_rules.prices_keyed,
            (tables.RAW_SELL_PRICES, tables.RAW_SALES, tables.RAW_CALENDAR),
            "every price belongs to a store-item pair of the sales file and a week of the calendar",
        ),
        _raw_rule(
            tables.RAW_SELL_PRICES,
            "prices_within_history",
            raw_rules.prices_within_history,
            (tables.RAW_SELL_PRICES,),
            f"every price within {raw_rules.PRICE_MULTIPLE} x (either way) of its store-item's median price: "
            "further off is a unit or decimal error",
        ),
    ],
}

SALES_LONG_CHECKS = [
    BlockingCheck(
        "sales_long_complete",
        "one row per series and day of the sales file, units never null, prices positive",
        lambda m5_data, con, staged, _: result_from(
            long_rules.grid_complete(con, staged, m5_data.table(tables.RAW_SALES))
        ),
    ),
]

FEATURE_CHECKS = [
    BlockingCheck(
        "features_within_catalog_rules",
        "every feature column holds values within its catalog rule (range, nulls)",
        # Found by each group on the files it wrote (``FeatureBuild``), before the manifest names them.
        lambda m5_data, con, staged, build: result_from(build.catalog_violations),
    ),
]
