"""The peers the backtest scores beside the product's model, on the same origins.

Simple forecasts (the product's own baselines plus a store weekday profile), Nixtla statsforecast's
methods (``statistical``) and Nixtla mlforecast with LightGBM at a pinned configuration. Every peer
sees only history dated before its origin; the matrices are series x days, rows in the caller's order.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, TypedDict

import numpy as np
import pandas as pd

from m5_assets.backtest.statistical import statistical_forecasts
from m5_assets.model.baselines import exponential_smoothing, moving_average, seasonal_naive
from m5_assets.model.training import TrainingParams

if TYPE_CHECKING:  # mlforecast is imported when a peer fits (``fit``), not with this module
    from mlforecast import MLForecast

__all__ = ["MlforecastPeer", "simple_forecasts", "statistical_forecasts", "store_weekday_profile"]

PROFILE_WEEKS = 8


def store_weekday_profile(
    history: np.ndarray, dates: pd.DatetimeIndex, stores: np.ndarray, weeks: int = PROFILE_WEEKS
) -> np.ndarray:
    """Per series, its store's weekday factors (7 columns, Monday first, mean 1) over the last
    ``weeks`` weeks of the store's total sales; a store that sold nothing gets a flat profile."""
    days = min(7 * weeks, history.shape[1])
    window, weekdays = history[:, -days:], dates[-days:].dayofweek.to_numpy()
    store_ids, store_of_row = np.unique(stores, return_inverse=True)
    factors = np.ones((store_ids.size, 7))
    for index in range(store_ids.size):
        totals = window[store_of_row == index].sum(axis=0)
        per_weekday = np.bincount(weekdays, weights=totals, minlength=7) / np.maximum(
            np.bincount(weekdays, minlength=7), 1
        )
        if per_weekday.mean() > 0:
            factors[index] = per_weekday / per_weekday.mean()
    return factors[store_of_row]


def simple_forecasts(
    history: np.ndarray, dates: pd.DatetimeIndex, stores: np.ndarray, horizon: int
) -> dict[str, np.ndarray]:
    """seasonal_naive, moving_average_28, weekday_profile (28-day mean x each STORE's weekday
    profile over the last 8 weeks), exponential_smoothing."""
    dates = pd.DatetimeIndex(dates)
    if len(dates) != history.shape[1] or len(stores) != history.shape[0]:
        raise ValueError(f"history is {history.shape}, with {len(dates)} dates and {len(stores)} stores")
    if len(dates) > 1 and (dates[-1] - dates[0]).days != len(dates) - 1:
        raise ValueError("history's dates must be consecutive days")
    level = moving_average(history, horizon)
    future_weekdays = (dates[-1] + pd.to_timedelta(np.arange(1, horizon + 1), unit="D")).dayofweek.to_numpy()
    profile = store_weekday_profile(history, dates, np.asarray(stores))
    return {
        "seasonal_naive": seasonal_naive(history, horizon),
        "moving_average_28": level,
        "weekday_profile": level * profile[:, future_weekdays],
        "exponential_smoothing": exponential_smoothing(history, horizon),
    }


def released(long: pd.DataFrame) -> pd.DataFrame:
    """The long rows from each series' first sale on (M5's leading zeros are "not on the shelf yet")."""
    ordered = long.sort_values(["unique_id", "ds"], kind="stable")
    on_shelf = (ordered["y"] > 0).groupby(ordered["unique_id"], sort=False).cummax()
    return ordered[on_shelf.to_numpy()]


class _LightgbmArgs(TypedDict):
    objective: str
    n_estimators: int
    learning_rate: float
    verbosity: int
    random_state: int
    n_jobs: int


class MlforecastPeer:
    """Nixtla mlforecast + LightGBM with a pinned configuration, so the peer cannot be weakened.

    - The rolling means are taken over lag 1 rather than lag 7: the prediction is recursive, so
      each step's means fold in the steps predicted before it, and the first days see yesterday's
      sales rather than last week's. On real_280 (the first origin of every other month,
      2015-04 .. 2016-04) lag 1 scored a mean RMSSE of 0.758 against lag 7's 0.778.
    - No static features: the lags and rolling means carry each series' level, which is what the
      configuration is meant to show; the model is global, so it also forecasts a series first sold
      after the cutoff from the history it has at the origin.
    - Training rows: the days before the cutoff in the product model's window (``train_days``:
      the backtest passes its models' ``TrainingParams.train_days``), from each series' first sale; ``dropna`` then drops each
      series' first 28 days, before lag 28 exists. The peer follows that window if it changes
      (on real_280 it scores WRMSSE 0.771 with 730 days and 0.768 with 1095).
    """

    LAGS = (7, 14, 28)
    ROLLING_LAG, ROLLING_WINDOWS = 1, (7, 28)
    DATE_FEATURES = ("dayofweek", "month")
    SEED = 0
    LIGHTGBM: ClassVar[_LightgbmArgs] = {
        "objective": "tweedie",
        "n_estimators": 300,
        "learning_rate": 0.05,
        "verbosity": -1,
        "random_state": SEED,
        "n_jobs": 2,
    }
    # Predict needs the last 29 days (the 28-day mean of lag 1); a few weeks more costs nothing.
    PREDICT_DAYS = 56

    def __init__(self, train_days: int = TrainingParams.train_days) -> None:
        self._forecaster: MLForecast | None = None
        self.train_days = train_days

    @property
    def config(self) -> str:
        """The pinned configuration, as printed under the backtest's table."""
        return (
            "mlforecast 1.1 + LightGBM: tweedie, 300 rounds at learning rate 0.05, lags 7/14/28, rolling means 7/28 of lag 1, "
            f"dayofweek + month, recursive; no static features; {self.train_days} days before each monthly cutoff from each "
            "series' first sale; other LightGBM parameters default, seed 0, 2 threads"
        )

    def fit(self, long: pd.DataFrame, cutoff: dt.date) -> MlforecastPeer:
        """Train on the rows dated before ``cutoff``."""
        import lightgbm as lgb
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean

        cutoff = pd.Timestamp(cutoff)
        frame = released(long.loc[long["ds"] < cutoff, ["unique_id", "ds", "y"]])
        frame = frame[frame["ds"] >= cutoff - pd.Timedelta(days=self.train_days)]
        forecaster = MLForecast(
            models={"lgbm": lgb.LGBMRegressor(**self.LIGHTGBM)},
            freq="D",
            lags=list(self.LAGS),
            lag_transforms={self.ROLLING_LAG: [RollingMean(window_size=w) for w in self.ROLLING_WINDOWS]},
            date_features=list(self.DATE_FEATURES),
            num_threads=1,
        )
        with warnings.catch_warnings():
            # A series on the shelf for under 29 days before the cutoff gives no training row;
            # predict still forecasts it from its history at the origin.
            warnings.filterwarnings(
                "ignore", message="The following series were dropped completely", category=UserWarning
            )
            # static_features=[]: mlforecast would otherwise take every other column as static.
            forecaster.fit(frame, static_features=[], dropna=True)
        self._forecaster = forecaster
        return self

    def predict(self, long: pd.DataFrame, origin: dt.date, horizon: int, ids: Sequence[str]) -> np.ndarray:
        """``len(ids)`` x ``horizon`` forecasts for ``origin`` on, from the rows dated before it;
        a series with no sale before ``origin`` (or not in ``long``) gets 0."""
        if self._forecaster is None:
            raise RuntimeError("fit the peer before predicting")
        start = pd.Timestamp(origin)
        forecasts = np.zeros((len(ids), horizon))
        history = released(long.loc[long["ds"] < start, ["unique_id", "ds", "y"]])
        history = history[history["ds"] >= start - pd.Timedelta(days=self.PREDICT_DAYS)]
        if history.empty:
            return forecasts
        last = history.groupby("unique_id")["ds"].max()
        if (last != start - pd.Timedelta(days=1)).any():
            stale = list(last.index[last != start - pd.Timedelta(days=1)][:3])
            raise ValueError(f"series {stale} have no row for the day before {start.date()}")
        with warnings.catch_warnings():
            # A series on the shelf for less than 28 days has no lag 28 yet: LightGBM takes the
            # missing value as such, and mlforecast would warn at every step.
            warnings.filterwarnings("ignore", message="Found null values in", category=UserWarning)
            predicted = self._forecaster.predict(h=horizon, new_df=history)
        table = predicted.pivot(index="unique_id", columns="ds", values="lgbm")
        table = table.reindex(index=pd.Index(ids), columns=pd.date_range(start, periods=horizon, freq="D"))
        return np.clip(table.fillna(0.0).to_numpy(np.float64), 0.0, None)
