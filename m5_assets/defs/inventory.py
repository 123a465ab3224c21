"""The replenishment plan of each forecast partition."""
# Dagster resolves the context, config and resource types from real annotations: none are postponed here.

from pathlib import Path

import dagster as dg
import pandas as pd

from m5_assets import tables
from m5_assets.defs.beta import known_beta_apis
from m5_assets.defs.check_log import recorded
from m5_assets.defs.forecasts import BACKFILL_POLICY, run_days
from m5_assets.defs.metadata import partition_metadata
from m5_assets.defs.resources import M5Data
from m5_assets.defs.results import AssetEvents
from m5_assets.forecast.inventory import RECORD_MULTIPLE, Policy, read_overrides
from m5_assets.forecast.planning import PlannedDays, plan_days, publish_plans

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
    def inventory_plan(context: dg.AssetExecutionContext, config: InventoryConfig, m5_data: M5Data) -> AssetEvents:
        default, days = config.policy(), run_days(context)
        try:
            overrides = read_overrides(Path(config.overrides_csv), default) if config.overrides_csv else None
        except (OSError, ValueError) as error:
            raise dg.Failure(str(error)) from error
        features = m5_data.files(tables.FEATURES)
        planned = plan_days(m5_data.connect(), features, m5_data.paths.warehouse, days, default, overrides)
        problem = planned.problem(AT_RISK_SHOWN)
        if problem is not None:
            yield recorded(m5_data, context, tables.INVENTORY_PLAN.name, ORDERS_CHECK, refused_result(planned, problem))
            raise dg.Failure(description=f"inventory_plan not published: {problem}"[:4000])
        for day, path in publish_plans(m5_data.storage, planned.plans).items():
            metadata = plan_metadata(path, planned.plans[day], config.overrides_csv)
            context.add_asset_metadata(metadata, partition_key=day.isoformat())
        yield dg.MaterializeResult()
        passed = dg.AssetCheckResult(
            check_name=ORDERS_CHECK, passed=True, metadata={"values_beyond": 0, "days": len(days)}
        )
        yield recorded(m5_data, context, tables.INVENTORY_PLAN.name, ORDERS_CHECK, passed)

    return inventory_plan


def refused_result(planned: PlannedDays, problem: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=ORDERS_CHECK,
        passed=False,
        description=problem[:4000],
        metadata={
            "values_beyond": len(planned.beyond),
            "largest": dg.MetadataValue.md(planned.beyond.head(AT_RISK_SHOWN).round(1).to_markdown(index=False)),
        },
    )


def plan_metadata(path: Path, planned: pd.DataFrame, overrides_csv: str) -> dict:
    """What the UI shows of one day's plan."""
    by_store = planned.groupby("store_id")[["lead_time_demand", "safety_stock", "reorder_point", "eoq"]].sum().round(1)
    at_risk = planned.nlargest(AT_RISK_SHOWN, "lead_time_sigma")
    return partition_metadata(path, planned, tables.INVENTORY_PLAN.describe) | {
        "total_safety_stock": round(float(planned["safety_stock"].sum()), 1),
        "total_lead_time_demand": round(float(planned["lead_time_demand"].sum()), 1),
        "by_store": dg.MetadataValue.md(by_store.to_markdown()),
        # Without stock on hand, the items most exposed are those whose lead-time demand is least
        # certain in units: a bad lead time runs furthest past its forecast.
        "most_at_risk": dg.MetadataValue.md(
            at_risk[["id", "lead_time_demand", "lead_time_sigma", "safety_stock", "reorder_point"]]
            .round(2)
            .to_markdown(index=False)
        ),
        "overrides": overrides_csv or "none",
    }
