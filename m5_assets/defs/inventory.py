"""The replenishment plan of each forecast partition."""
# Dagster resolves the context, config and resource types from real annotations: none are postponed here.

from pathlib import Path

import dagster as dg
import pandas as pd

from m5_assets import reader, tables
from m5_assets.defs.beta import known_beta_apis
from m5_assets.defs.check_log import recorded
from m5_assets.defs.forecasts import BACKFILL_POLICY, run_days
from m5_assets.defs.metadata import partition_metadata
from m5_assets.defs.resources import M5Data
from m5_assets.forecast import store
from m5_assets.forecast.inventory import (
    RECORD_MULTIPLE,
    Policy,
    orders_beyond_history,
    plan,
    policies_for,
    read_overrides,
)
from m5_assets.forecast.plausibility import history_highs

_DEFAULT = Policy()
AT_RISK_SHOWN = 10
ORDERS_CHECK = "orders_within_history"


class InventoryConfig(dg.Config):
    """Replenishment settings for every item-store; ``overrides_csv`` may set them per store,
    department or store x department (see the README)."""

    lead_time_days: int = _DEFAULT.lead_time_days
    review_days: int = _DEFAULT.review_days
    service_level: float = _DEFAULT.service_level
    ordering_cost: float = _DEFAULT.ordering_cost
    holding_rate: float = _DEFAULT.holding_rate
    overrides_csv: str = ""  # a path; empty: no overrides

    def policy(self) -> Policy:
        policy = Policy(
            self.lead_time_days, self.review_days, self.service_level, self.ordering_cost, self.holding_rate
        )
        if policy.problems():
            raise dg.Failure(
                "inventory_plan config: " + "; ".join(f"{k} {rule}" for k, rule in policy.problems().items())
            )
        return policy


def build_inventory_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    with known_beta_apis():
        return [_inventory_plan(daily)]


def _inventory_plan(daily: dg.DailyPartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name=tables.INVENTORY_PLAN.name,
        group_name="inventory",
        kinds={"pandas", "parquet"},
        partitions_def=daily,
        backfill_policy=BACKFILL_POLICY,
        deps=[tables.FORECASTS.name, tables.FEATURES.name],
        description=tables.INVENTORY_PLAN.description,
        check_specs=[
            dg.AssetCheckSpec(
                ORDERS_CHECK,
                asset=tables.INVENTORY_PLAN.name,
                blocking=True,
                description=f"no series' mean daily demand, reorder point or order-up-to level needs more than {RECORD_MULTIPLE:g} x "
                "its highest day before the forecast date on every day: no plan of a run is published otherwise",
            )
        ],
    )
    def inventory_plan(context: dg.AssetExecutionContext, config: InventoryConfig, m5_data: M5Data):
        default = config.policy()
        try:
            overrides = read_overrides(Path(config.overrides_csv), default) if config.overrides_csv else None
        except (OSError, ValueError) as error:
            raise dg.Failure(str(error)) from error
        root, days = m5_data.paths.warehouse, run_days(context)
        # Prices are weekly lists known in advance: the one in force on each forecast date, for
        # every date of the run in one scan.
        prices = (
            m5_data.connect()
            .sql(
                f"SELECT date, id, sell_price FROM read_parquet('{m5_data.table(tables.FEATURES)}') "
                f"WHERE date BETWEEN DATE '{days[0]}' AND DATE '{days[-1]}'"
            )
            .df()
            .set_index(["date", "id"])["sell_price"]
        )
        highest = history_highs(m5_data.connect(), m5_data.table(tables.FEATURES), days)
        plans, refused = {}, []
        for day in days:
            bottom = reader.read_partition(root, tables.FORECASTS, day)
            series = bottom.drop_duplicates("id").set_index("id")[["store_id", "dept_id"]]
            plans[day] = plan(
                bottom, prices.xs(pd.Timestamp(day), level="date"), policies_for(series, default, overrides)
            )
            refused.append(orders_beyond_history(plans[day], highest[day]["highest_day"]).assign(forecast_date=day))
        beyond = pd.concat(refused, ignore_index=True)
        if len(beyond):
            shown = beyond.head(AT_RISK_SHOWN).round(1)
            message = f"{len(beyond)} plan value(s) beyond what the series' history could justify, e.g. " + "; ".join(
                f"{r.id} on {r.forecast_date}: {r.column} {r.value:,.1f} > {r.bound:,.1f}" for r in shown.itertuples()
            )
            yield recorded(
                m5_data,
                context,
                tables.INVENTORY_PLAN.name,
                ORDERS_CHECK,
                dg.AssetCheckResult(
                    check_name=ORDERS_CHECK,
                    passed=False,
                    description=message[:4000],
                    metadata={
                        "values_beyond": len(beyond),
                        "largest": dg.MetadataValue.md(shown.to_markdown(index=False)),
                    },
                ),
            )
            raise dg.Failure(description=f"inventory_plan not published: {message}"[:4000])
        for day, planned in plans.items():
            path = store.write_partition(m5_data.storage, tables.INVENTORY_PLAN, day, planned)
            by_store = (
                planned.groupby("store_id")[["lead_time_demand", "safety_stock", "reorder_point", "eoq"]].sum().round(1)
            )
            at_risk = planned.nlargest(AT_RISK_SHOWN, "lead_time_sigma")
            context.add_asset_metadata(
                partition_metadata(path, planned, tables.INVENTORY_PLAN.describe)
                | {
                    "total_safety_stock": round(float(planned["safety_stock"].sum()), 1),
                    "total_lead_time_demand": round(float(planned["lead_time_demand"].sum()), 1),
                    "by_store": dg.MetadataValue.md(by_store.to_markdown()),
                    # Without stock on hand, the items most exposed are those whose lead-time demand is
                    # least certain in units: a bad lead time runs furthest past its forecast.
                    "most_at_risk": dg.MetadataValue.md(
                        at_risk[["id", "lead_time_demand", "lead_time_sigma", "safety_stock", "reorder_point"]]
                        .round(2)
                        .to_markdown(index=False)
                    ),
                    "overrides": config.overrides_csv or "none",
                },
                partition_key=day.isoformat(),
            )
        yield dg.MaterializeResult()
        yield recorded(
            m5_data,
            context,
            tables.INVENTORY_PLAN.name,
            ORDERS_CHECK,
            dg.AssetCheckResult(
                check_name=ORDERS_CHECK,
                passed=True,
                metadata={"values_beyond": 0, "days": len(days)},
            ),
        )

    return inventory_plan
