"""The rolling-origin backtest as an asset: launched from the UI (the backtest job) or `m5 backtest`."""
# Dagster resolves the config class from the real annotation, so annotations are not postponed here.

import dagster as dg
import pandas as pd

from m5_assets import tables
from m5_assets.backtest import report
from m5_assets.backtest.origins import DESIGN_ORIGINS_BEFORE, WEEKS
from m5_assets.backtest.tracked import EXPERIMENT, MODEL_NAME, TrackedBacktest, tracked_backtest
from m5_assets.defs.check_log import recorded
from m5_assets.defs.mlflow import MlflowTracking
from m5_assets.defs.model import DemandModelConfig
from m5_assets.defs.resources import M5Data
from m5_assets.defs.results import AssetEvents
from m5_assets.model import registry
from m5_assets.model.evaluation import MODEL

BACKTEST_JOB = "backtest"
MEETS_TARGETS = "meets_accuracy_targets"


class BacktestConfig(DemandModelConfig):
    """The demand model's settings for every monthly model, and how far back to go."""

    weeks: int = WEEKS
    mlforecast_peer: bool = True


@dg.asset(
    name=tables.BACKTEST_REPORT.name,
    group_name="backtest",
    kinds={"lightgbm", "mlflow", "parquet"},
    deps=[tables.FEATURES.name, tables.SALES_LONG.name],
    check_specs=[
        dg.AssetCheckSpec(
            MEETS_TARGETS,
            asset=tables.BACKTEST_REPORT.name,
            description="the issued forecast meets every accuracy target of the backtest (a warning)",
        )
    ],
    description=(
        f"{tables.BACKTEST_REPORT.description} Monthly models are trained as demand_model trains them and "
        f"logged to the MLflow experiment '{EXPERIMENT}', registered as '{MODEL_NAME}': the production "
        f"registry ('{registry.MODEL_NAME}') and its champion are never touched."
    ),
)
def backtest_report(
    context: dg.AssetExecutionContext, config: BacktestConfig, m5_data: M5Data, mlflow_tracking: MlflowTracking
) -> AssetEvents:
    done = tracked_backtest(
        m5_data.files(tables.FEATURES),
        m5_data.feature_inputs(),
        config.weeks,
        config.training_params(),
        mlforecast_peer=config.mlforecast_peer,
        tracker=MlflowTracking(
            tracking_uri=mlflow_tracking.tracking_uri,
            artifact_root=mlflow_tracking.artifact_root,
            experiment_name=EXPERIMENT,
        ),
        storage=m5_data.storage,
        target=m5_data.table(tables.BACKTEST_REPORT),
        report_progress=context.log.info,
    )
    yield dg.MaterializeResult(metadata=backtest_metadata(done))
    yield recorded(m5_data, context, tables.BACKTEST_REPORT.name, MEETS_TARGETS, targets_result(done.targets))


def backtest_metadata(done: TrackedBacktest) -> dict:
    """What the UI shows of a backtest."""
    scores, origins, methods = done.result.scores, done.origins, done.methods
    design, recent = scores[scores["origin"] < DESIGN_ORIGINS_BEFORE], report.later(scores, DESIGN_ORIGINS_BEFORE)
    issued = methods.set_index("method").loc[MODEL]
    return {
        "rows": len(scores),
        "origins": len(origins),
        "first_origin": origins[0].isoformat(),
        "last_origin": origins[-1].isoformat(),
        "issued_wrmsse": round(float(issued["wrmsse"]), 4),
        "issued_mean_rmsse": round(float(issued["mean_rmsse"]), 4),
        "issued_bias_pct": round(float(issued["bias_pct"]), 2),
        "methods": dg.MetadataValue.md(methods.round(4).to_markdown(index=False)),
        "targets": dg.MetadataValue.md(done.targets.round(4).to_markdown(index=False)),
        "intervals": dg.MetadataValue.md(report.interval_table(scores).round(2).to_markdown(index=False)),
        f"methods_before_{DESIGN_ORIGINS_BEFORE}": dg.MetadataValue.md(
            report.method_table(design).round(4).to_markdown(index=False)
        ),
        f"methods_from_{DESIGN_ORIGINS_BEFORE}": dg.MetadataValue.md(
            report.method_table(recent).round(4).to_markdown(index=False)
        ),
        "models": dg.MetadataValue.md(done.result.models.round(4).to_markdown(index=False)),
        "peer_configuration": done.result.peer_configuration,
        "mlflow_run": dg.MetadataValue.url(done.run_url),
        "path": dg.MetadataValue.path(str(done.path)),
    }


def targets_result(targets: pd.DataFrame) -> dg.AssetCheckResult:
    missed = targets[targets["met"] != "met"]
    return dg.AssetCheckResult(
        check_name=MEETS_TARGETS,
        passed=missed.empty,
        severity=dg.AssetCheckSeverity.WARN,
        description=(
            f"all {len(targets)} targets met"
            if missed.empty
            else f"{len(missed)} of {len(targets)} targets missed: " + "; ".join(missed["target"])
        ),
        metadata={"missed": dg.MetadataValue.md(missed.round(4).to_markdown(index=False)) if len(missed) else "none"},
    )


backtest_job = dg.define_asset_job(
    BACKTEST_JOB,
    selection=dg.AssetSelection.assets(tables.BACKTEST_REPORT.name),
    description="Replay the last 52 weeks: monthly models (registered as m5-backtest), a forecast every 7 days, scored beside the peers.",
)
