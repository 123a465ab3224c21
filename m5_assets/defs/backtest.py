"""The rolling-origin backtest as an asset: launched from the UI (the backtest job) or `m5 backtest`."""
# Dagster resolves the config class from the real annotation, so annotations are not postponed here.

import dataclasses
import tempfile
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import mlflow

from m5_assets import tables
from m5_assets.backtest import report
from m5_assets.backtest.origins import DESIGN_ORIGINS_BEFORE, WEEKS, backtest_origins
from m5_assets.backtest.run import BacktestModel, run_backtest, standard_peers
from m5_assets.defs.check_log import recorded
from m5_assets.defs.mlflow import MlflowTracking
from m5_assets.defs.model import DemandModelConfig
from m5_assets.defs.resources import M5Data
from m5_assets.features.catalog import CATALOG_VERSION
from m5_assets.model import registry
from m5_assets.model.evaluation import MODEL
from m5_assets.model.forecaster import RULE_ARTIFACT

BACKTEST_JOB = "backtest"
EXPERIMENT = "m5-backtest"  # never the production experiment, and
MODEL_NAME = "m5-backtest"  # never the production model: no backtest version can become champion
MEETS_TARGETS = "meets_accuracy_targets"


class BacktestConfig(DemandModelConfig):
    """The demand model's settings for every monthly model, and how far back to go."""

    weeks: int = WEEKS
    mlforecast_peer: bool = True


def _log_model(tracking: MlflowTracking, parent, model: BacktestModel) -> str:
    """One monthly model as a nested run of the backtest's, registered as a version of MODEL_NAME."""
    purpose = "backtest warm-up" if model.warm_up else "backtest"  # a warm-up model issues no backtest date
    with tracking.run(f"{purpose} model {model.cutoff}", parent=parent) as run:
        scores = model.validated.scores
        run.set_tags(
            {
                "cutoff": model.cutoff.isoformat(),
                "purpose": purpose,
                "issued_as": model.validated.rule.describe(),
                "issue_rule_chosen_because": model.validated.rule.chosen_because,
            }
        )
        run.log_params(
            dataclasses.asdict(model.trained.params)
            | {"cutoff": model.cutoff.isoformat(), "feature_catalog_version": CATALOG_VERSION}
        )
        run.log_metrics(
            {
                "best_iteration": model.trained.best_iteration,
                "training_seconds": model.trained.seconds,
                **{f"validation_wrmsse_{m}": float(v) for m, v in scores.table["wrmsse"].items()},
            }
        )
        run.log_text(model.validated.rule.to_json(), RULE_ARTIFACT)
        run.log_text(model.calibration.to_json(), registry.INTERVALS_ARTIFACT)
        with tempfile.TemporaryDirectory() as folder:
            mlflow.lightgbm.save_model(
                model.trained.booster, f"{folder}/booster", pip_requirements=[f"lightgbm=={version('lightgbm')}"]
            )
            run.log_folder(Path(folder) / "booster", registry.BOOSTER_MODEL)
        return run.register(registry.BOOSTER_MODEL, MODEL_NAME)


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
):
    inputs = m5_data.feature_inputs()
    last = inputs.dates[inputs.n_sales_days - 1].date()
    origins = backtest_origins(last, config.weeks)
    features = m5_data.table(tables.FEATURES)
    tracking = MlflowTracking(
        tracking_uri=mlflow_tracking.tracking_uri,
        artifact_root=mlflow_tracking.artifact_root,
        experiment_name=EXPERIMENT,
    )
    context.log.info(f"backtest over {len(origins)} origins, {origins[0]} .. {origins[-1]}")
    with tracking.run(f"backtest {origins[0]} .. {origins[-1]}") as parent:
        parent.set_tags(
            {"purpose": "backtest", "first_origin": origins[0].isoformat(), "last_origin": origins[-1].isoformat()}
        )
        params = config.training_params()
        result = run_backtest(
            features,
            inputs,
            origins,
            params,
            peers=standard_peers(inputs, config.mlforecast_peer, params.train_days),
            on_model=lambda model: _log_model(tracking, parent, model),
            report=context.log.info,
        )
        methods = report.method_table(result.scores)
        parent.log_metrics(
            {
                f"{row.method}_{k}": getattr(row, k)
                for row in methods.itertuples()
                for k in ("wrmsse", "mean_rmsse", "bias_pct")
            }
        )
        parent.log_text(result.scores.to_csv(index=False), "backtest_scores.csv")
    target = m5_data.table(tables.BACKTEST_REPORT)
    m5_data.storage.write_with(target, lambda partial: result.scores.to_parquet(partial, index=False))
    targets = report.target_table(result.scores)
    design, recent = (
        result.scores[result.scores["origin"] < DESIGN_ORIGINS_BEFORE],
        report.later(result.scores, DESIGN_ORIGINS_BEFORE),
    )
    issued = methods.set_index("method").loc[MODEL]
    yield dg.MaterializeResult(
        metadata={
            "rows": len(result.scores),
            "origins": len(origins),
            "first_origin": origins[0].isoformat(),
            "last_origin": origins[-1].isoformat(),
            "issued_wrmsse": round(float(issued["wrmsse"]), 4),
            "issued_mean_rmsse": round(float(issued["mean_rmsse"]), 4),
            "issued_bias_pct": round(float(issued["bias_pct"]), 2),
            "methods": dg.MetadataValue.md(methods.round(4).to_markdown(index=False)),
            "targets": dg.MetadataValue.md(targets.round(4).to_markdown(index=False)),
            "intervals": dg.MetadataValue.md(report.interval_table(result.scores).round(2).to_markdown(index=False)),
            f"methods_before_{DESIGN_ORIGINS_BEFORE}": dg.MetadataValue.md(
                report.method_table(design).round(4).to_markdown(index=False)
            ),
            f"methods_from_{DESIGN_ORIGINS_BEFORE}": dg.MetadataValue.md(
                report.method_table(recent).round(4).to_markdown(index=False)
            ),
            "models": dg.MetadataValue.md(result.models.round(4).to_markdown(index=False)),
            "peer_configuration": result.peer_configuration,
            "mlflow_run": dg.MetadataValue.url(tracking.run_url(parent)),
            "path": dg.MetadataValue.path(str(target)),
        }
    )
    missed = targets[targets["met"] != "met"]
    yield recorded(
        m5_data,
        context,
        tables.BACKTEST_REPORT.name,
        MEETS_TARGETS,
        dg.AssetCheckResult(
            check_name=MEETS_TARGETS,
            passed=missed.empty,
            severity=dg.AssetCheckSeverity.WARN,
            description=(
                f"all {len(targets)} targets met"
                if missed.empty
                else f"{len(missed)} of {len(targets)} targets missed: " + "; ".join(missed["target"])
            ),
            metadata={
                "missed": dg.MetadataValue.md(missed.round(4).to_markdown(index=False)) if len(missed) else "none"
            },
        ),
    )


backtest_job = dg.define_asset_job(
    BACKTEST_JOB,
    selection=dg.AssetSelection.assets(tables.BACKTEST_REPORT.name),
    description="Replay the last 52 weeks: monthly models (registered as m5-backtest), a forecast every 7 days, scored beside the peers.",
)
