"""Horizon groups against the single direct model, on a data folder's genuine backtest origins.

The product fits one model per cutoff whose sales features are all lagged at least 28 days, so
day 1 of a forecast reads nothing of the 27 days before it. Horizon groups fit one model per
forecast week k (1..4) whose sales features are lagged at least 7k days: for a row dated D they
are the feature store's own sales features of the row dated D + 28 - 7k (windows ending D - 7k),
so each group reads nothing dated on or after the forecast date of the week it serves.

Both are trained as ``training.train`` trains (same parameters, early stopping on the 28 days
before the cutoff, refit on every day before it, rows started from their demand level) and issued
as the model alone (no issue rule), on the backtest's origins, and scored by the backtest's
``score_origin``. Figures are printed for every origin, for the design origins (before
2015-11-01) and the later ones, with ratios against the single model measured in the same run.

    python benchmarks/bench_horizon_groups.py --data DIR [--weeks 1,2,3,4]

``DIR`` is a data folder after ``m5 run`` (``benchmarks/bench_genuine.py --keep DIR`` leaves one
on real_280).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from m5_assets import tables
from m5_assets.backtest.origins import DESIGN_ORIGINS_BEFORE, WEEKS, backtest_origins, by_cutoff
from m5_assets.backtest.scoring import score_origin
from m5_assets.defs.resources import M5Data
from m5_assets.features.catalog import FEATURES, HORIZON
from m5_assets.model.evaluation import forecast_matrix
from m5_assets.model.forecaster import IssueRule, offset, row_levels
from m5_assets.model.matrix import Rows, read_rows
from m5_assets.model.training import TrainingParams, Window, _dataset

SALES_COLUMNS = [i for i, f in enumerate(FEATURES) if f.family in ("lags", "rolling", "level")]
SINGLE = "single model (lags >= 28)"


def shift_of(week: int) -> int:
    """How many days later the row whose sales features week ``week``'s model reads is."""
    return HORIZON - 7 * week


def shifted(features: Path, rows: Rows, shift: int, vocabulary) -> np.ndarray:
    """``rows``' matrix with its sales features taken from the same series' row ``shift`` days later."""
    if shift == 0:
        return rows.matrix
    dates = pd.to_datetime(rows.keys["date"])
    later = read_rows(
        features, dates.min().date() + dt.timedelta(days=shift), dates.max().date() + dt.timedelta(days=shift + 1),
        vocabulary=vocabulary, labelled=False,
    )  # fmt: skip
    source = pd.MultiIndex.from_arrays([later.keys["id"].astype(str), pd.to_datetime(later.keys["date"])])
    wanted = pd.MultiIndex.from_arrays([rows.keys["id"].astype(str), dates + pd.Timedelta(days=shift)])
    at = source.get_indexer(wanted)
    matrix = rows.matrix.copy()
    found = at >= 0
    matrix[np.ix_(found, SALES_COLUMNS)] = later.matrix[np.ix_(at[found], SALES_COLUMNS)]
    matrix[np.ix_(~found, SALES_COLUMNS)] = np.nan
    return matrix


def fit(features: Path, cutoff: dt.date, shift: int, params: TrainingParams) -> tuple[lgb.Booster, int]:
    window, lgb_params = Window(cutoff, params.train_days), params.lightgbm()
    rows = read_rows(features, window.train_start, cutoff, last_from=window.validation_start)
    matrix = shifted(features, rows, shift, None)
    init = offset(row_levels(matrix))
    matrix[:, params.ignored_columns()] = 0.0
    n_train = int(np.searchsorted(pd.to_datetime(rows.keys["date"]).to_numpy() >= np.datetime64(window.validation_start), True))
    data = _dataset(matrix, rows.label, rows.vocabulary, lgb_params, init).construct()
    search = lgb.train(
        lgb_params, data.subset(range(n_train)), num_boost_round=params.max_rounds,
        valid_sets=[data.subset(range(n_train, len(matrix)))], callbacks=[lgb.early_stopping(params.early_stopping_rounds, verbose=False)],
    )  # fmt: skip
    best = max(1, search.best_iteration)
    return lgb.train(lgb_params, data, num_boost_round=best), best


def model_alone(features: Path, booster: lgb.Booster, origin: dt.date, shift: int, weeks: list[int]) -> pd.DataFrame:
    """The booster's units for the days of ``weeks`` of the forecast issued on ``origin``."""
    rows = read_rows(features, origin, origin + dt.timedelta(days=HORIZON), vocabulary=booster.pandas_categorical, labelled=False)
    matrix = shifted(features, rows, shift, booster.pandas_categorical)
    units = IssueRule().model_units(booster.predict(matrix), row_levels(matrix))
    week = (pd.to_datetime(rows.keys["date"]) - pd.Timestamp(origin)).dt.days.to_numpy() // 7 + 1
    keep = np.isin(week, weeks)
    return rows.keys.loc[keep, ["id", "date"]].assign(prediction=units[keep])


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    table = scores.groupby("method").agg(
        wrmsse=("wrmsse", "mean"), mean_rmsse=("mean_rmsse", "mean"), forecast=("forecast_units", "sum"),
        actual=("actual_units", "sum"), worst_bias_pct=("bias_pct", lambda b: b.abs().max()),
    )  # fmt: skip
    table["bias_pct"] = 100 * (table["forecast"] / table["actual"] - 1)
    table["wrmsse_vs_single"] = table["wrmsse"] / table.loc[SINGLE, "wrmsse"]
    table["rmsse_vs_single"] = table["mean_rmsse"] / table.loc[SINGLE, "mean_rmsse"]
    return table[["wrmsse", "mean_rmsse", "bias_pct", "worst_bias_pct", "wrmsse_vs_single", "rmsse_vs_single"]].round(4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a data folder after `m5 run`")
    parser.add_argument("--weeks", default="1,2,3,4", help="the weeks that get their own model (the rest: the single model)")
    args = parser.parse_args()
    data = M5Data(data_dir=str(args.data))
    inputs, features = data.feature_inputs(), data.table(tables.FEATURES)
    weeks = sorted(int(w) for w in args.weeks.split(","))
    groups = f"horizon groups (own model for weeks {','.join(map(str, weeks))})"
    params = TrainingParams()
    last = inputs.dates[inputs.n_sales_days - 1].date()
    rows, started = [], time.perf_counter()
    for cutoff, origins in by_cutoff(backtest_origins(last, WEEKS)).items():
        single, rounds = fit(features, cutoff, 0, params)
        by_week = {w: fit(features, cutoff, shift_of(w), params) for w in weeks if shift_of(w) > 0}
        rest = [w for w in range(1, 5) if w not in by_week]
        for origin in origins:
            parts = [model_alone(features, booster, origin, shift_of(w), [w]) for w, (booster, _) in by_week.items()]
            parts.append(model_alone(features, single, origin, 0, rest))
            forecasts = {
                SINGLE: forecast_matrix(inputs, model_alone(features, single, origin, 0, [1, 2, 3, 4]), origin, HORIZON),
                groups: forecast_matrix(inputs, pd.concat(parts), origin, HORIZON),
            }
            rows += [r | {"cutoff": cutoff} for r in score_origin(inputs, origin, forecasts)]
        print(f"cutoff {cutoff}: rounds {rounds} single, {({w: b for w, (_, b) in by_week.items()})} by week; "
              f"{time.perf_counter() - started:.0f} s", flush=True)  # fmt: skip
    scores = pd.DataFrame(rows)
    design = pd.to_datetime(scores["origin"]) < pd.Timestamp(DESIGN_ORIGINS_BEFORE)
    for name, part in (("every origin", scores), (f"origins before {DESIGN_ORIGINS_BEFORE}", scores[design]),
                       (f"origins from {DESIGN_ORIGINS_BEFORE}", scores[~design])):  # fmt: skip
        print(f"\n== model alone, {name} ({part['origin'].nunique()}) ==")
        print(summary(part).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
