"""LightGBM on the feature store: fit before a cutoff, validate on the 28 days before it, refit.

The validation window is the last ``HORIZON`` days before the cutoff. Its rows' features use
no sale on or after the window's first day (every units feature is lagged at least 28 days), so
scoring the model there is the same as scoring a forecast issued on that day. Early stopping
finds the number of rounds on that window; the model is then refit on every day before the
cutoff with that many rounds.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq

from m5_assets.features.catalog import FEATURE_NAMES, HORIZON, LABEL_COLUMN


@dataclass(frozen=True)
class TrainingParams:
    """What a user may change; defaults follow what won M5 (tweedie, categorical ids)."""

    learning_rate: float = 0.05
    num_leaves: int = 63
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 0.1
    tweedie_variance_power: float = 1.1
    max_rounds: int = 1500
    early_stopping_rounds: int = 50
    train_days: int = 730
    seed: int = 42

    def lightgbm(self) -> dict:
        return {
            "objective": "tweedie",
            "tweedie_variance_power": self.tweedie_variance_power,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            # Same data and seed give the same model.
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": 2,
            "verbose": -1,
        }


@dataclass(frozen=True)
class Window:
    """Training runs from ``train_start`` to the day before ``cutoff``; validation is its last 28 days."""

    cutoff: dt.date
    train_days: int

    @property
    def validation_start(self) -> dt.date:
        return self.cutoff - dt.timedelta(days=HORIZON)

    @property
    def train_start(self) -> dt.date:
        return self.cutoff - dt.timedelta(days=self.train_days)


@dataclass
class TrainedModel:
    booster: lgb.Booster
    best_iteration: int
    validation: pd.DataFrame  # id, date, units, prediction: released rows of the validation window
    train_rows: int
    validation_rows: int
    seconds: float
    params: TrainingParams

    def importance(self) -> pd.DataFrame:
        """Gain and split importance per feature, largest gain first."""
        return (
            pd.DataFrame(
                {
                    "feature": self.booster.feature_name(),
                    "gain": self.booster.feature_importance("gain"),
                    "splits": self.booster.feature_importance("split"),
                }
            )
            .sort_values("gain", ascending=False)
            .reset_index(drop=True)
        )


def load_rows(features: Path, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Released rows with a label dated in [start, end): the rows a model learns from."""
    table = pq.read_table(
        features,
        columns=["id", "date", LABEL_COLUMN, *FEATURE_NAMES],
        filters=(pc.field("date") >= start) & (pc.field("date") < end)
        & pc.field(LABEL_COLUMN).is_valid() & pc.field("sell_price").is_valid(),
    )
    return table.to_pandas()


def train(features: Path, cutoff: dt.date, params: TrainingParams) -> TrainedModel:
    """Fit with early stopping on the validation window, then refit on all days before ``cutoff``."""
    started = time.perf_counter()
    window = Window(cutoff, params.train_days)
    rows = load_rows(features, window.train_start, cutoff)
    if rows.empty or pd.Timestamp(rows["date"].max()) < pd.Timestamp(cutoff - dt.timedelta(days=1)):
        last = rows["date"].max() if not rows.empty else "none"
        raise ValueError(f"{features}: no sales for the day before cutoff {cutoff} (last labelled day: {last})")
    is_validation = (pd.to_datetime(rows["date"]) >= pd.Timestamp(window.validation_start)).to_numpy()
    features_only = rows[list(FEATURE_NAMES)]
    label = rows[LABEL_COLUMN].to_numpy(np.float32)

    lgb_params = params.lightgbm()
    fit = lgb.train(
        lgb_params,
        lgb.Dataset(features_only[~is_validation], label[~is_validation]),
        num_boost_round=params.max_rounds,
        valid_sets=[lgb.Dataset(features_only[is_validation], label[is_validation])],
        callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )
    best = max(1, fit.best_iteration)
    validation = rows.loc[is_validation, ["id", "date", LABEL_COLUMN]].assign(
        prediction=fit.predict(features_only[is_validation], num_iteration=best)
    )
    # At full scale each binned dataset takes gigabytes; the refit needs only its own.
    fit.free_dataset()
    del fit
    final = lgb.train(lgb_params, lgb.Dataset(features_only, label), num_boost_round=best)
    return TrainedModel(
        booster=final,
        best_iteration=best,
        validation=validation.reset_index(drop=True),
        train_rows=int((~is_validation).sum()),
        validation_rows=int(is_validation.sum()),
        seconds=time.perf_counter() - started,
        params=params,
    )
