"""An optional hyperparameter search for a monthly cutoff: its own job, never scheduled."""
# Dagster resolves the config class from the real annotation, so annotations are not postponed here.

import dataclasses
import datetime as dt

import dagster as dg
import yaml

from m5_assets import tables
from m5_assets.defs.mlflow import MlflowTracking
from m5_assets.defs.model import DemandModelConfig
from m5_assets.defs.resources import M5Data
from m5_assets.features.catalog import HORIZON
from m5_assets.model.tuning import SEARCH_SPACE, TrackedTuning, tracked_tuning

TUNE_MODEL_JOB = "tune_model"


class TuningConfig(DemandModelConfig):
    """Where the search starts (the demand model's settings) and how long it may run."""

    budget_minutes: float = 30.0
    max_trials: int = 20


def build_model_tuning(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="model_tuning",
        group_name="model",
        kinds={"optuna", "mlflow"},
        partitions_def=partitions_def,
        deps=[tables.FEATURES.name, tables.SALES_LONG.name],
        description=(
            "Optuna (TPE) search over learning rate, leaves, rows per leaf, feature and row sampling, "
            f"L2 and tweedie power, each trial early-stopped and scored on the {HORIZON} days before the "
            "cutoff by the WRMSSE of the forecast it would issue. Bounded by a time budget; every trial is "
            "a nested MLflow run. Off by default: launch the tune_model job, then copy the suggested "
            "launchpad config into a demand_model run."
        ),
    )
    def model_tuning(
        context: dg.AssetExecutionContext, config: TuningConfig, m5_data: M5Data, mlflow_tracking: MlflowTracking
    ) -> dg.MaterializeResult:
        done = tracked_tuning(
            m5_data.files(tables.FEATURES),
            m5_data.feature_inputs(),
            context.partition_time_window.start.date(),
            config.training_params(),
            config.budget_minutes * 60,
            config.max_trials,
            tracker=mlflow_tracking,
            report=context.log.info,
        )
        return dg.MaterializeResult(metadata=tuning_metadata(context.partition_time_window.start.date(), done))

    return model_tuning


def tuning_metadata(cutoff: dt.date, done: TrackedTuning) -> dict:
    """What the UI shows of a search, with the launchpad config of its best settings."""
    fields = DemandModelConfig.model_fields
    launchpad = {
        "ops": {"demand_model": {"config": {k: v for k, v in dataclasses.asdict(done.best).items() if k in fields}}}
    }
    return {
        "cutoff": cutoff.isoformat(),
        "trials": len(done.trials),
        "default_wrmsse": round(done.start_score, 4),
        "best_wrmsse": round(done.best_score, 4),
        "improvement_pct": round(100 * (1 - done.best_score / done.start_score), 2),
        "best_params": {k: getattr(done.best, k) for k in SEARCH_SPACE},
        "trial_table": dg.MetadataValue.md(done.trials.round(4).to_markdown(index=False)),
        "demand_model_launchpad_config": dg.MetadataValue.md(
            f"```yaml\n{yaml.safe_dump(launchpad, sort_keys=False)}```"
        ),
        "mlflow_run_id": done.run_id,
        "mlflow_run": dg.MetadataValue.url(done.run_url),
    }


tune_model = dg.define_asset_job(
    TUNE_MODEL_JOB,
    selection=dg.AssetSelection.assets("model_tuning"),
    description="Search LightGBM parameters for one monthly cutoff within a time budget (never scheduled).",
)
