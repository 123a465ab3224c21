"""The demand model: one LightGBM per monthly training cutoff, tracked and registered in MLflow."""
# Dagster resolves the config class from the real annotation, so annotations are not postponed here.

import dataclasses
import datetime as dt
import tempfile
import typing
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import mlflow
import pydantic

from m5_assets import tables
from m5_assets.defs.check_log import recorded
from m5_assets.defs.mlflow import MlflowTracking
from m5_assets.defs.resources import M5Data
from m5_assets.defs.summary import compared
from m5_assets.features.catalog import CATALOG_VERSION, HORIZON
from m5_assets.forecast import store
from m5_assets.forecast.pyfunc import forecaster_input, save_forecaster
from m5_assets.model import registry
from m5_assets.model.card import model_card
from m5_assets.model.evaluation import MODEL, PURE_MODEL, score_validation
from m5_assets.model.forecaster import RULE_ARTIFACT, IssuingModel, Partners, row_levels
from m5_assets.model.matrix import read_rows
from m5_assets.model.selection import (
    Validated,
    ValidationForecast,
    calibrate_validated,
    served_forecast,
    served_windows,
    validate,
)
from m5_assets.model.tracking import TrackedRun
from m5_assets.model.training import TrainingParams, Window, train

BEATS_SEASONAL_NAIVE = "beats_seasonal_naive"
_HINTS = typing.get_type_hints(TrainingParams)


class _TrainingConfig(dg.Config):
    def training_params(self) -> TrainingParams:
        """The settings as training takes them (a subclass's extra fields are not training's)."""
        return TrainingParams(**{f.name: getattr(self, f.name) for f in dataclasses.fields(TrainingParams)})


# The launchpad's fields are TrainingParams' own, with its defaults: declared once, in training.
DemandModelConfig = pydantic.create_model(
    "DemandModelConfig",
    __base__=_TrainingConfig,
    __doc__="LightGBM settings a user can change from the launchpad.",
    **{f.name: (_HINTS[f.name], f.default) for f in dataclasses.fields(TrainingParams)},
)


def served_by_earlier_models(client, features: Path, cutoff: dt.date) -> list[ValidationForecast]:
    """The windows ``cutoff``'s issue rule is chosen on, as the registered models of the months
    before forecast them (the newest version of each month, its units formed as a new model's
    are; a month without one is left out)."""
    newest = {v.cutoff: v for v in registry.registered_versions(client)}
    out = []
    for model_cutoff, window_cutoff in served_windows(cutoff):
        version = newest.get(model_cutoff)
        if version is not None:
            rule = registry.load_issue_rule(client, version.run_id)
            out.append(served_forecast(features, registry.load_booster(client, version), rule.relative, window_cutoff))
    return out


def _version_score(inputs, m5_data: M5Data, window: Window, serving: IssuingModel) -> float:
    """A registered version's WRMSSE on this partition's validation window, issued as it issues."""
    rows = read_rows(
        m5_data.table(tables.FEATURES),
        window.validation_start,
        window.cutoff,
        vocabulary=serving.booster.pandas_categorical,
    )
    partners = Partners.at_origin(rows.keys, rows.matrix, window.validation_start)
    predictions = rows.keys.assign(
        prediction=serving.rule.units(serving.booster.predict(rows.matrix), row_levels(rows.matrix), partners)
    )
    return score_validation(inputs, window.cutoff, predictions).wrmsse(MODEL)


def _log_run(
    run: TrackedRun, model, validated: Validated, calibration, window: Window, example, decision, serving
) -> str:
    """Everything the run records, the booster and the pyfunc; returns the registered version."""
    rule, cutoff = validated.rule, window.cutoff
    run.set_tags(
        {
            "cutoff": cutoff.isoformat(),
            "validation_start": window.validation_start.isoformat(),
            "issued_as": rule.describe(),
            "issue_rule_chosen_because": rule.chosen_because,
            "promoted": str(decision.promoted),
            "decision": decision.reason,
            "champion": str(decision.champion),
            "serving_version": serving.version if serving else "",
            "serving_wrmsse_same_window": str(decision.serving_wrmsse),
        }
    )
    # The catalog version says which definitions of the features the booster learned on.
    run.log_params(
        asdict(model.params)
        | {
            "train_start": window.train_start.isoformat(),
            "cutoff": cutoff.isoformat(),
            "feature_catalog_version": CATALOG_VERSION,
        }
    )
    metrics = {
        "train_rows": model.train_rows,
        "validation_rows": model.validation_rows,
        "best_iteration": model.best_iteration,
        "training_seconds": model.seconds,
        "validation_windows": len(validated.windows),
        **{
            f"windows_{column}_{who.replace(' ', '_').replace('-', '')}": float(value)
            for who, row in validated.evidence.iterrows()
            for column, value in row.items()
        },
        **{f"model_weight_band_{row.band}": row.model_weight for row in validated.choice.itertuples()},
    }
    for method, row in validated.scores.table.iterrows():
        metrics |= {f"{name}_{method}": float(value) for name, value in row.items()}
    run.log_metrics(metrics)
    run.log_text(rule.to_json(), RULE_ARTIFACT)
    run.log_text(calibration.to_json(), registry.INTERVALS_ARTIFACT)
    run.log_text(validated.choice.to_csv(index=False), "issue_rule_by_band.csv")
    run.log_text(model.importance().to_csv(index=False), registry.IMPORTANCE_ARTIFACT)
    run.log_text(validated.scores.per_level.to_csv(), "validation_wrmsse_per_level.csv")
    with tempfile.TemporaryDirectory() as folder:
        # The LightGBM flavour, for importance and SHAP; the registered version is the pyfunc that
        # forecasts with intervals, as the forecast partitions hold them.
        mlflow.lightgbm.save_model(
            model.booster, f"{folder}/booster", pip_requirements=[f"lightgbm=={version('lightgbm')}"]
        )
        run.log_folder(Path(folder) / "booster", registry.BOOSTER_MODEL)
        save_forecaster(Path(folder) / "model", model.booster, rule, calibration, example)
        run.log_folder(Path(folder) / "model", "model")
    return run.register("model", registry.MODEL_NAME)


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
            "model takes the champion alias unless the champion has a later cutoff."
        ),
    )
    def demand_model(
        context: dg.AssetExecutionContext, config: DemandModelConfig, m5_data: M5Data, mlflow_tracking: MlflowTracking
    ):
        cutoff = context.partition_time_window.start.date()
        params = config.training_params()
        window = Window(cutoff, params.train_days)
        model = train(m5_data.table(tables.FEATURES), cutoff, params, report=context.log.info)
        inputs = m5_data.feature_inputs()
        client = mlflow_tracking.client()
        served = served_by_earlier_models(client, m5_data.table(tables.FEATURES), cutoff)
        validated = validate(inputs, cutoff, model.validation, model.params.level_offset, served)
        scores = validated.scores
        calibration = calibrate_validated(inputs, validated)
        model_score, naive_score = scores.wrmsse(MODEL), scores.wrmsse("seasonal_naive")

        # Compared with the model that serves this cutoff now, so a month trained after a later
        # one (a history backfill) is judged against what its forecasts would use.
        serving = registry.newest_promoted(registry.promoted_versions(client), cutoff)
        serving_score = (
            _version_score(inputs, m5_data, window, registry.load_issuing_model(client, serving)) if serving else None
        )
        champion_now = registry.current_champion(client)
        decision = registry.gate(
            cutoff, model_score, naive_score, serving_score, champion_now.cutoff if champion_now else None
        )
        example = forecaster_input(
            m5_data.table(tables.FEATURES), window.validation_start, series=[str(model.validation["id"].iloc[0])]
        )
        with mlflow_tracking.run(f"demand_model {cutoff}") as run:
            model_version = _log_run(run, model, validated, calibration, window, example, decision, serving)
        if decision.champion:
            client.set_registered_model_alias(registry.MODEL_NAME, registry.CHAMPION, model_version)
        registry.record_version(
            client, model_version, cutoff=cutoff, decision=decision, issued_as=validated.rule.describe()
        )
        paths = m5_data.paths
        card = model_card(
            cutoff=cutoff,
            run_id=run.run_id,
            validation_start=window.validation_start,
            promoted=decision.promoted,
            decision=decision.reason,
            champion=decision.champion,
            serving_version=serving.version if serving else None,
            scores=scores.table,
            params=asdict(model.params),
            importance=model.importance(),
            issue_rule={
                "issued_as": validated.rule.describe(),
                "windows": [str(w.cutoff) for w in validated.windows],
                "chosen_because": validated.rule.chosen_because,
                "bands": validated.choice.replace(float("inf"), None).round(6).to_dict(orient="records"),
            },
        )
        store.write_partition(m5_data.storage, tables.MODEL_CARDS, model_version, card)

        table = scores.table.rename_axis("method").reset_index()
        yield dg.MaterializeResult(
            metadata={
                "cutoff": cutoff.isoformat(),
                "validation_window": f"{window.validation_start} .. {cutoff - dt.timedelta(days=1)}",
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
                "model_version": model_version,
                "promoted": decision.promoted,
                "promotion_decision": decision.reason,
                "champion": decision.champion,
                "serving_version": serving.version if serving else "none",
                "serving_wrmsse_same_window": serving_score if serving_score is not None else float("nan"),
                "mlflow_run_id": run.run_id,
                "mlflow_run": dg.MetadataValue.url(mlflow_tracking.run_url(run)),
                "mlflow_store": str(paths.mlflow),
                "model_card": dg.MetadataValue.path(str(tables.MODEL_CARDS.path(paths.warehouse, model_version))),
            }
        )
        yield recorded(
            m5_data,
            context,
            "demand_model",
            BEATS_SEASONAL_NAIVE,
            dg.AssetCheckResult(
                check_name=BEATS_SEASONAL_NAIVE,
                passed=bool(model_score < naive_score),
                description=f"cutoff {cutoff}: validation WRMSSE {model_score:.4f} vs seasonal naive {naive_score:.4f}",
                metadata={"model_wrmsse": model_score, "seasonal_naive_wrmsse": naive_score},
            ),
        )

    return demand_model
