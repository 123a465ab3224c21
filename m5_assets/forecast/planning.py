"""Inventory plans of a run's forecast dates: planned from the published forecasts, judged against
each series' history, and published all together or not at all."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from m5_assets import reader, tables
from m5_assets.forecast.inventory import Policy, orders_beyond_history, plan, policies_for
from m5_assets.forecast.plausibility import history_highs
from m5_assets.table_files import TableFiles, TableSource
from m5_assets.warehouse import Warehouse


@dataclass(frozen=True)
class PlannedDays:
    plans: dict[dt.date, pd.DataFrame]
    beyond: pd.DataFrame  # plan values beyond what each series' history could justify (empty: none)

    def problem(self, shown: int) -> str | None:
        """The refusal in words, naming the first ``shown`` values; None when every plan is within."""
        if self.beyond.empty:
            return None
        examples = self.beyond.head(shown).round(1)
        return f"{len(self.beyond)} plan value(s) beyond what the series' history could justify, e.g. " + "; ".join(
            f"{r.id} on {r.forecast_date}: {r.column} {r.value:,.1f} > {r.bound:,.1f}" for r in examples.itertuples()
        )


def plan_days(
    con: duckdb.DuckDBPyConnection,
    features: TableSource,
    warehouse: Path,
    days: list[dt.date],
    default: Policy,
    overrides: pd.DataFrame | None,
) -> PlannedDays:
    """Each day's plan from its published forecast, and which values are beyond history."""
    # Prices are weekly lists known in advance: the one in force on each forecast date, for
    # every date of the run in one scan.
    prices = (
        con.sql(
            f"SELECT date, id, sell_price FROM {TableFiles.of(features).scan()} "
            f"WHERE date BETWEEN DATE '{days[0]}' AND DATE '{days[-1]}'"
        )
        .df()
        .set_index(["date", "id"])["sell_price"]
    )
    highest = history_highs(con, features, days)
    plans, refused = {}, []
    for day in days:
        bottom = reader.read_partition(warehouse, tables.FORECASTS, day)
        series = bottom.drop_duplicates("id").set_index("id")[["store_id", "dept_id"]]
        plans[day] = plan(bottom, prices.xs(pd.Timestamp(day), level="date"), policies_for(series, default, overrides))
        refused.append(orders_beyond_history(plans[day], highest[day]["highest_day"]).assign(forecast_date=day))
    return PlannedDays(plans, pd.concat(refused, ignore_index=True))


def publish_plans(storage: Warehouse, plans: dict[dt.date, pd.DataFrame]) -> dict[dt.date, Path]:
    """Every day's plan, published; the file of each."""
    return {day: tables.INVENTORY_PLAN.write_partition(storage, day, planned) for day, planned in plans.items()}
