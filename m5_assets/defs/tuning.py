"""An optional hyperparameter search for a monthly cutoff: its own job, never scheduled."""
# Dagster resolves the config class from the real annotation, so annotations are not postponed here.

import dataclasses

import dagster as dg
import yaml

from m5_assets import tables
from m5_assets.defs.mlflow import MlflowTracking
from m5_assets.defs.model import DemandModelConfig
from m5_assets.defs.resources import M5Data
from m5_assets.features.catalog import HORIZON
from m5_assets.model.tuning import SEARCH_SPACE, TrialResult, tune

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
    ):
        cutoff = context.partition_time_window.start.date()
        inputs = m5_data.feature_inputs()
        with mlflow_tracking.run(f"model_tuning {cutoff}") as run:
            run.set_tags({"cutoff": cutoff.isoformat(), "purpose": "tuning"})

            def log_trial(result: TrialResult) -> None:
                with mlflow_tracking.run(f"trial {result.number}", parent=run) as trial:
                    trial.log_params(result.params)
                    trial.log_metrics(
                        {
                            "wrmsse": result.wrmsse,
                            "model_wrmsse": result.model_wrmsse,
                            "best_iteration": result.best_iteration,
                            "seconds": result.seconds,
                        }
                    )
                    trial.set_tags({"issued_as": result.issued_as})
                context.log.info(
                    f"trial {result.number}: WRMSSE {result.wrmsse:.4f} in {result.seconds:.0f} s, {result.params}"
                )

            best, trials = tune(
                m5_data.table(tables.FEATURES),
                inputs,
                cutoff,
                config.training_params(),
                config.budget_minutes * 60,
                config.max_trials,
                log_trial,
            )
            start_score, best_score = float(trials["wrmsse"].iloc[0]), float(trials["wrmsse"].min())
            run.log_params({f"best_{k}": getattr(best, k) for k in SEARCH_SPACE})
            run.log_metrics({"best_wrmsse": best_score, "default_wrmsse": start_score, "trials": len(trials)})
            run.log_text(trials.to_csv(index=False), "trials.csv")
        launchpad = {
            "ops": {
                "demand_model": {
                    "config": {k: v for k, v in dataclasses.asdict(best).items() if k in DemandModelConfig.model_fields}
                }
            }
        }
        return dg.MaterializeResult(
            metadata={
                "cutoff": cutoff.isoformat(),
                "trials": len(trials),
                "default_wrmsse": round(start_score, 4),
                "best_wrmsse": round(best_score, 4),
                "improvement_pct": round(100 * (1 - best_score / start_score), 2),
                "best_params": {k: getattr(best, k) for k in SEARCH_SPACE},
                "trial_table": dg.MetadataValue.md(trials.round(4).to_markdown(index=False)),
                "demand_model_launchpad_config": dg.MetadataValue.md(
                    f"```yaml\n{yaml.safe_dump(launchpad, sort_keys=False)}```"
                ),
                "mlflow_run_id": run.run_id,
                "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(run)),
            }
        )

    return model_tuning


tune_model = dg.define_asset_job(
    TUNE_MODEL_JOB,
    selection=dg.AssetSelection.assets("model_tuning"),
    description="Search LightGBM parameters for one monthly cutoff within a time budget (never scheduled).",
)
