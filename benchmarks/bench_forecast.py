"""Forecast partition benchmark at full scale: one partition, then a 30-partition backfill run.

Uses the warehouse ``bench_features.py`` leaves in ``benchmarks/.cache``. A model is trained once
(``--rounds`` trees, about what the default model grows at full scale: prediction cost grows
with the number of trees) and saved beside the cache; each measurement then runs
in its own process, so its peak resident memory is its own. Work done per partition is what the
``forecasts`` asset does: read the feature rows, predict, add intervals, sum to the levels, write
both files atomically.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
from workers import feature_store, peak_mib, run_worker

HERE = Path(__file__).resolve().parent
TARGETS = {"one_seconds": 8.0, "one_peak_mib": 2048, "thirty_seconds": 90.0}


def _train(data: Path, model_dir: Path, cutoff: dt.date, rounds: int) -> None:
    """Exactly ``rounds`` trees (no early stopping) on the 60 days before ``cutoff``: prediction
    cost depends on the number of trees, not on how well they fit."""
    import lightgbm as lgb

    from m5_assets import warehouse
    from m5_assets.features.build import load_inputs
    from m5_assets.model.evaluation import calibrate_intervals
    from m5_assets.model.matrix import read_rows
    from m5_assets.model.training import TrainingParams, _dataset

    rows = read_rows(feature_store(data), cutoff - dt.timedelta(days=60), cutoff)
    params = TrainingParams().lightgbm()
    booster = lgb.train(
        params, _dataset(rows.matrix, rows.label, rows.vocabulary, params, None), num_boost_round=rounds
    )
    window = (pd.to_datetime(rows.keys["date"]) >= pd.Timestamp(cutoff - dt.timedelta(days=28))).to_numpy()
    validation = rows.keys[window].assign(prediction=booster.predict(rows.matrix[window]))
    inputs = load_inputs(warehouse.connect(), data / "long.parquet", data / "cal.parquet", data / "prices.parquet")
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(model_dir / "model.txt")
    (model_dir / "intervals.json").write_text(calibrate_intervals(inputs, cutoff, validation).to_json())
    (model_dir / "info.json").write_text(json.dumps({"cutoff": cutoff.isoformat(), "trees": booster.num_trees()}))


def load_model(model_dir: Path):
    """The benchmark model as the forecasts asset issues with it."""
    import lightgbm as lgb

    from m5_assets.intervals import Calibration
    from m5_assets.model.forecaster import IssuingModel

    info = json.loads((model_dir / "info.json").read_text())
    return IssuingModel(
        lgb.Booster(model_file=str(model_dir / "model.txt")),
        Calibration.from_json((model_dir / "intervals.json").read_text()),
        "bench",
        "bench",
        dt.date.fromisoformat(info["cutoff"]),
    )


def _issue(data: Path, model_dir: Path, first: dt.date, days: int, keep: Path | None = None) -> dict:
    """``days`` partitions issued and published as the forecasts op does, into ``keep`` (or a
    temporary folder)."""
    from m5_assets import tables, warehouse
    from m5_assets.forecast.issue import issue, read_forecast_rows
    from m5_assets.model import prediction

    model = load_model(model_dir)
    out = keep or Path(tempfile.mkdtemp(prefix="bench-forecasts-"))
    started = time.perf_counter()
    rows = read_forecast_rows(feature_store(data), first, first + dt.timedelta(days=days - 1), model)
    read = time.perf_counter() - started
    predictions = prediction.predict(model.booster, rows.matrix)
    predict = time.perf_counter() - started - read
    n = 0
    for k in range(days):
        forecast = issue(feature_store(data), first + dt.timedelta(days=k), model, rows, predictions)
        tables.FORECAST_LEVELS.write_partition(warehouse.Warehouse(out), first + dt.timedelta(days=k), forecast.levels)
        tables.FORECASTS.write_partition(warehouse.Warehouse(out), first + dt.timedelta(days=k), forecast.bottom)
        n += len(forecast.bottom)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "read_seconds": read, "predict_seconds": predict, "rows": n, "peak_mib": peak_mib()}


def model_folder(data: Path, cutoff: str, rounds: int) -> Path:
    from m5_assets.features.catalog import CATALOG_VERSION

    # A model trained on another catalog version has other features: the name keeps them apart.
    return data.parent / f"forecast-model-{cutoff}-{rounds}-catalog{CATALOG_VERSION}"


def ready_model(data: Path, cutoff: str, rounds: int) -> bool:
    """Whether the benchmark model is there, training it first if only the feature store is."""
    feature_store(data)  # there, or exits saying what to run first
    if not (model_folder(data, cutoff, rounds) / "model.txt").exists():
        print(f"training the benchmark model ({rounds} rounds, cutoff {cutoff}) ...", flush=True)
        _train(data, model_folder(data, cutoff, rounds), dt.date.fromisoformat(cutoff), rounds)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cutoff", default="2016-04-01")
    parser.add_argument("--first", default="2016-04-01", help="first forecast date of the backfill")
    parser.add_argument(
        "--rounds",
        type=int,
        default=110,
        help="boosting rounds of the benchmark model (the default model grew 110 at full scale, cutoff "
        "2016-05-01, on 7 December 2026; 176 before issue 24's parameters)",
    )
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    data = HERE / ".cache" / f"{args.scale}-seed{args.seed}" / "warehouse"
    model_dir = model_folder(data, args.cutoff, args.rounds)
    if args.worker:
        print(json.dumps(_issue(data, model_dir, dt.date.fromisoformat(args.worker[0]), int(args.worker[1]))))
        return 0
    if not ready_model(data, args.cutoff, args.rounds):
        return 1
    info = json.loads((model_dir / "info.json").read_text())

    def worker(*what: str) -> dict:
        return run_worker(
            __file__,
            "--scale",
            args.scale,
            "--seed",
            str(args.seed),
            "--cutoff",
            args.cutoff,
            "--rounds",
            str(args.rounds),
            "--worker",
            *what,
        )

    one, thirty = worker(args.first, "1"), worker(args.first, "30")
    print(f"\n== forecast partitions, {args.scale} scale, model of {info['trees']} trees (cutoff {info['cutoff']}) ==")
    print(
        f"one partition: {one['rows']:,} rows with intervals and levels in {one['seconds']:.1f} s "
        f"(reading features {one['read_seconds']:.1f} s, predicting {one['predict_seconds']:.1f} s), "
        f"peak {one['peak_mib']} MiB"
    )
    print(
        f"30-partition backfill run: {thirty['rows']:,} rows in {thirty['seconds']:.1f} s "
        f"({thirty['seconds'] / 30:.1f} s per partition; reading features once {thirty['read_seconds']:.1f} s, "
        f"predicting once {thirty['predict_seconds']:.1f} s), peak {thirty['peak_mib']} MiB; per partition "
        f"{thirty['seconds'] / 30 / one['seconds']:.2f}x the single one"
    )
    checks = [
        ("one partition, seconds", one["seconds"], TARGETS["one_seconds"]),
        ("one partition, peak MiB", one["peak_mib"], TARGETS["one_peak_mib"]),
        ("30-partition backfill, seconds", thirty["seconds"], TARGETS["thirty_seconds"]),
    ]
    missed = 0
    for name, value, target in checks:
        met = value <= target
        missed += not met
        print(f"{name}: {value:,.4g} (target <= {target:,}) -> {'met' if met else 'MISSED'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
