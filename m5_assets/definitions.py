"""The code location: everything Dagster shows, assembled from one module per concern."""

import dagster as dg

from m5_assets.defs import jobs, long_table, raw
from m5_assets.defs.accuracy_shards import build_accuracy_asset
from m5_assets.defs.alerts import alert_webhook, build_alert_sensors
from m5_assets.defs.automation import build_automation, forecast_freshness_checks, forecast_jobs
from m5_assets.defs.backtest import backtest_job, backtest_report
from m5_assets.defs.beta import known_beta_apis
from m5_assets.defs.feature_shards import build_features_asset
from m5_assets.defs.features import feature_catalog
from m5_assets.defs.forecast_shards import build_forecasts_asset
from m5_assets.defs.inventory import build_inventory_assets
from m5_assets.defs.mlflow import mlflow_tracking
from m5_assets.defs.model import build_demand_model
from m5_assets.defs.monitoring import build_monitoring_assets
from m5_assets.defs.ownership import owned
from m5_assets.defs.partitions import forecast_partitions, model_partitions
from m5_assets.defs.promotion import promote_model
from m5_assets.defs.resources import M5Data, StoreGroups, default_data_resource, default_store_groups
from m5_assets.defs.tuning import build_model_tuning, tune_model
from m5_assets.settings import load_settings


def build_forecast_assets(daily: dg.DailyPartitionsDefinition) -> list[dg.AssetsDefinition]:
    """The forecasts (with their levels) and their scores."""
    with known_beta_apis():
        return [build_forecasts_asset(daily), build_accuracy_asset(daily)]


def build_definitions(m5_data: M5Data, store_groups: StoreGroups | None = None) -> dg.Definitions:
    """The whole code location bound to one data folder (tests bind a temporary one), computing
    in ``store_groups`` groups of stores unless a run says otherwise (default M5_STORE_GROUPS)."""
    settings = load_settings()
    monthly, daily = model_partitions(m5_data.paths), forecast_partitions(m5_data.paths)
    schedules, sensors = build_automation(daily, monthly)
    return dg.Definitions(
        assets=owned(
            [
                *dg.load_assets_from_modules([raw, long_table]),
                feature_catalog,
                build_features_asset(),
                build_demand_model(monthly),
                build_model_tuning(monthly),
                *build_forecast_assets(daily),
                *build_monitoring_assets(daily),
                *build_inventory_assets(daily),
                backtest_report,
            ],
            settings.asset_owner,
        ),
        asset_checks=forecast_freshness_checks(),
        jobs=[
            jobs.feature_store_job,
            jobs.train_model,
            tune_model,
            *forecast_jobs(),
            promote_model,
            backtest_job,
        ],
        schedules=schedules,
        sensors=[*sensors, *build_alert_sensors()],
        resources={
            "m5_data": m5_data,
            "store_groups": store_groups or default_store_groups(),
            "mlflow_tracking": mlflow_tracking(m5_data.paths),
            "alert_webhook": alert_webhook(),
        },
        # From the settings, never from the store-group count: a run's groups are steps of the
        # same graph on any executor, in one process by default.
        executor=jobs.step_executor(),
    )


defs = build_definitions(default_data_resource())
