"""Training one monthly model, start to end: train, validate and choose the issue rule, calibrate the
intervals, judge it at the promotion gate, record it in MLflow, register it and write its card.

``defs/model.py`` runs this for a partition and shows the report in the UI; nothing here needs
Dagster.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Protocol

import lightgbm as lgb
import mlflow
import pandas as pd
from mlflow.tracking import MlflowClient

from m5_assets import tables
from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import CATALOG_VERSION
from m5_assets.intervals import Calibration
from m5_assets.model import prediction, registry
from m5_assets.model.card import model_card
from m5_assets.model.evaluation import MODEL, score_validation
from m5_assets.model.forecaster import RULE_ARTIFACT, IssueRule, IssuingModel, Partners, row_levels
from m5_assets.model.matrix import read_rows
from m5_assets.model.selection import (
    Validated,
    ValidationForecast,
    calibrate_validated,
    served_forecast,
    served_windows,
    validate,
)
from m5_assets.model.tracking import TrackedRun, Tracker
from m5_assets.model.training import TrainedModel, TrainingParams, Window, train
from m5_assets.table_files import TableFiles, TableSource
from m5_assets.warehouse import Warehouse


class Packaging(Protocol):
    """How the registered model is saved: the forecasting pyfunc (``forecast.pyfunc``), which
    issues as the forecast partitions do. Passed in, so the model layer never imports forecasting."""

    def example(self, features: TableSource, day: dt.date, series: list[str]) -> pd.DataFrame: ...

    def save(
        self, path: Path, booster: lgb.Booster, rule: IssueRule, calibration: Calibration, example: pd.DataFrame
    ) -> None: ...


@dataclass(frozen=True)
class TrainingReport:
    """What training one cutoff's model did and decided."""

    cutoff: dt.date
    window: Window
    model: TrainedModel
    validated: Validated
    decision: registry.Decision
    serving: registry.PromotedVersion | None  # the promoted model serving the cutoff before this one
    serving_score: float | None  # its WRMSSE on the same validation window
    model_version: str
    run_id: str
    run_url: str
    card_path: Path

    @property
    def model_score(self) -> float:
        return self.validated.scores.wrmsse(MODEL)

    @property
    def naive_score(self) -> float:
        return self.validated.scores.wrmsse("seasonal_naive")


def train_demand_model(
    features: TableSource,
    inputs: FeatureInputs,
    cutoff: dt.date,
    params: TrainingParams,
    *,
    tracker: Tracker,
    packaging: Packaging,
    storage: Warehouse,
    report: Callable[[str], None] = print,
) -> TrainingReport:
    """Train, validate, gate, record, register and card the model of ``cutoff``.

    The MLflow run is opened first, so its duration is the training's and a training that fails
    is recorded as a FAILED run."""
    window = Window(cutoff, params.train_days)
    with tracker.run(f"demand_model {cutoff}") as run:
        files = TableFiles.of(features)
        run.log_training_data(tables.FEATURES.name, files.location, files.digest())
        model = train(features, cutoff, params, report=report)
        client = tracker.client()
        served = served_by_earlier_models(client, features, cutoff)
        validated = validate(inputs, cutoff, model.validation, model.params.level_offset, served)
        calibration = calibrate_validated(inputs, validated)
        # Compared with the model that serves this cutoff now, so a month trained after a later
        # one (a history backfill) is judged against what its forecasts would use.
        serving = registry.newest_promoted(registry.promoted_versions(client), cutoff)
        serving_score = (
            _version_score(features, inputs, window, registry.load_issuing_model(client, serving)) if serving else None
        )
        champion_now = registry.current_champion(client)
        scores = validated.scores
        decision = registry.gate(
            cutoff,
            scores.wrmsse(MODEL),
            scores.wrmsse("seasonal_naive"),
            serving_score,
            champion_now.cutoff if champion_now else None,
        )
        example = packaging.example(features, window.validation_start, [str(model.validation["id"].iloc[0])])
        logged = _LoggedRun(model, validated, calibration, window, decision, serving)
        model_version = logged.log(run, packaging, example)
    if decision.champion:
        client.set_registered_model_alias(registry.MODEL_NAME, registry.CHAMPION, model_version)
    registry.record_version(
        client, model_version, cutoff=cutoff, decision=decision, issued_as=validated.rule.describe()
    )
    card = _card(model, validated, window, decision, serving, run.run_id)
    card_path = tables.MODEL_CARDS.write_partition(storage, model_version, card)
    return TrainingReport(
        cutoff=cutoff,
        window=window,
        model=model,
        validated=validated,
        decision=decision,
        serving=serving,
        serving_score=serving_score,
        model_version=model_version,
        run_id=run.run_id,
        run_url=tracker.run_url(run),
        card_path=card_path,
    )


def served_by_earlier_models(client: MlflowClient, features: TableSource, cutoff: dt.date) -> list[ValidationForecast]:
    """The windows ``cutoff``'s issue rule is chosen on, as the registered models of the months
    before forecast them (the newest version of each month, its units formed as a new model's
    are; a month without one is left out)."""
    newest = {v.cutoff: v for v in registry.registered_versions(client)}
    out = []
    for model_cutoff, window_cutoff in served_windows(cutoff):
        found = newest.get(model_cutoff)
        if found is not None:
            rule = registry.load_issue_rule(client, found.run_id)
            out.append(served_forecast(features, registry.load_booster(client, found), rule.relative, window_cutoff))
    return out


def _version_score(features: TableSource, inputs: FeatureInputs, window: Window, serving: IssuingModel) -> float:
    """A registered version's WRMSSE on this partition's validation window, issued as it issues."""
    rows = read_rows(features, window.validation_start, window.cutoff, vocabulary=serving.booster.pandas_categorical)
    partners = Partners.at_origin(rows.keys, rows.matrix, window.validation_start)
    predicted = prediction.predict(serving.booster, rows.matrix)
    predictions = rows.keys.assign(prediction=serving.rule.units(predicted, row_levels(rows.matrix), partners))
    return score_validation(inputs, window.cutoff, predictions).wrmsse(MODEL)


@dataclass(frozen=True)
class _LoggedRun:
    model: TrainedModel
    validated: Validated
    calibration: Calibration
    window: Window
    decision: registry.Decision
    serving: registry.PromotedVersion | None

    def log(self, run: TrackedRun, packaging: Packaging, example: pd.DataFrame) -> str:
        """Everything the run records, the booster and the pyfunc; returns the registered version."""
        run.set_tags(self._tags())
        # The catalog version says which definitions of the features the booster learned on.
        run.log_params(
            asdict(self.model.params)
            | {
                "train_start": self.window.train_start.isoformat(),
                "cutoff": self.window.cutoff.isoformat(),
                "feature_catalog_version": CATALOG_VERSION,
            }
        )
        run.log_metrics(self._metrics())
        validated = self.validated
        run.log_text(validated.rule.to_json(), RULE_ARTIFACT)
        run.log_text(self.calibration.to_json(), registry.INTERVALS_ARTIFACT)
        run.log_text(validated.choice.to_csv(index=False), "issue_rule_by_band.csv")
        run.log_text(self.model.importance().to_csv(index=False), registry.IMPORTANCE_ARTIFACT)
        run.log_text(validated.scores.per_level.to_csv(), "validation_wrmsse_per_level.csv")
        with tempfile.TemporaryDirectory() as folder:
            # The LightGBM flavour, for importance and SHAP; the registered version is the pyfunc
            # that forecasts with intervals, as the forecast partitions hold them.
            mlflow.lightgbm.save_model(
                self.model.booster, f"{folder}/booster", pip_requirements=[f"lightgbm=={version('lightgbm')}"]
            )
            run.log_folder(Path(folder) / "booster", registry.BOOSTER_MODEL)
            packaging.save(Path(folder) / "model", self.model.booster, validated.rule, self.calibration, example)
            run.log_folder(Path(folder) / "model", registry.PYFUNC_MODEL)
        return run.register(registry.PYFUNC_MODEL, registry.MODEL_NAME, registry.MODEL_DESCRIPTION, registry.MODEL_TAGS)

    def _tags(self) -> dict[str, str]:
        rule, decision = self.validated.rule, self.decision
        return {
            "cutoff": self.window.cutoff.isoformat(),
            "validation_start": self.window.validation_start.isoformat(),
            "issued_as": rule.describe(),
            "issue_rule_chosen_because": rule.chosen_because,
            "promoted": str(decision.promoted),
            "decision": decision.reason,
            "champion": str(decision.champion),
            "serving_version": self.serving.version if self.serving else "",
            "serving_wrmsse_same_window": str(decision.serving_wrmsse),
        }

    def _metrics(self) -> dict[str, float]:
        model, validated = self.model, self.validated
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
        return metrics


def _card(
    model: TrainedModel,
    validated: Validated,
    window: Window,
    decision: registry.Decision,
    serving: registry.PromotedVersion | None,
    run_id: str,
) -> pd.DataFrame:
    return model_card(
        cutoff=window.cutoff,
        run_id=run_id,
        validation_start=window.validation_start,
        promoted=decision.promoted,
        decision=decision.reason,
        champion=decision.champion,
        serving_version=serving.version if serving else None,
        serving_wrmsse=decision.serving_wrmsse,
        scores=validated.scores.table,
        params=asdict(model.params),
        importance=model.importance(),
        issue_rule={
            "issued_as": validated.rule.describe(),
            "windows": [str(w.cutoff) for w in validated.windows],
            "chosen_because": validated.rule.chosen_because,
            "bands": validated.choice.replace(float("inf"), None).round(6).to_dict(orient="records"),
        },
    )
