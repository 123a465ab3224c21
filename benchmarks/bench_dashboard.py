"""Full-scale dashboard benchmark: each page's first view and cached views, and the process's memory.

Run with ``make bench`` (after ``bench_features.py``, whose full-scale long table and feature store
it reuses), or alone. The warehouse holds what a year of daily use leaves: the full long table
(30,490 series x 1,941 days), today's forecast partition and the last scored one (30,490 series x
28 days, with levels), 365 scored partitions, a model card and check results. Forecast values are
made up; the pages do not care. Each page runs under Streamlit's AppTest in this one process,
first cold, then three more times with its data cached; the baseline for a cached view is the
page's own first view.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))
TARGETS = {"cached_s": 3.0, "home_first_s": 10.0, "peak_mib": 2048}
NEWEST, SCORED_LAST = dt.date(2016, 5, 23), dt.date(2016, 4, 25)


def build(data: Path) -> None:
    from bench_api import write_partition

    from m5_assets import tables, warehouse
    from m5_assets.features.catalog import catalog_frame

    full = HERE / ".cache" / "full-seed42"
    if not (full / "warehouse" / "long.parquet").exists():
        raise SystemExit("run benchmarks/bench_features.py first: this reuses its full-scale long table")
    root = data / "warehouse"
    (data / "raw").mkdir(parents=True, exist_ok=True)
    for name in ("calendar.csv", "sell_prices.csv", "sales_train_evaluation.csv"):
        if not (data / "raw" / name).exists():
            os.symlink(full / "raw" / name, data / "raw" / name)
    if not tables.SALES_LONG.path(root).exists():
        tables.SALES_LONG.path(root).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(full / "warehouse" / "long.parquet", tables.SALES_LONG.path(root))
    if not tables.FEATURES.folder(root).exists():  # the feature store's folder: its manifest and files
        root.mkdir(parents=True, exist_ok=True)
        os.symlink(full / "warehouse" / "features", tables.FEATURES.folder(root))
    catalog = catalog_frame()
    tables.FEATURE_CATALOG.path(root).parent.mkdir(parents=True, exist_ok=True)
    catalog.to_parquet(tables.FEATURE_CATALOG.path(root), index=False)

    write_partition(data)  # today's forecast, 2016-05-23
    for table in (tables.FORECASTS, tables.FORECAST_LEVELS):
        frame = pd.read_parquet(table.path(root, NEWEST))
        frame["date"] = frame["date"] - (NEWEST - SCORED_LAST)
        table.write_partition(warehouse.Warehouse(root), SCORED_LAST, frame)
    rng = np.random.default_rng(0)
    for k in range(365):
        day = SCORED_LAST - dt.timedelta(days=k)
        row = {
            "model_version": "1",
            "wrmsse": 0.55 + 0.05 * rng.random(),
            "seasonal_naive_wrmsse": 0.8 + 0.05 * rng.random(),
            "rmse": 2.1,
            "mae": 1.0,
            "bias": -0.01,
            "seasonal_naive_mae": 1.3,
            "coverage_50": 50.0,
            "coverage_80": 80.0,
            "coverage_95": 94.8,
            **{f"wrmsse_level_{lv}": 0.4 + 0.04 * lv for lv in range(1, 13)},
        }
        tables.FORECAST_ACCURACY.write_partition(warehouse.Warehouse(root), day, pd.DataFrame([row]))
    card = {
        "cutoff": dt.date(2016, 5, 1),
        "mlflow_run_id": "bench",
        "trained_at": "2016-05-01T03:00:00+00:00",
        "validation_start": dt.date(2016, 4, 3),
        "promoted": True,
        "promotion_decision": "bench",
        "champion_at_training": True,
        "serving_version": "",
        "wrmsse": 0.55,
        "seasonal_naive_wrmsse": 0.8,
        "params": "{}",
        "validation_scores": "{}",
        "feature_importance": json.dumps([{"feature": "roll_mean_28", "gain": 1.0}]),
    }
    tables.MODEL_CARDS.write_partition(warehouse.Warehouse(root), "1", pd.DataFrame([card]))
    for asset, check in (
        ("raw_sales", "parses"),
        ("sales_long", "sales_long_complete"),
        ("features", "features_within_catalog_rules"),
    ):
        result = {
            "asset": asset,
            "check": check,
            "passed": True,
            "severity": "ERROR",
            "description": "",
            "evaluated_at": "2016-05-23T03:00:00+00:00",
            "run_id": "bench",
        }
        tables.CHECK_RESULTS.write_partition(warehouse.Warehouse(root), f"{asset}.{check}", pd.DataFrame([result]))


def main() -> int:
    data = HERE / ".cache" / "dashboard-full"
    build(data)
    os.environ["M5_DATA_DIR"] = str(data)
    from streamlit.testing.v1 import AppTest

    pages = ["home", "forecasting", "performance", "data_quality"]
    print(f"\n== dashboard pages, full scale ({data}) ==")
    print(f"{'page':14s} {'first view s':>13s} {'cached view s (best of 3)':>26s} {'cached / first':>15s}")
    timings = {}
    for page in pages:
        runs = []
        for _ in range(4):
            started = time.perf_counter()
            app = AppTest.from_file(
                str(HERE.parent / "m5_dashboard" / "pages" / f"{page}.py"), default_timeout=120
            ).run()
            runs.append(time.perf_counter() - started)
            if app.exception:
                raise SystemExit(f"{page}: {app.exception[0].message}")
        timings[page] = (runs[0], min(runs[1:]))
        print(f"{page:14s} {runs[0]:13.2f} {min(runs[1:]):26.2f} {min(runs[1:]) / runs[0]:14.2f}x")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    cached = max(c for _, c in timings.values())
    print(
        f"every page cached < {TARGETS['cached_s']} s: slowest {cached:.2f} s -> {'met' if cached < TARGETS['cached_s'] else 'MISSED'}"
    )
    home = timings["home"][0]
    print(
        f"Home's first view < {TARGETS['home_first_s']} s: {home:.2f} s -> {'met' if home < TARGETS['home_first_s'] else 'MISSED'}"
    )
    print(
        f"process peak < {TARGETS['peak_mib']} MiB: {peak} MiB -> {'met' if peak < TARGETS['peak_mib'] else 'MISSED'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
