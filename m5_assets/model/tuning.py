"""An optional search over the main LightGBM parameters, scored on the validation window.

Each trial trains with early stopping on the 28 days before the cutoff (no refit) and is scored
by the WRMSSE of the forecast it would issue there (model and demand level blended as
``evaluation.validate`` chooses). The first trial is always the parameters the search starts
from, so every result reads against them. The search starts no trial once its time budget is
spent; the trial under way finishes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import optuna
import pandas as pd

from m5_assets.features.build import FeatureInputs
from m5_assets.model.evaluation import MODEL, PURE_MODEL
from m5_assets.model.selection import validate
from m5_assets.model.tracking import Tracker
from m5_assets.model.training import TrainingParams, train
from m5_assets.table_files import TableSource

# name -> (low, high, log scale, integer)
SEARCH_SPACE: dict[str, tuple[float, float, bool, bool]] = {
    "learning_rate": (0.02, 0.3, True, False),
    "num_leaves": (15, 255, True, True),
    "min_data_in_leaf": (20, 1000, True, True),
    "feature_fraction": (0.5, 1.0, False, False),
    "bagging_fraction": (0.5, 1.0, False, False),
    "lambda_l2": (1e-3, 10.0, True, False),
    "tweedie_variance_power": (1.05, 1.5, False, False),
}


@dataclass(frozen=True)
class TrialResult:
    number: int
    params: dict  # the searched parameters only
    wrmsse: float  # of the forecast the trial's model would issue
    model_wrmsse: float  # of the model alone
    issued_as: str
    best_iteration: int
    seconds: float


def _suggest(trial: optuna.Trial) -> dict:
    values: dict[str, float] = {}
    for name, (low, high, log, integer) in SEARCH_SPACE.items():
        if integer:
            values[name] = trial.suggest_int(name, int(low), int(high), log=log)
        else:
            values[name] = trial.suggest_float(name, low, high, log=log)
    return values


def tune(
    features: TableSource,
    inputs: FeatureInputs,
    cutoff: dt.date,
    start: TrainingParams,
    budget_seconds: float,
    max_trials: int,
    on_trial: Callable[[TrialResult], None] = lambda result: None,
) -> tuple[TrainingParams, pd.DataFrame]:
    """The best parameters found (``start`` with the searched ones replaced) and every trial."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=start.seed))
    study.enqueue_trial({name: getattr(start, name) for name in SEARCH_SPACE})
    results: list[TrialResult] = []

    def objective(trial: optuna.Trial) -> float:
        began = time.perf_counter()
        searched = _suggest(trial)
        model = train(features, cutoff, dataclasses.replace(start, **searched), refit=False)
        validated = validate(inputs, cutoff, model.validation, model.params.level_offset)
        result = TrialResult(
            number=trial.number,
            params=searched,
            wrmsse=validated.scores.wrmsse(MODEL),
            model_wrmsse=validated.scores.wrmsse(PURE_MODEL),
            issued_as=validated.rule.describe(),
            best_iteration=model.best_iteration,
            seconds=time.perf_counter() - began,
        )
        results.append(result)
        on_trial(result)
        return result.wrmsse

    study.optimize(objective, n_trials=max_trials, timeout=budget_seconds)
    best = min(results, key=lambda r: r.wrmsse)
    table = pd.DataFrame(
        [
            {
                "trial": r.number,
                "wrmsse": r.wrmsse,
                "model_wrmsse": r.model_wrmsse,
                "issued_as": r.issued_as,
                "best_iteration": r.best_iteration,
                "seconds": round(r.seconds, 1),
                **r.params,
            }
            for r in results
        ]
    )
    return dataclasses.replace(start, **best.params), table


@dataclass(frozen=True)
class TrackedTuning:
    """A search as recorded: the best settings, every trial, and its MLflow run."""

    best: TrainingParams
    trials: pd.DataFrame
    run_id: str
    run_url: str

    @property
    def start_score(self) -> float:
        return float(self.trials["wrmsse"].iloc[0])

    @property
    def best_score(self) -> float:
        return float(self.trials["wrmsse"].min())


def tracked_tuning(
    features: TableSource,
    inputs: FeatureInputs,
    cutoff: dt.date,
    start: TrainingParams,
    budget_seconds: float,
    max_trials: int,
    *,
    tracker: Tracker,
    report: Callable[[str], None] = print,
) -> TrackedTuning:
    """``tune`` under one MLflow run of ``tracker``, each trial a nested run."""
    with tracker.run(f"model_tuning {cutoff}") as run:
        run.set_tags({"cutoff": cutoff.isoformat(), "purpose": "tuning"})

        def log_trial(result: TrialResult) -> None:
            with tracker.run(f"trial {result.number}", parent=run) as trial:
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
            report(f"trial {result.number}: WRMSSE {result.wrmsse:.4f} in {result.seconds:.0f} s, {result.params}")

        best, trials = tune(features, inputs, cutoff, start, budget_seconds, max_trials, log_trial)
        done = TrackedTuning(best, trials, run.run_id, tracker.run_url(run))
        run.log_params({f"best_{k}": getattr(best, k) for k in SEARCH_SPACE})
        run.log_metrics({"best_wrmsse": done.best_score, "default_wrmsse": done.start_score, "trials": len(trials)})
        run.log_text(trials.to_csv(index=False), "trials.csv")
    return done
