"""Horizon groups against the single direct model, on a data folder's genuine backtest origins.

The product fits one model per cutoff whose sales features are all lagged at least 28 days, so
day 1 of a forecast reads nothing of the 27 days before it. Horizon groups fit one model per
forecast week k (1..4) whose sales features are lagged at least 7k days: for a row dated D they
are the feature store's own sales features of the row dated D + 28 - 7k (windows ending D - 7k),
so each group reads nothing dated on or after the forecast date of the week it serves.

Each group's model is ``training.train``'s, on a copy of the feature store whose sales features
are shifted that way (``shifted_store``), so both sides train exactly as the product does; both
are issued as the model alone (no issue rule), on the backtest's origins, and scored by the backtest's
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
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from m5_assets import tables
from m5_assets.backtest.origins import DESIGN_ORIGINS_BEFORE, WEEKS, backtest_origins, by_cutoff
from m5_assets.backtest.scoring import score_origin
from m5_assets.defs.resources import M5Data
from m5_assets.features.catalog import FEATURES, HORIZON
from m5_assets.model.evaluation import forecast_matrix
from m5_assets.model.forecaster import IssueRule, row_levels
from m5_assets.model.matrix import read_rows
from m5_assets.model.training import TrainingParams, train

SALES_FEATURES = [f.name for f in FEATURES if f.family in ("lags", "rolling", "level")]
SINGLE = "single model (lags >= 28)"


def shift_of(week: int) -> int:
    """How many days later the row whose sales features week ``week``'s model reads is."""
    return HORIZON - 7 * week


def shifted_store(features: Path, shift: int, out: Path) -> Path:
    """A copy of the feature store whose rows carry the sales features of the same series' row
    ``shift`` days later (windows ending 28 - shift days before the row's day); the rest as is.
    ``train`` and ``read_rows`` then work on it unchanged."""
    table = pq.read_table(features)
    ids = table.column("id").to_pandas().astype(str).to_numpy()
    dates = pd.to_datetime(table.column("date").to_pandas())
    rows = pd.MultiIndex.from_arrays([ids, dates])
    at = rows.get_indexer(pd.MultiIndex.from_arrays([ids, dates + pd.Timedelta(days=shift)]))
    for name in SALES_FEATURES:
        values = table.column(name).to_numpy(zero_copy_only=False).astype(np.float32)
        moved = np.where(at >= 0, values[at], np.nan).astype(np.float32)
        table = table.set_column(table.schema.get_field_index(name), name, pa.array(moved, mask=np.isnan(moved)))
    pq.write_table(table, out)
    return out


def model_alone(features: Path, booster: lgb.Booster, origin: dt.date, weeks: list[int]) -> pd.DataFrame:
    """The booster's units for the days of ``weeks`` of the forecast issued on ``origin``: each
    row's multiplier of its own level, not refreshed (both sides alike), so that the comparison
    is of the boosters alone."""
    rows = read_rows(
        features, origin, origin + dt.timedelta(days=HORIZON), vocabulary=booster.pandas_categorical, labelled=False
    )
    prediction = booster.predict(rows.matrix)
    assert isinstance(prediction, np.ndarray)  # a dense matrix in, one prediction a row out
    units = IssueRule().model_units(prediction, row_levels(rows.matrix))
    week = (pd.to_datetime(rows.keys["date"]) - pd.Timestamp(origin)).dt.days.to_numpy() // 7 + 1
    keep = np.isin(week, weeks)
    return rows.keys.loc[keep, ["id", "date"]].assign(prediction=units[keep])


def summary(scores: pd.DataFrame) -> pd.DataFrame:
    table = scores.groupby("method").agg(
        wrmsse=("wrmsse", "mean"),
        mean_rmsse=("mean_rmsse", "mean"),
        forecast=("forecast_units", "sum"),
        actual=("actual_units", "sum"),
        worst_bias_pct=("bias_pct", lambda b: b.abs().max()),
    )
    table["bias_pct"] = 100 * (table["forecast"] / table["actual"] - 1)
    table["wrmsse_vs_single"] = table["wrmsse"] / table.loc[SINGLE, "wrmsse"]
    table["rmsse_vs_single"] = table["mean_rmsse"] / table.loc[SINGLE, "mean_rmsse"]
    return table[["wrmsse", "mean_rmsse", "bias_pct", "worst_bias_pct", "wrmsse_vs_single", "rmsse_vs_single"]].round(4)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a data folder after `m5 run`")
    parser.add_argument(
        "--weeks", default="1,2,3,4", help="the weeks that get their own model (the rest: the single model)"
    )
    args = parser.parse_args()
    data = M5Data(data_dir=str(args.data))
    inputs, features = data.feature_inputs(), data.table(tables.FEATURES)
    weeks = sorted(int(w) for w in args.weeks.split(","))
    groups = f"horizon groups (own model for weeks {','.join(map(str, weeks))})"
    params = TrainingParams()
    last = inputs.dates[inputs.n_sales_days - 1].date()
    rows, started = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        # Week 4's sales features are the store's own (lagged 28 days): it is the single model.
        stores = {
            w: shifted_store(features, shift_of(w), Path(folder) / f"week{w}.parquet") for w in weeks if shift_of(w) > 0
        }
        rest = [w for w in range(1, 5) if w not in stores]
        for cutoff, origins in by_cutoff(backtest_origins(last, WEEKS)).items():
            single = train(features, cutoff, params)
            by_week = {w: train(store, cutoff, params) for w, store in stores.items()}
            for origin in origins:
                parts = [model_alone(stores[w], model.booster, origin, [w]) for w, model in by_week.items()]
                parts.append(model_alone(features, single.booster, origin, rest))
                forecasts = {
                    SINGLE: forecast_matrix(
                        inputs, model_alone(features, single.booster, origin, [1, 2, 3, 4]), origin, HORIZON
                    ),
                    groups: forecast_matrix(inputs, pd.concat(parts), origin, HORIZON),
                }
                rows += [r | {"cutoff": cutoff} for r in score_origin(inputs, origin, forecasts)]
            print(
                f"cutoff {cutoff}: rounds {single.best_iteration} single, { ({w: m.best_iteration for w, m in by_week.items()}) } "
                f"by week; {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    scores = pd.DataFrame(rows)
    design = pd.to_datetime(scores["origin"]) < pd.Timestamp(DESIGN_ORIGINS_BEFORE)
    for name, part in (
        ("every origin", scores),
        (f"origins before {DESIGN_ORIGINS_BEFORE}", scores[design]),
        (f"origins from {DESIGN_ORIGINS_BEFORE}", scores[~design]),
    ):
        print(f"\n== model alone, {name} ({part['origin'].nunique()}) ==")
        print(summary(part).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
