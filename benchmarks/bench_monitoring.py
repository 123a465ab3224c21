"""Feature drift and the inventory plan of one forecast partition at full scale.

Uses the warehouse ``bench_features.py`` leaves in ``benchmarks/.cache``. Each measurement runs in
its own process, so its peak resident memory is its own:

- ``feature_drift``: the serving model's validation window (the 28 days before its cutoff) read
  and prepared, the forecast's 28 days of rows read, and every drift feature judged pooled and per
  department against its no-change PSI (item swaps): what the asset does for a one-partition run.
  Baseline in the same run: reading the two windows alone.
- ``inventory_plan``: the plan of one forecast partition (every series x 28 days) with prices,
  written atomically. The forecast partition is made from the feature rows (the 28-day mean as
  the point, its square root as the interval's upper half): the plan's cost depends on the rows,
  not on the model. Baseline in the same run: reading those 28 days' feature rows alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from workers import feature_store, peak_mib, run_worker

HERE = Path(__file__).resolve().parent
TARGET_SECONDS, TARGET_MIB = 30, 3 * 1024


def _drift(features: Path, day: dt.date, judge: bool) -> dict:
    from m5_assets import warehouse
    from m5_assets.monitoring.drift import drift_table, prepare, read_window

    con = warehouse.connect()
    started = time.perf_counter()
    cutoff = day.replace(day=1)
    reference = read_window(con, features, cutoff - dt.timedelta(days=28), cutoff)
    current = read_window(con, features, day, day + dt.timedelta(days=28))
    out: dict[str, float] = {"reference_rows": len(reference["date"]), "current_rows": len(current["date"])}
    if judge:
        table = drift_table(prepare(reference), current)
        out |= {"features": len(table), "max_score": float(table["score"].max())}
    return out | {"seconds": time.perf_counter() - started, "peak_mib": peak_mib()}


def _forecast_rows(features: Path, day: dt.date):
    import numpy as np
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from m5_assets.grid import SERIES_COLUMNS

    wanted = (
        (pc.field("date") >= day) & (pc.field("date") < day + dt.timedelta(days=28)) & pc.field("sell_price").is_valid()
    )
    rows = pq.read_table(features, columns=[*SERIES_COLUMNS, "date", "roll_mean_28"], filters=wanted).to_pandas()
    point = np.nan_to_num(rows.pop("roll_mean_28").to_numpy(dtype=np.float64))
    horizon = (rows["date"].astype("datetime64[ns]") - np.datetime64(day)).dt.days + 1
    return rows.assign(horizon=horizon, forecast=point, hi_80=point + np.sqrt(point))


def _inventory(features: Path, day: dt.date, plan_it: bool) -> dict:
    from m5_assets import tables, warehouse
    from m5_assets.forecast.inventory import Policy, plan, policies_for

    started = time.perf_counter()
    bottom = _forecast_rows(features, day)
    out = {"rows": len(bottom)}
    if plan_it:
        prices = (
            warehouse.connect()
            .sql(f"SELECT id, sell_price FROM read_parquet('{features}') WHERE date = DATE '{day}'")
            .df()
        )
        series = bottom.drop_duplicates("id").set_index("id")[["store_id", "dept_id"]]
        planned = plan(bottom, prices.set_index("id")["sell_price"], policies_for(series, Policy()))
        with tempfile.TemporaryDirectory(prefix="bench-inventory-") as folder:
            tables.INVENTORY_PLAN.write_partition(warehouse.Warehouse(Path(folder)), day, planned)
        out["series"] = len(planned)
    return out | {"seconds": time.perf_counter() - started, "peak_mib": peak_mib()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--day", default="2016-04-25", help="the forecast date measured")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    features = feature_store(HERE / ".cache" / f"{args.scale}-seed{args.seed}" / "warehouse")
    if args.worker:
        kind, day = args.worker[0], dt.date.fromisoformat(args.worker[1])
        result = {
            "drift": lambda: _drift(features, day, True),
            "drift_read": lambda: _drift(features, day, False),
            "inventory": lambda: _inventory(features, day, True),
            "read": lambda: _inventory(features, day, False),
        }[kind]()
        print(json.dumps(result))
        return 0
    if not features.exists():
        print(f"{features} is missing: run benchmarks/bench_features.py first")
        return 1

    def worker(kind: str) -> dict:
        return run_worker(__file__, "--scale", args.scale, "--seed", str(args.seed), "--worker", kind, args.day)

    drift, exact = worker("drift"), worker("drift_read")
    inventory, read = worker("inventory"), worker("read")

    def verdict(r: dict) -> str:
        return "met" if r["seconds"] < TARGET_SECONDS and r["peak_mib"] < TARGET_MIB else "MISSED"

    print(f"\n== monitoring and inventory, {args.scale} scale, forecast date {args.day} ==")
    print(
        f"feature_drift: {drift['features']} features, {drift['reference_rows']:,} validation-window and {drift['current_rows']:,} "
        f"forecast rows, {drift['seconds']:.1f} s, peak {drift['peak_mib']} MiB (target < {TARGET_SECONDS} s, < {TARGET_MIB} MiB) "
        f"-> {verdict(drift)}; largest score {drift['max_score']:.4f}"
    )
    print(
        f"  baseline, reading the two windows alone: {exact['seconds']:.1f} s, peak {exact['peak_mib']} MiB; "
        f"judged / read: {drift['seconds'] / exact['seconds']:.2f}x time"
    )
    print(
        f"inventory_plan: {inventory['series']:,} item-stores from {inventory['rows']:,} forecast rows, {inventory['seconds']:.1f} s, "
        f"peak {inventory['peak_mib']} MiB -> {verdict(inventory)}"
    )
    print(
        f"  baseline, reading the 28 days' rows alone: {read['seconds']:.1f} s, peak {read['peak_mib']} MiB; "
        f"plan / read: {inventory['seconds'] / read['seconds']:.2f}x time"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
