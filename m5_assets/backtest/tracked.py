"""The backtest as a product run: every monthly model a nested MLflow run of one backtest run,
registered apart from production, and the scores table published to the warehouse.

``defs/backtest.py`` runs it from the UI or ``m5 backtest`` and shows the report; nothing here
needs Dagster.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import mlflow
import pandas as pd

from m5_assets.backtest import report
from m5_assets.backtest.origins import backtest_origins
from m5_assets.backtest.run import Backtest, BacktestModel, run_backtest, standard_peers
from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import CATALOG_VERSION
from m5_assets.model import registry
from m5_assets.model.forecaster import RULE_ARTIFACT
from m5_assets.model.tracking import TrackedRun, Tracker
from m5_assets.model.training import TrainingParams
from m5_assets.table_files import TableSource
from m5_assets.warehouse import Warehouse

EXPERIMENT = "m5-backtest"  # never the production experiment, and
MODEL_NAME = "m5-backtest"  # never the production model: no backtest version can become champion


@dataclass(frozen=True)
class TrackedBacktest:
    """A backtest run as recorded: its result, the tables it is judged by, and where it is."""

    result: Backtest
    origins: list[dt.date]
    methods: pd.DataFrame  # one row per method: WRMSSE, mean RMSSE, bias
    targets: pd.DataFrame  # one row per accuracy target: the figure, the bound, met or missed
    run_url: str
    path: Path  # the published scores table


def tracked_backtest(
    features: TableSource,
    inputs: FeatureInputs,
    weeks: int,
    params: TrainingParams,
    *,
    mlforecast_peer: bool,
    tracker: Tracker,
    storage: Warehouse,
    target: Path,
    report_progress: Callable[[str], None] = print,
) -> TrackedBacktest:
    """Replay ``weeks`` weeks before the last sales day under one MLflow run of ``tracker`` (whose
    experiment must be the backtest's), then publish the scores at ``target``."""
    origins = backtest_origins(inputs.dates[inputs.n_sales_days - 1].date(), weeks)
    report_progress(f"backtest over {len(origins)} origins, {origins[0]} .. {origins[-1]}")
    with tracker.run(f"backtest {origins[0]} .. {origins[-1]}") as parent:
        parent.set_tags(
            {"purpose": "backtest", "first_origin": origins[0].isoformat(), "last_origin": origins[-1].isoformat()}
        )
        result = run_backtest(
            features,
            inputs,
            origins,
            params,
            peers=standard_peers(inputs, mlforecast_peer, params.train_days),
            on_model=lambda model: _log_model(tracker, parent, model),
            report=report_progress,
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
    storage.write_with(target, lambda partial: result.scores.to_parquet(partial, index=False))
    return TrackedBacktest(
        result, origins, methods, report.target_table(result.scores), tracker.run_url(parent), target
    )


def _log_model(tracking: Tracker, parent: TrackedRun, model: BacktestModel) -> str:
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
