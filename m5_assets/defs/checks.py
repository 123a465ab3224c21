"""Asset checks: data-quality rules of ``m5_assets.validation`` run against the warehouse.

Raw and long-table checks are blocking: when one fails, nothing downstream is materialized in
that run. A failed check's description names the file, the column and the rule, and its
metadata shows a few offending rows.
"""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from m5_assets import tables
from m5_assets.tables import Table
from m5_assets.defs.check_log import recorded
from m5_assets.defs.long_table import sales_long
from m5_assets.defs.raw import raw_calendar, raw_sales, raw_sell_prices
from m5_assets.defs.resources import M5Data
from m5_assets.features.catalog import FEATURES
from m5_assets.validation import feature_rules, long_rules, outliers, raw_rules
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


def _raw_rule_check(asset, name: str, rule: Callable, inputs: tuple[Table, ...], description: str):
    """A blocking check that applies ``rule`` to the typed raw tables ``inputs``."""
    others = [t for t in inputs if t.name != asset.key.path[-1]]

    @dg.asset_check(
        asset=asset, name=name, blocking=True, description=description,
        additional_deps=[dg.AssetKey(t.name) for t in others],
    )  # fmt: skip
    def _check(context, m5_data: M5Data) -> dg.AssetCheckResult:
        con = m5_data.connect()
        return recorded(m5_data, context, asset.key.path[-1], name, result_from(rule(con, *[m5_data.raw_table(t) for t in inputs])))

    return _check


raw_checks = [
    _raw_rule_check(raw_calendar, "values_valid", raw_rules.calendar_values, (tables.RAW_CALENDAR,),
                    "dates and d labels unique; wday 1-7, month 1-12, SNAP 0/1; event types paired with names"),
    _raw_rule_check(raw_calendar, "days_continuous", raw_rules.calendar_continuous, (tables.RAW_CALENDAR,),
                    "dates are consecutive days and d_k counts up by one with them"),
    _raw_rule_check(raw_sales, "units_valid", raw_rules.sales_units_valid, (tables.RAW_SALES,),
                    "every units cell is present and a non-negative integer"),
    _raw_rule_check(raw_sales, "ids_consistent", raw_rules.sales_ids_consistent, (tables.RAW_SALES,),
                    "ids unique and equal to item_id + store_id + suffix; item, department and store prefixes nest"),
    _raw_rule_check(raw_sales, "calendar_covers_sales", raw_rules.calendar_covers_sales, (tables.RAW_SALES, tables.RAW_CALENDAR),
                    "every sales day is in the calendar, and every state has a SNAP column"),
    _raw_rule_check(raw_sell_prices, "prices_valid", raw_rules.prices_values, (tables.RAW_SELL_PRICES,),
                    "prices present and positive, one per store, item and week"),
    _raw_rule_check(raw_sell_prices, "keys_known", raw_rules.prices_keyed, (tables.RAW_SELL_PRICES, tables.RAW_SALES, tables.RAW_CALENDAR),
                    "every price belongs to a store-item pair of the sales file and a week of the calendar"),
    _raw_rule_check(raw_sell_prices, "prices_within_history", raw_rules.prices_within_history, (tables.RAW_SELL_PRICES,),
                    f"every price within {raw_rules.PRICE_MULTIPLE} x (either way) of its store-item's median price: "
                    "further off is a unit or decimal error"),
]  # fmt: skip


@dg.asset_check(
    asset=sales_long, blocking=True, additional_deps=[raw_sales],
    description="one row per series and day of the sales file, units never null, prices positive",
)  # fmt: skip
def sales_long_complete(context, m5_data: M5Data) -> dg.AssetCheckResult:
    con = m5_data.connect()
    result = result_from(long_rules.grid_complete(con, m5_data.table(tables.SALES_LONG), m5_data.table(tables.RAW_SALES)))
    return recorded(m5_data, context, tables.SALES_LONG.name, "sales_long_complete", result)


@dg.asset_check(
    asset=sales_long,
    description=f"warns on series-days above {outliers.MULTIPLE:g} x their quarter's 90th percentile + 1: a broken export's "
    "value (10**9 units) rather than a promotion",
)  # fmt: skip
def units_within_history(context, m5_data: M5Data) -> dg.AssetCheckResult:
    con = m5_data.connect()
    violations = long_rules.units_within_history(con, m5_data.table(tables.SALES_LONG))
    if not violations:
        result = dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN, metadata={"series_days_flagged": 0})
        return recorded(m5_data, context, tables.SALES_LONG.name, "units_within_history", result)
    (found,) = violations
    days = ", ".join(f"{r.id} on {r.date} ({r.units:,} units)" for r in found.examples.itertuples())
    result = dg.AssetCheckResult(
        passed=False,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"{found.count} series-day(s) far outside their history: {days}"[:4000],
        metadata={"series_days_flagged": found.count, "violations": dg.MetadataValue.md(describe(violations))},
    )
    return recorded(m5_data, context, tables.SALES_LONG.name, "units_within_history", result)


@dg.asset_check(
    asset=tables.FEATURES.name, blocking=True,
    description="every feature column holds values within its catalog rule (range, nulls)",
)  # fmt: skip
def features_within_catalog_rules(context, m5_data: M5Data) -> dg.AssetCheckResult:
    con = m5_data.connect()
    result = result_from(feature_rules.catalog_violations(con, m5_data.table(tables.FEATURES), FEATURES))
    return recorded(m5_data, context, tables.FEATURES.name, "features_within_catalog_rules", result)


checks = [*raw_checks, sales_long_complete, units_within_history, features_within_catalog_rules]
