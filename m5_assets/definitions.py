"""The code location: everything Dagster shows, assembled from one module per concern."""

import dagster as dg

from m5_assets.defs import jobs, long_table, raw
from m5_assets.defs.alerts import alert_webhook, build_alert_sensors
from m5_assets.defs.automation import build_automation, forecast_jobs
from m5_assets.defs.backtest import backtest_job, backtest_report
from m5_assets.defs.inventory import build_inventory_assets
from m5_assets.defs.mlflow import mlflow_tracking
from m5_assets.defs.model import build_demand_model
from m5_assets.defs.monitoring import build_monitoring_assets
from m5_assets.defs.partitions import forecast_partitions, model_partitions
from m5_assets.defs.promotion import promote_model
from m5_assets.defs.resources import M5Data, default_data_resource
from m5_assets.defs.scaled import build_feature_assets, build_forecast_assets
from m5_assets.defs.tuning import build_model_tuning, tune_model


def build_definitions(m5_data: M5Data) -> dg.Definitions:
    """The whole code location bound to one data folder (tests bind a temporary one)."""
    monthly, daily = model_partitions(m5_data.paths), forecast_partitions(m5_data.paths)
    schedules, sensors = build_automation(daily, monthly)
    return dg.Definitions(
        assets=[
            *dg.load_assets_from_modules([raw, long_table]),
            *build_feature_assets(m5_data.store_groups),
            build_demand_model(monthly),
            build_model_tuning(monthly),
            *build_forecast_assets(daily, m5_data.store_groups),
            *build_monitoring_assets(daily),
            *build_inventory_assets(daily),
            backtest_report,
        ],
        jobs=[
            jobs.feature_store_job(m5_data.store_groups),
            jobs.train_model,
            tune_model,
            *forecast_jobs(m5_data.store_groups),
            promote_model,
            backtest_job,
        ],
        schedules=schedules,
        sensors=[*sensors, *build_alert_sensors()],
        resources={
            "m5_data": m5_data,
            "mlflow_tracking": mlflow_tracking(m5_data.paths),
            "alert_webhook": alert_webhook(),
        },
        # Steps are short and share one disk; one process avoids a subprocess start per step.
        executor=dg.in_process_executor,
    )


defs = build_definitions(default_data_resource())
