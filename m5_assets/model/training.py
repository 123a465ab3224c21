"""LightGBM on the feature store: fit before a cutoff, early-stopped on the 28 days before it, refit.

The validation window is the last ``HORIZON`` days before the cutoff. Its rows' features use
no sale on or after the window's first day (every units feature is lagged at least 28 days), so
scoring the model there is the same as scoring a forecast issued on that day, blended with the
levels of that day (see ``forecaster``). Early stopping finds the number of rounds on that
window; the model served is then refit on every day before the cutoff with that many rounds, so
it has learnt from the last weeks before the cutoff too.

The refit costs as much again as the early-stopped fit. ``final_fit="recent"`` does one fit
instead: the booster, cut back to its best round, goes on boosting a few rounds on the window's own
rows (``TrainingParams.recent_rounds``). At full scale that trains in 225 s against 333 s, but it
forecasts worse on genuine data (real_280's backtest WRMSSE 0.729 against 0.713; the ten genuine
series' mean RMSSE 0.852 against 0.811, behind the 28-day mean's 0.838): a few trees fitted to 28
days learn that month's noise with its signal. README, "Training", has the figures.

Every row starts from its own demand level (the tweedie offset of ``forecaster``): the booster
learns departures from a series' level, so it follows a level that moves.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import lightgbm as lgb
import numpy as np
import pandas as pd

from m5_assets.features.catalog import FEATURE_NAMES, HORIZON, LABEL_COLUMN
from m5_assets.model.forecaster import offset, row_levels, window_forecast
from m5_assets.model.matrix import CATEGORICAL_INDEX, Vocabulary, read_rows
from m5_assets.table_files import TableSource

PROGRESS_SECONDS = 30.0
FINAL_FITS = ("recent", "refit")
# Training's progress also goes to this Python logger: `m5 run` prints it in the terminal, where
# the Dagster log is kept quiet.
progress_log = logging.getLogger("m5_assets.progress")


@dataclass(frozen=True)
class TrainingParams:
    """What a user may change; defaults follow what won M5 (tweedie, categorical ids)."""

    # What fits full-scale training in 15 minutes on 2 cores; lower buys ~2 % WRMSSE (README).
    learning_rate: float = 0.2
    num_leaves: int = 63
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 0.1
    tweedie_variance_power: float = 1.1
    max_rounds: int = 1500
    # Rounds without a better validation score before the search stops. At learning rate 0.2 the
    # full-scale search chose round 110 under 20 as under 50; the 30 rounds more cost 26 s a model.
    early_stopping_rounds: int = 20
    train_days: int = 730
    seed: int = 42
    max_bin: int = 255
    sampling: str = "bagging"  # bagging_fraction of rows each round, or "goss" (slower at full scale here)
    # Start every row from its series' demand level (see forecaster); False learns the level too.
    level_offset: bool = True
    # Features the trees may not split on, comma-separated (the feature store keeps them). On
    # real_280's 28 items, item_id's splits learnt each item's two years of calendar by heart:
    # without them the genuine backtest scores WRMSSE 0.737 against 0.749 (README, issue 24).
    ignored_features: str = "item_id"
    # "refit": from scratch on every day before the cutoff with the rounds early stopping chose;
    # "recent": one fit, boosted recent_rounds() more on the validation window (faster, less
    # accurate on genuine data: see the module docstring).
    final_fit: str = "refit"
    # For "recent": its rounds as a multiple of the window's share of the days times the rounds chosen.
    recent_share: float = 1.0

    def lightgbm(self) -> dict:
        return {
            "objective": "tweedie",
            "tweedie_variance_power": self.tweedie_variance_power,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            **self._sampling(),
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "max_bin": self.max_bin,
            # Same data and seed give the same model.
            "deterministic": True,
            "force_row_wise": True,
            "verbose": -1,
        }

    def recent_rounds(self, best: int) -> int:
        """Rounds boosted on the validation window after ``best`` early-stopped ones: as many as
        the window's share of the training days would give it, at least one."""
        return max(1, math.ceil(self.recent_share * best * HORIZON / (self.train_days - HORIZON)))

    def ignored_columns(self) -> list[int]:
        """The feature matrix's columns of ``ignored_features``."""
        names = [n.strip() for n in self.ignored_features.split(",") if n.strip()]
        unknown = [n for n in names if n not in FEATURE_NAMES]
        if unknown:
            raise ValueError(
                f"ignored_features: {', '.join(unknown)} not in the feature catalog ({', '.join(FEATURE_NAMES)})"
            )
        return [FEATURE_NAMES.index(n) for n in names]

    def _sampling(self) -> dict:
        if self.sampling not in ("goss", "bagging"):
            raise ValueError(f"sampling must be 'goss' or 'bagging', not {self.sampling!r}")
        if self.sampling == "goss":
            return {"data_sample_strategy": "goss"}
        return {"data_sample_strategy": "bagging", "bagging_fraction": self.bagging_fraction, "bagging_freq": 1}


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
    # Released rows of the validation window: id, date, units, prediction (the model's units as
    # a forecast issued on the window's first day, formed by ``new_model_rule``), level and
    # mean_28 (the series' partners on that day).
    validation: pd.DataFrame
    train_rows: int
    validation_rows: int
    seconds: float
    params: TrainingParams
    stage_seconds: dict[str, float]  # read, search (early-stopped fit), final (recent rounds or refit)

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


def progress_every(
    seconds: float, report: Callable[[str], None], clock: Callable[[], float] = time.monotonic
) -> Callable:
    """A LightGBM callback that reports the round and the validation score at most every
    ``seconds``: a full-scale fit runs for minutes and should not look stuck."""
    last = [clock()]

    def callback(env: lgb.callback.CallbackEnv) -> None:
        now = clock()
        if now - last[0] < seconds:
            return
        last[0] = now
        # LightGBM gives None only to callbacks that run before an iteration; this one runs after.
        assert env.evaluation_result_list is not None
        # EvalResult is a 5-field NamedTuple whose __iter__ yields 4 values for a train() result
        # (5 only from cv()), which its annotation cannot say.
        scores = ", ".join(f"{metric} {value:.5f}" for _, metric, value, _ in env.evaluation_result_list)  # type: ignore[misc]
        report(
            f"round {env.iteration + 1} of at most {env.end_iteration}" + (f": validation {scores}" if scores else "")
        )

    return callback


def train(
    features: TableSource,
    cutoff: dt.date,
    params: TrainingParams,
    refit: bool = True,
    report: Callable[[str], None] | None = None,
) -> TrainedModel:
    """Fit with early stopping on the validation window, then go on boosting on that window's rows
    (``final_fit`` "recent") or refit on every day before ``cutoff`` ("refit"); without ``refit``,
    as a search does, the early-stopped fit is the model returned.
    ``report`` hears each stage and the rounds' progress every 30 s (so does ``progress_log``)."""

    def say(message: str) -> None:
        progress_log.info(f"training {cutoff}: {message}")
        if report:
            report(message)

    started = time.perf_counter()
    ignored = params.ignored_columns()  # a misspelt name fails before minutes of reading
    if params.final_fit not in FINAL_FITS:
        raise ValueError(f"final_fit must be one of {', '.join(FINAL_FITS)}, not {params.final_fit!r}")
    window = Window(cutoff, params.train_days)
    # Validation rows come last, so each fit takes a contiguous range of one binned dataset.
    rows = read_rows(features, window.train_start, cutoff, last_from=window.validation_start)
    last = rows.keys["date"].max() if len(rows) else None
    if last is None or pd.Timestamp(last) < pd.Timestamp(cutoff - dt.timedelta(days=1)):
        raise ValueError(
            f"{features}: no sales for the day before cutoff {cutoff} (last labelled day: {last or 'none'})"
        )
    n_rows = len(rows)
    n_train = int(
        np.searchsorted(pd.to_datetime(rows.keys["date"]).to_numpy() >= np.datetime64(window.validation_start), True)
    )
    valid_x = rows.matrix[n_train:].copy()
    # Only the validation rows' keys and labels are read again: the rest (a third of a GiB at full
    # scale) is not held through the fits.
    valid_keys = rows.keys.iloc[n_train:].reset_index(drop=True).assign(**{LABEL_COLUMN: rows.label[n_train:]})
    del rows.keys
    lgb_params = params.lightgbm()
    # Binned once for both fits; the float matrix (the largest object by far) is dropped after.
    init = offset(row_levels(rows.matrix)) if params.level_offset else None
    # A constant column cannot be split on, so LightGBM leaves it out; predicting reads the real
    # values, which no tree looks at. The offset above still starts from the level if it is ignored.
    rows.matrix[:, ignored] = 0.0
    everything = _dataset(rows.matrix, rows.label, rows.vocabulary, lgb_params, init).construct()
    del rows, init
    # LightGBM has copied the label and the offsets in: its Python copies (a quarter of a GiB at
    # full scale) would be held through both fits. Read back, they come from LightGBM's.
    everything.label = everything.init_score = None
    stages = {"read": time.perf_counter() - started}
    say(
        f"{n_train:,} training and {n_rows - n_train:,} validation rows read in {stages['read']:.0f} s; fitting with early stopping"
    )

    fit = lgb.train(
        lgb_params,
        rows_of(everything, 0, n_train),
        num_boost_round=params.max_rounds,
        valid_sets=[rows_of(everything, n_train, n_rows)],
        callbacks=[
            lgb.early_stopping(params.early_stopping_rounds, verbose=False),
            progress_every(PROGRESS_SECONDS, say),
        ],
    )
    best = max(1, fit.best_iteration)
    predicted = fit.predict(valid_x, num_iteration=best)
    assert isinstance(predicted, np.ndarray)  # sparse only for feature contributions
    validation = window_forecast(
        valid_keys,
        valid_x,
        predicted,
        window.validation_start,
        params.level_offset,
    )
    stages["search"] = time.perf_counter() - started - stages["read"]
    if not refit:
        fit.free_dataset()
        final = fit
    elif params.final_fit == "recent":
        say(
            f"early stopping chose {best} rounds in {stages['search']:.0f} s; {params.recent_rounds(best)} more on the last {HORIZON} days"
        )
        fit.free_dataset()
        recent = rows_of(everything, n_train, n_rows).construct()
        final = continued_on(fit, best, recent, valid_x, lgb_params, params.recent_rounds(best))
    else:
        say(f"early stopping chose {best} rounds in {stages['search']:.0f} s; refitting on every day before the cutoff")
        fit.free_dataset()
        del fit
        final = lgb.train(
            lgb_params, everything, num_boost_round=best, callbacks=[progress_every(PROGRESS_SECONDS, say)]
        )
        final.free_dataset()
    stages["final"] = time.perf_counter() - started - stages["read"] - stages["search"]
    return TrainedModel(
        booster=final,
        best_iteration=best,
        validation=validation.reset_index(drop=True),
        train_rows=n_train,
        validation_rows=n_rows - n_train,
        seconds=time.perf_counter() - started,
        params=params,
        stage_seconds={k: round(v, 1) for k, v in stages.items()},
    )


def rows_of(data: lgb.Dataset, start: int, stop: int) -> lgb.Dataset:
    """Rows ``start`` .. ``stop - 1`` of ``data``, binned as it is, as a Dataset of their own.

    ``Dataset.subset`` sorts the indices it is given into a Python list, which it keeps: for a
    full-scale training window, 21 million int objects (0.8 GiB, held through the whole search)
    that LightGBM then converts to the int32 array it reads. The subset is given that array.
    """
    part = data.subset([])
    # Annotated as a list, but read only through LightGBM's conversion to a 1-d int32 array.
    part.used_indices = np.arange(start, stop, dtype=np.int32)  # type: ignore[assignment]
    return part


def continued_on(
    fit: lgb.Booster, best: int, recent: lgb.Dataset, recent_x: np.ndarray, params: dict, rounds: int
) -> lgb.Booster:
    """``fit``'s first ``best`` trees, then ``rounds`` more boosted on ``recent`` (a subset of the
    rows ``fit`` was binned with, whose raw features are ``recent_x``), as one booster.

    Each recent row starts from its own level offset plus what the kept trees say of it. LightGBM's
    ``init_model`` would start it from the trees alone, dropping the offset; resetting the training
    data of the trained booster itself (``Booster.update(train_set=...)``) grows empty trees, or
    fails a split check with bagging, in LightGBM 4.7. So the new rounds are a booster of their own,
    appended to the kept trees.
    """
    kept = fit.predict(recent_x, num_iteration=best, raw_score=True)
    assert isinstance(kept, np.ndarray)  # sparse only for feature contributions
    starts = recent.get_init_score()
    recent.set_init_score(kept if starts is None else np.asarray(starts) + kept)
    more = lgb.train(params, recent, num_boost_round=rounds)
    more.free_dataset()
    return appended(fit, best, more)


_TREE = re.compile(r"^Tree=(\d+)$", re.MULTILINE)


def appended(first: lgb.Booster, best: int, second: lgb.Booster) -> lgb.Booster:
    """One booster whose raw output is ``first``'s over its first ``best`` iterations plus
    ``second``'s: the trees of both in one LightGBM model text (same features and bins)."""
    head, trees, tail = _model_parts(first.model_to_string(num_iteration=best))
    _, more, _ = _model_parts(second.model_to_string())
    n = len(_TREE.findall(trees))
    renumbered = _TREE.sub(lambda m: f"Tree={int(m.group(1)) + n}", more)
    # tree_sizes lets LightGBM parse the trees in parallel; without it they are read in turn.
    head = "\n".join(line for line in head.split("\n") if not line.startswith("tree_sizes="))
    return lgb.Booster(model_str=head + trees + renumbered + tail)


def _model_parts(text: str) -> tuple[str, str, str]:
    """A model text cut into its header, its trees and what follows them ("end of trees" on)."""
    first_tree = _TREE.search(text)
    end = text.find("end of trees")
    if first_tree is None or end < 0:
        raise ValueError("not a LightGBM model text with trees")
    return text[: first_tree.start()], text[first_tree.start() : end], text[end:]


def _dataset(
    matrix: np.ndarray, label: np.ndarray, vocabulary: Vocabulary, params: dict, init: np.ndarray | None
) -> lgb.Dataset:
    data = lgb.Dataset(
        matrix,
        label,
        init_score=init,
        feature_name=list(FEATURE_NAMES),
        categorical_feature=list(CATEGORICAL_INDEX),
        params=params,
    )
    # Stored in the model as a pandas frame's categories are, so it predicts from frames too.
    data.pandas_categorical = vocabulary
    return data
