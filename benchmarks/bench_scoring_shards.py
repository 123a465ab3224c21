"""Scoring by store group at full scale: 30 forecast partitions scored in one process (the
baseline: the one-step asset before every count ran the same graph) against two store groups in
two processes at once, then the combining step, and against one group (the default run's steps),
in one run.

Uses the warehouse of ``bench_features.py`` (``benchmarks/.cache/full-seed42``; run that first).
The forecasts scored are made here, for every series and the 30 days from 2016-03-01: last year's
units with intervals around them (scoring costs the same whatever the values). Each process does
what its Dagster step does: the one-step ``forecast_accuracy`` op (load sales, score each day); a
group's ``score_store_group`` (load its stores' sales, sum its series into the levels for every
day, stage the sums); ``combine_store_group_scores`` (add the sums, score the whole hierarchy
per day). Prints the speed-up, each process's peak memory, the combining cost, and a projection
to 10x and 100x the stores from the per-store costs measured.
"""

from __future__ import annotations

import datetime as dt
import pickle
import shutil
import sys
import tempfile
import time
from pathlib import Path

from workers import peak_mib, report_store_groups, run_worker, side_by_side, store_group_bench

HERE = Path(__file__).resolve().parent
INPUTS = ("long.parquet", "cal.parquet", "prices.parquet")
FIRST, DAYS = dt.date(2016, 3, 1), 30


def _inputs(data: Path) -> tuple[Path, Path, Path]:
    """The long table, calendar and prices in ``data``, in the order the feature code takes them."""
    sales_long, calendar, prices = INPUTS
    return data / sales_long, data / calendar, data / prices


def _days() -> list[dt.date]:
    return [FIRST + dt.timedelta(days=k) for k in range(DAYS)]


def _made_forecasts(data: Path, folder: Path) -> None:
    import numpy as np
    import pandas as pd

    from m5_assets import warehouse
    from m5_assets.features.build import load_inputs
    from m5_assets.features.catalog import HORIZON
    from m5_assets.intervals import COVERAGES, bound_columns

    inputs = load_inputs(warehouse.connect(), *_inputs(data))
    ids = np.repeat(inputs.series["id"].astype(str).to_numpy(), HORIZON)
    for day in _days():
        origin = int(np.searchsorted(inputs.dates.to_numpy(), np.datetime64(day)))
        forecast = inputs.units[:, origin - 364 : origin - 364 + HORIZON].astype(np.float64).ravel()
        frame = pd.DataFrame(
            {
                "id": ids,
                "date": np.tile(pd.date_range(day, periods=HORIZON).date, len(inputs.series)),
                "horizon": np.tile(np.arange(1, HORIZON + 1), len(inputs.series)),
                "forecast": forecast,
                "model_version": "1",
            }
        )
        for k, c in enumerate(COVERAGES, start=1):
            lo, hi = bound_columns(c)
            frame[lo], frame[hi] = np.clip(forecast - k, 0, None), forecast + k
        frame.to_parquet(folder / f"{day}.parquet", index=False)


def _reader(folder: Path):
    import pandas as pd

    return lambda day: pd.read_parquet(folder / f"{day}.parquet")


def _unsharded(data: Path, forecasts: Path, out: Path) -> dict:
    from m5_assets import warehouse
    from m5_assets.features.build import load_inputs
    from m5_assets.forecast.accuracy import score_forecast

    started = time.perf_counter()
    inputs = load_inputs(warehouse.connect(), *_inputs(data))
    read = _reader(forecasts)
    rows = {day.isoformat(): score_forecast(inputs, day, read(day)) for day in _days()}
    seconds = time.perf_counter() - started
    out.write_bytes(pickle.dumps(rows))
    return {"seconds": seconds, "peak_mib": peak_mib()}


def _group(data: Path, forecasts: Path, out: Path, stores: list[str]) -> dict:
    from m5_assets import warehouse
    from m5_assets.features.build import load_inputs
    from m5_assets.forecast.shards import score_group

    started = time.perf_counter()
    inputs = load_inputs(warehouse.connect(), *_inputs(data), stores)
    staged = score_group(inputs, _days(), _reader(forecasts), lambda day: None)
    out.write_bytes(pickle.dumps(staged, protocol=pickle.HIGHEST_PROTOCOL))
    return {"seconds": time.perf_counter() - started, "peak_mib": peak_mib(), "staged_mib": out.stat().st_size // 2**20}


def _combine(unsharded: Path, staged: list[str]) -> dict:
    import math

    from m5_assets.forecast.shards import combine_group_scores

    started = time.perf_counter()
    rows = combine_group_scores([pickle.loads(Path(path).read_bytes()) for path in staged])
    seconds = time.perf_counter() - started
    expected = pickle.loads(unsharded.read_bytes())
    worst = 0.0
    for day, row in rows.items():
        for key, value in expected[day.isoformat()].items():
            if isinstance(value, float) and not math.isnan(value):
                worst = max(worst, abs(row[key] - value) / max(abs(value), 1e-12))
    return {"seconds": seconds, "peak_mib": peak_mib(), "days": len(rows), "largest_relative_difference": worst}


def main() -> int:
    data = HERE / ".cache" / "full-seed42" / "warehouse"
    workers = {
        "unsharded": lambda data, rest: _unsharded(data, Path(rest[0]), Path(rest[1])),
        "group": lambda data, rest: _group(data, Path(rest[0]), Path(rest[1]), rest[2].split(",")),
        "combine": lambda data, rest: _combine(Path(rest[0]), rest[1:]),
    }
    return store_group_bench(
        __doc__.splitlines()[0], data, workers, lambda stores, groups: _in_a_folder(data, stores, groups)
    )


def _in_a_folder(data: Path, stores: list[str], groups: list[list[str]]) -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-scoring-shards-"))
    try:
        (work / "forecasts").mkdir()
        _made_forecasts(data, work / "forecasts")
        return _compare(work, stores, groups)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _compare(work: Path, stores: list[str], groups: list[list[str]]) -> int:
    forecasts = str(work / "forecasts")
    unsharded = run_worker(__file__, "--worker", "unsharded", forecasts, str(work / "unsharded.pickle"))
    staged = [str(work / f"group_{k}.pickle") for k in range(len(groups))]
    parts, parts_wall = side_by_side(
        __file__, [["--worker", "group", forecasts, staged[k], ",".join(g)] for k, g in enumerate(groups)]
    )
    combined = run_worker(__file__, "--worker", "combine", str(work / "unsharded.pickle"), *staged)
    # The default run: the same steps with one group.
    alone = run_worker(__file__, "--worker", "group", forecasts, str(work / "one_group.pickle"), ",".join(stores))
    joined = run_worker(__file__, "--worker", "combine", str(work / "unsharded.pickle"), str(work / "one_group.pickle"))
    agreement = (
        f"largest relative difference of a score: {combined['largest_relative_difference']:.1e} over {combined['days']} days"
        f" (one group: {joined['largest_relative_difference']:.1e})"
    )
    report_store_groups(
        f"scoring {DAYS} forecast partitions",
        stores,
        groups,
        unsharded,
        parts,
        parts_wall,
        combined,
        agreement,
        (alone, joined),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
