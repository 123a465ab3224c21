"""A rolling-origin backtest of the product on the data it is given.

For each monthly cutoff the origins need, the model is trained, validated and calibrated exactly
as the ``demand_model`` asset does it (``training.train``, ``selection.validate``,
``selection.calibrate_validated``); each origin's forecast is then issued through
``forecast.issue.issue_bottom``, the function forecast partitions are issued with. Beside it,
on the same origins and scored by the same code (``scoring.score_origin``): simple baselines,
statsforecast's intermittent-demand methods and exponential smoothing, and an mlforecast peer
with a pinned configuration, fitted on the same monthly cutoffs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import duckdb
import lightgbm as lgb
import numpy as np
import pandas as pd

from m5_assets.backtest.origins import by_cutoff
from m5_assets.backtest.report import MEAN_28, MLFORECAST
from m5_assets.backtest.scoring import score_origin
from m5_assets.features.build import FeatureInputs
from m5_assets.features.catalog import HORIZON
from m5_assets.forecast.issue import issue_bottom, read_forecast_rows
from m5_assets.forecast.plausibility import MULTIPLE, band, history_highs
from m5_assets.intervals import Calibration
from m5_assets.model import prediction
from m5_assets.model.baselines import moving_average
from m5_assets.model.evaluation import MODEL, calibrate_pooled, forecast_matrix, validation_window, window_origin
from m5_assets.model.forecaster import IssuingModel
from m5_assets.model.selection import (
    WINDOWS,
    Validated,
    calibrate_validated,
    months_before,
    served_forecast,
    served_windows,
    validate,
)
from m5_assets.model.training import TrainedModel, TrainingParams, train
from m5_assets.table_files import TableSource

progress_log = logging.getLogger("m5_assets.progress")


@dataclass(frozen=True)
class BacktestModel:
    """One monthly model of the backtest and what validation decided about it."""

    cutoff: dt.date
    trained: TrainedModel
    validated: Validated
    calibration: Calibration
    warm_up: bool = False  # trained only for the windows later models' rules are chosen on; issues no date


# Called with each model once it is validated (the asset logs it to MLflow); returns its version.
OnModel = Callable[[BacktestModel], str]


class FittedPeer(Protocol):
    """A peer fitted once per monthly cutoff, as the product's model is."""

    def fit(self, cutoff: dt.date) -> None: ...

    def predict(self, origin: dt.date) -> np.ndarray: ...  # series x 28 days, rows in inputs.series' order


@dataclass(frozen=True)
class Peers:
    """The methods scored beside the issued forecast."""

    # (history before the origin: series x days, its dates) -> method -> series x 28 forecasts
    at_origin: Callable[[np.ndarray, pd.DatetimeIndex], dict[str, np.ndarray]]
    fitted: dict[str, FittedPeer] = field(default_factory=dict)
    configuration: str = ""  # printed under the table, so a peer cannot be quietly weakened


class _MlforecastOnInputs:
    """The mlforecast peer on the feature inputs' sales."""

    def __init__(self, inputs: FeatureInputs, train_days: int) -> None:
        from m5_assets.backtest.peers import MlforecastPeer

        days = inputs.n_sales_days
        self.ids = inputs.series["id"].astype(str).to_numpy()
        self.long = pd.DataFrame(
            {
                "unique_id": np.repeat(self.ids, days),
                "ds": np.tile(inputs.dates[:days].to_numpy(), len(self.ids)),
                "y": inputs.units[:, :days].astype(np.float64).ravel(),
            }
        )
        self.peer = MlforecastPeer(train_days)

    def fit(self, cutoff: dt.date) -> None:
        self.peer.fit(self.long, cutoff)

    def predict(self, origin: dt.date) -> np.ndarray:
        return self.peer.predict(self.long, origin, HORIZON, self.ids)


def standard_peers(inputs: FeatureInputs, mlforecast: bool, train_days: int) -> Peers:
    """Simple baselines, statsforecast's methods and (unless left out) the mlforecast peer, which
    trains on the ``train_days`` before each cutoff, as the product's models do."""
    from m5_assets.backtest.peers import simple_forecasts, statistical_forecasts

    stores = inputs.series["store_id"].astype(str).to_numpy()

    def at_origin(history: np.ndarray, dates: pd.DatetimeIndex) -> dict[str, np.ndarray]:
        return simple_forecasts(history, dates, stores, HORIZON) | statistical_forecasts(history, HORIZON)

    if not mlforecast:
        return Peers(at_origin, {}, "mlforecast: left out")
    peer = _MlforecastOnInputs(inputs, train_days)
    return Peers(at_origin, {MLFORECAST: peer}, f"mlforecast: {peer.peer.config}")


@dataclass(frozen=True)
class Backtest:
    scores: pd.DataFrame  # one row per origin and method (scoring.score_origin), with model_version
    models: pd.DataFrame  # one row per monthly model: cutoff, version, issued_as, validation scores, seconds
    peer_configuration: str = ""


def mean_28_calibration(inputs: FeatureInputs, cutoffs: list[dt.date]) -> Calibration:
    """Conformal intervals of the 28-day mean from its errors on the validation windows the
    model's intervals were calibrated on (``cutoffs``), pooled the same way: the width the
    model's intervals must not exceed."""
    return calibrate_pooled(inputs, {c: moving_average(validation_window(inputs, c)[0], HORIZON) for c in cutoffs})


def fit_model(
    features: TableSource,
    inputs: FeatureInputs,
    cutoff: dt.date,
    params: TrainingParams,
    boosters: dict[dt.date, lgb.Booster],
) -> BacktestModel:
    """The monthly model of ``cutoff``, as the demand_model asset trains and validates it, its
    rule chosen on what the ``boosters`` of the months before (by cutoff) served."""
    served = [
        served_forecast(features, boosters[m], params.level_offset, w)
        for m, w in served_windows(cutoff)
        if m in boosters
    ]
    trained = train(features, cutoff, params)
    validated = validate(inputs, cutoff, trained.validation, params.level_offset, served)
    return BacktestModel(cutoff, trained, validated, calibrate_validated(inputs, validated))


def issued_forecasts(
    features: TableSource, inputs: FeatureInputs, model: IssuingModel, origins: list[dt.date]
) -> dict[dt.date, tuple[np.ndarray, dict[str, np.ndarray]]]:
    """The product's forecast of each origin (series x 28 days) and its interval bounds (series x
    28 per bound column), issued by ``model``."""
    rows = read_forecast_rows(features, origins[0], origins[-1], model)
    predictions = prediction.predict(model.booster, rows.matrix)
    out = {}
    for origin in origins:
        bottom = issue_bottom(features, origin, model, rows, predictions)
        bounds = {c: _column_matrix(inputs, bottom, origin, c) for c in bottom.columns if c.startswith(("lo_", "hi_"))}
        out[origin] = (_column_matrix(inputs, bottom, origin, "forecast"), bounds)
    return out


def _column_matrix(inputs: FeatureInputs, bottom: pd.DataFrame, origin: dt.date, column: str) -> np.ndarray:
    """One column of an origin's bottom-level rows as a (series x horizon day) matrix."""
    return forecast_matrix(inputs, bottom[["id", "date"]].assign(prediction=bottom[column].to_numpy()), origin, HORIZON)


def band_figures(inputs: FeatureInputs, forecast: np.ndarray, highs: pd.DataFrame) -> dict[str, float]:
    """How far the issued forecast (series x 28) goes past each series' own history: the series
    the forecasts_within_history check would name (highests floored at 1 unit a day), the series
    above twice their highest 28-day mean or day without that floor, and the largest ratios."""
    ids = inputs.series["id"].astype(str).to_numpy()
    judged = band(pd.DataFrame({"id": np.repeat(ids, HORIZON), "forecast": forecast.ravel()}), highs).set_index("id")
    month = judged["forecast_28d_mean"] / judged["highest_28d_mean"].where(judged["highest_28d_mean"] > 0)
    day = judged["forecast_max_day"] / judged["highest_day"].where(judged["highest_day"] > 0)
    return {
        "beyond_band_series": int(judged["beyond"].sum()),
        "beyond_twice_highest_series": int(((month > MULTIPLE) | (day > MULTIPLE)).sum()),
        "highest_month_ratio": float(month.max()),
        "highest_day_ratio": float(day.max()),
    }


def run_backtest(
    features: TableSource,
    inputs: FeatureInputs,
    origins: list[dt.date],
    params: TrainingParams,
    peers: Peers | None = None,
    on_model: OnModel | None = None,
    report: Callable[[str], None] | None = None,
) -> Backtest:
    """Train the monthly models ``origins`` need, issue and score every origin beside the peers."""

    def say(message: str) -> None:
        progress_log.info(f"backtest: {message}")
        if report:
            report(message)

    rows, models = [], []
    months = by_cutoff(origins)
    highs = history_highs(duckdb.connect(), features, origins)
    # The first months' rules are chosen on as many windows as the later ones': the models of the
    # months before are trained for the windows they serve, as the product would have them, and
    # logged like the others so that every model behind a figure can be looked up.
    boosters: dict[dt.date, lgb.Booster] = {}
    for cutoff in months_before(min(months), WINDOWS):
        warm_up = dataclasses.replace(fit_model(features, inputs, cutoff, params, boosters), warm_up=True)
        boosters[cutoff] = warm_up.trained.booster
        if on_model:
            on_model(warm_up)
        say(f"model of cutoff {cutoff} trained for the windows it serves")
    for n, (cutoff, month_origins) in enumerate(months.items(), start=1):
        started = time.perf_counter()
        fitted = fit_model(features, inputs, cutoff, params, boosters)
        boosters[cutoff] = fitted.trained.booster
        version = on_model(fitted) if on_model else f"backtest-{cutoff}"
        issuing = IssuingModel(fitted.trained.booster, fitted.calibration, version, "", cutoff, fitted.validated.rule)
        issued = issued_forecasts(features, inputs, issuing, month_origins)
        for peer in peers.fitted.values() if peers else ():
            peer.fit(cutoff)
        intervals = {
            MODEL: fitted.calibration,
            MEAN_28: mean_28_calibration(inputs, [w.cutoff for w in fitted.validated.windows]),
        }
        for origin in month_origins:
            column = window_origin(inputs, origin + dt.timedelta(days=HORIZON))
            history = inputs.units[:, :column].astype(np.float64)
            forecast, bounds = issued[origin]
            forecasts = {MODEL: forecast, MEAN_28: moving_average(history, HORIZON)}
            if peers:
                forecasts |= peers.at_origin(history, inputs.dates[:column])
                forecasts |= {name: peer.predict(origin) for name, peer in peers.fitted.items()}
            plausible = band_figures(inputs, forecast, highs[origin])
            for row in score_origin(inputs, origin, forecasts, intervals, {MODEL: bounds}):
                rows.append(
                    row | {"model_version": version, "cutoff": cutoff} | (plausible if row["method"] == MODEL else {})
                )
        scores = fitted.validated.scores
        models.append(
            {
                "cutoff": cutoff,
                "model_version": version,
                "issued_as": fitted.validated.rule.describe(),
                "best_iteration": fitted.trained.best_iteration,
                "validation_wrmsse": scores.wrmsse(MODEL),
                "validation_seasonal_naive_wrmsse": scores.wrmsse("seasonal_naive"),
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        say(
            f"model {n} of {len(months)} (cutoff {cutoff}, issued as {models[-1]['issued_as']}): "
            f"{len(month_origins)} origins scored in {models[-1]['seconds']:.0f} s"
        )
    return Backtest(pd.DataFrame(rows), pd.DataFrame(models), peers.configuration if peers else "")
