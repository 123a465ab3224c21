"""The demand model: one LightGBM per monthly training cutoff, tracked and registered in MLflow."""
# Dagster resolves the config class from the real annotation, so annotations are not postponed here.

import dataclasses
import datetime as dt
import typing
from pathlib import Path

import dagster as dg
import pydantic

from m5_assets import tables
from m5_assets.defs.check_log import recorded
from m5_assets.defs.mlflow import MlflowTracking
from m5_assets.defs.resources import M5Data
from m5_assets.defs.results import AssetEvents
from m5_assets.defs.summary import compared
from m5_assets.features.catalog import HORIZON
from m5_assets.forecast.pyfunc import ForecasterPackaging
from m5_assets.model import registry
from m5_assets.model.evaluation import PURE_MODEL
from m5_assets.model.pipeline import TrainingReport, train_demand_model
from m5_assets.model.training import TrainingParams

BEATS_SEASONAL_NAIVE = "beats_seasonal_naive"
_HINTS = typing.get_type_hints(TrainingParams)


class _TrainingConfig(dg.Config):
    def training_params(self) -> TrainingParams:
        """The settings as training takes them (a subclass's extra fields are not training's)."""
        return TrainingParams(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainingParams)})


if typing.TYPE_CHECKING:
    # A type checker cannot follow fields made at run time; to it the config is its base class.
    DemandModelConfig = _TrainingConfig
else:
    # The launchpad's fields are TrainingParams' own, with its defaults: declared once, in training.
    DemandModelConfig = pydantic.create_model(
        "DemandModelConfig",
        __base__=_TrainingConfig,
        __doc__="LightGBM settings a user can change from the launchpad.",
        **{f.name: (_HINTS[f.name], f.default) for f in dataclasses.fields(TrainingParams)},
    )


def build_demand_model(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        name="demand_model",
        group_name="model",
        kinds={"lightgbm", "mlflow"},
        partitions_def=partitions_def,
        deps=[tables.FEATURES.name, tables.SALES_LONG.name],
        check_specs=[
            dg.AssetCheckSpec(
                BEATS_SEASONAL_NAIVE,
                asset="demand_model",
                blocking=True,
                description="validation WRMSSE below seasonal naive's on the same 28 days",
            )
        ],
        description=(
            f"LightGBM (tweedie, each row starting from its series' demand level) trained on released rows "
            f"before the cutoff (the partition's day), early-stopped on the {HORIZON} days before it, refit on "
            "all of them. Forecasts issue the blend of model and demand level that scored best on those days. "
            "Scored with WRMSSE next to naive, seasonal naive, 28-day mean and exponential smoothing; logged to "
            f"MLflow and registered as '{registry.MODEL_NAME}'. It is promoted only if it beats seasonal "
            "naive and, by 1 % on the same window, the promoted model that serves its cutoff; a promoted "
            "model takes the champion alias unless the champion has a later cutoff. Partitions are the "
            "first days of months, from the first with a year of lags and a validation window behind it to "
            "the month after the last sales day; `m5 run` trains only those its forecasts need."
        ),
    )
    def demand_model(
        context: dg.AssetExecutionContext, config: DemandModelConfig, m5_data: M5Data, mlflow_tracking: MlflowTracking
    ) -> AssetEvents:
        done = train_demand_model(
            m5_data.files(tables.FEATURES),
            m5_data.feature_inputs(),
            context.partition_time_window.start.date(),
            config.training_params(),
            tracker=mlflow_tracking,
            packaging=ForecasterPackaging(),
            storage=m5_data.storage,
            report=context.log.info,
        )
        yield dg.MaterializeResult(metadata=training_metadata(done, m5_data.paths.mlflow))
        passed = bool(done.model_score < done.naive_score)
        yield recorded(m5_data, context, "demand_model", BEATS_SEASONAL_NAIVE, beats_naive_result(done, passed))

    return demand_model


def training_metadata(done: TrainingReport, mlflow_folder: Path) -> dict:
    """What the UI shows of a trained model."""
    model, validated, decision, serving = done.model, done.validated, done.decision, done.serving
    scores, model_score, naive_score = validated.scores, done.model_score, done.naive_score
    table = scores.table.rename_axis("method").reset_index()
    return {
        "cutoff": done.cutoff.isoformat(),
        "validation_window": f"{done.window.validation_start} .. {done.cutoff - dt.timedelta(days=1)}",
        "validation_scores": dg.MetadataValue.md(table.round(4).to_markdown(index=False)),
        "wrmsse": round(model_score, 4),
        "issued_as": validated.rule.describe(),
        "issue_rule_chosen_because": validated.rule.chosen_because,
        "issue_rule_by_band": dg.MetadataValue.md(validated.choice.to_markdown(index=False)),
        "model_alone_wrmsse": round(scores.wrmsse(PURE_MODEL), 4),
        # Seasonal naive is exact on strictly weekly series: no ratio to show then.
        "improvement_over_seasonal_naive_pct": round(100 * (1 - model_score / naive_score), 2)
        if naive_score > 0
        else float("nan"),
        # In words, so a loss never reads as a negative improvement.
        "versus_seasonal_naive": f"{compared(model_score, naive_score, 'seasonal naive')} (validation WRMSSE {model_score:.4f} vs {naive_score:.4f})",
        "wrmsse_per_level": dg.MetadataValue.md(scores.per_level.round(4).to_markdown()),
        "train_rows": model.train_rows,
        "validation_rows": model.validation_rows,
        "training_seconds": round(model.seconds, 1),
        "training_seconds_by_stage": model.stage_seconds,
        "best_iteration": model.best_iteration,
        "top_features": dg.MetadataValue.md(model.importance().head(10).round(1).to_markdown(index=False)),
        "model_version": done.model_version,
        "promoted": decision.promoted,
        "promotion_decision": decision.reason,
        "champion": decision.champion,
        "serving_version": serving.version if serving else "none",
        "serving_wrmsse_same_window": done.serving_score if done.serving_score is not None else float("nan"),
        "mlflow_run_id": done.run_id,
        "mlflow_run": dg.MetadataValue.url(done.run_url),
        "mlflow_store": str(mlflow_folder),
        "model_card": dg.MetadataValue.path(str(done.card_path)),
    }


def beats_naive_result(done: TrainingReport, passed: bool) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        check_name=BEATS_SEASONAL_NAIVE,
        passed=passed,
        description=f"cutoff {done.cutoff}: validation WRMSSE {done.model_score:.4f} vs seasonal naive "
        f"{done.naive_score:.4f}",
        metadata={"model_wrmsse": done.model_score, "seasonal_naive_wrmsse": done.naive_score},
    )
