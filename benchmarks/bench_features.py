"""Full-scale benchmark: raw files -> sales_long -> features, and the lag/rolling subset against peers.

Run with ``make bench``. It generates the full M5-shaped data set once (cached under
``benchmarks/.cache``), then runs every stage and every engine in its own subprocess so each
one's peak resident memory is its own. Peers compute the feature subset they can express —
the same lags and the same rolling means and standard deviations over units lagged 28 days —
on the same long table: Nixtla's mlforecast (``MLForecast.preprocess``) and plain pandas
(groupby / shift / rolling). Figures are printed as ratios to ours, measured in the same run. Each engine gets two threads
(the machine's cores) and materializes every feature for every row in memory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from workers import peak_mib, run_worker

HERE = Path(__file__).resolve().parent
# Issue 26: raw -> features <= 30 s and 2 GiB (120 s and 6 GiB before).
TARGETS = {"raw_to_features_seconds": 30, "raw_to_features_peak_mib": 2 * 1024, "vs_mlforecast": 2.0, "vs_pandas": 3.0}


# --- workers (each runs in its own process) -------------------------------------------------


def _stage(name: str, data: Path) -> dict:
    from m5_assets import ingest, raw_files, warehouse
    from m5_assets.features.build import build_features, load_inputs, write_store_features
    from m5_assets.long_table import build_sales_long
    from m5_assets.table_files import StoreFiles, new_generation, publish_store_files, read_store_files

    out = data / "warehouse"
    local = warehouse.Warehouse(out)
    con = warehouse.connect(data / "tmp", "12GB")
    started = time.perf_counter()
    if name == "raw_to_long":
        files = raw_files.locate_raw_files(data / "raw")
        ingest.copy_raw_csv(
            con,
            files.calendar,
            ingest.calendar_types(raw_files.read_header(files.calendar)),
            out / "cal.parquet",
            storage=local,
        )
        ingest.copy_raw_csv(con, files.prices, ingest.PRICES_TYPES, out / "prices.parquet", storage=local)
        ingest.copy_raw_csv(
            con,
            files.sales,
            ingest.sales_types(raw_files.read_header(files.sales)),
            out / "sales.parquet",
            storage=local,
        )
        build_sales_long(
            con, out / "sales.parquet", out / "cal.parquet", out / "prices.parquet", out / "long.parquet", storage=local
        )
    elif name in ("read_strict", "read_casting"):
        # The baseline is what a plain DuckDB read does: cast each value to its column's type,
        # rounding 1.5 to 2. Ours reads integers as DOUBLE, casts back only whole ones, and
        # checks one row per line, so a bad value is an error instead.
        files = raw_files.locate_raw_files(data / "raw")
        for source, types in (
            (files.calendar, ingest.calendar_types(raw_files.read_header(files.calendar))),
            (files.prices, ingest.PRICES_TYPES),
            (files.sales, ingest.sales_types(raw_files.read_header(files.sales))),
        ):
            target = out / f"read-{source.stem}.parquet"
            if name == "read_strict":
                ingest.copy_raw_csv(con, source, types, target, storage=local)
            else:
                ordered = {c: types[c] for c in raw_files.read_header(source)}
                con.execute(
                    f"COPY (SELECT * FROM read_csv('{source}', header = true, auto_detect = false, columns = {ordered!r}, "
                    f"store_rejects = true, dateformat = '%Y-%m-%d')) TO '{target}' (FORMAT parquet, COMPRESSION zstd)"
                )
    elif name == "long_to_features":
        # What the features asset does: a file per store of a new generation, then its manifest.
        inputs = load_inputs(con, out / "long.parquet", out / "cal.parquet", out / "prices.parquet")
        generation = StoreFiles(out / "features", new_generation(), inputs.series["store_id"].unique())
        write_store_features(inputs, generation, storage=local)
        publish_store_files(local, generation)
    elif name == "long_to_one_file":
        # The baseline: the features asset before the store layout, one file in series order.
        build_features(
            con,
            out / "long.parquet",
            out / "cal.parquet",
            out / "prices.parquet",
            out / "one_file" / "features.parquet",
            storage=local,
        )
    elif name == "checks":
        from m5_assets.features.catalog import FEATURES
        from m5_assets.validation import feature_rules, long_rules, raw_rules

        cal, prices, sales = (
            raw_rules.RawTable(out / f, f) for f in ("cal.parquet", "prices.parquet", "sales.parquet")
        )
        found = (
            raw_rules.calendar_values(con, cal)
            + raw_rules.calendar_continuous(con, cal)
            + raw_rules.sales_units_valid(con, sales)
            + raw_rules.sales_ids_consistent(con, sales)
            + raw_rules.calendar_covers_sales(con, sales, cal)
            + raw_rules.prices_values(con, prices)
            + raw_rules.prices_keyed(con, prices, sales, cal)
            + long_rules.grid_complete(con, out / "long.parquet", out / "sales.parquet")
            + feature_rules.catalog_violations(con, read_store_files(out / "features"), FEATURES)
        )
        assert not found, [v.message() for v in found]
    return {"seconds": time.perf_counter() - started, "peak_mib": peak_mib()}


def _load_long(data: Path, series_limit: int | None):
    """The long table as every engine gets it: id (categorical), date, units as float32."""
    import pyarrow.parquet as pq

    table = pq.read_table(data / "warehouse" / "long.parquet", columns=["id", "date", "units"])
    frame = table.to_pandas(date_as_object=False).rename(columns={"id": "unique_id", "date": "ds", "units": "y"})
    if series_limit:
        frame = frame[frame["unique_id"].cat.codes < series_limit].reset_index(drop=True)
        frame["unique_id"] = frame["unique_id"].cat.remove_unused_categories()
    frame["ds"] = frame["ds"].astype("datetime64[ns]")
    frame["y"] = frame["y"].astype("float32")
    return frame


def _subset(engine: str, data: Path, series_limit: int | None, sample: Path) -> dict:
    import numpy as np

    from m5_assets.features.catalog import LAGS, MIN_LAG, WINDOWS

    frame = _load_long(data, series_limit)
    n_series = frame["unique_id"].nunique()
    started = time.perf_counter()
    if engine == "ours":
        from concurrent.futures import ThreadPoolExecutor

        from m5_assets.features.build import ROWS_PER_BLOCK, sales_features

        # The product's function over the product's blocks, on two threads as mlforecast gets;
        # every feature lands in one array for all series, as mlforecast's frame holds them.
        units = frame["y"].to_numpy().reshape(n_series, -1)
        per_block = max(1, ROWS_PER_BLOCK // units.shape[1])
        names = [f"units_lag_{k}" for k in LAGS] + [f"roll_{s}_{w}" for w in WINDOWS for s in ("mean", "std")]
        outputs = {name: np.empty(units.shape, dtype=np.float32) for name in names}

        def compute(start: int) -> None:
            for name, values in sales_features(units[start : start + per_block]).items():
                if name in outputs:  # the level and stock-out flag have no peer to compare with
                    outputs[name][start : start + per_block] = values

        with ThreadPoolExecutor(max_workers=2) as pool:
            list(pool.map(compute, range(0, n_series, per_block)))
        result = {name: outputs[name].ravel() for name in names}
    elif engine == "mlforecast":
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean, RollingStd

        transforms = [t for w in WINDOWS for t in (RollingMean(window_size=w), RollingStd(window_size=w))]
        forecaster = MLForecast(
            models=[],
            freq="D",
            lags=list(LAGS),
            # mlforecast's LagTransform alias lists only callables, but it takes (and documents)
            # its own lag_transforms objects such as RollingMean here.
            lag_transforms={MIN_LAG: transforms},  # type: ignore[dict-item]
            num_threads=2,
        )
        prepared = forecaster.preprocess(frame, static_features=[], dropna=False)
        assert not isinstance(prepared, tuple)  # return_X_y=False: the frame alone
        result = {c: prepared[c].to_numpy() for c in prepared.columns if c not in ("unique_id", "ds", "y")}
    else:
        groups = frame.groupby("unique_id", sort=False, observed=True)["y"]
        result = {f"lag{k}": groups.shift(k).to_numpy() for k in LAGS}
        shifted = groups.shift(MIN_LAG).groupby(frame["unique_id"], sort=False, observed=True)
        for w in WINDOWS:
            rolling = shifted.rolling(w)
            result[f"mean{w}"] = rolling.mean().reset_index(level=0, drop=True).to_numpy()
            result[f"std{w}"] = rolling.std().reset_index(level=0, drop=True).to_numpy()
    seconds = time.perf_counter() - started
    # Keep every 997th row of each output column, in our column order, to compare values later.
    np.save(sample, np.stack([np.asarray(v[::997], dtype=np.float64) for v in result.values()]))
    return {"seconds": seconds, "peak_mib": peak_mib(), "rows": len(frame), "series": n_series, "columns": len(result)}


def _run_worker(*args: str) -> dict:
    return run_worker(__file__, "--worker", *args)


# --- driver ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="full", choices=["tiny", "small", "full"])
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--peer-series", type=int, default=0, help="limit the peer comparison to the first N series")
    parser.add_argument("--repeat", type=int, default=3, help="runs per engine in the comparison (best is kept)")
    parser.add_argument("--pipeline-repeat", type=int, default=2, help="runs of raw -> features (best is kept)")
    parser.add_argument("--skip-peers", action="store_true", help="skip the mlforecast and pandas comparison")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        kind, *rest = args.worker
        if kind == "stage":
            report = _stage(rest[0], Path(rest[1]))
        else:
            report = _subset(rest[0], Path(rest[1]), int(rest[2]) or None, Path(rest[3]))
        print(json.dumps(report))
        return 0

    data = HERE / ".cache" / f"{args.scale}-seed{args.seed}"
    if not (data / "raw" / "sales_train_evaluation.csv").exists():
        from m5_assets.generator import SCALES, generate

        print(f"generating the {args.scale} data set once into {data}/raw ...", flush=True)
        started = time.perf_counter()
        generate(SCALES[args.scale], data / "raw", seed=args.seed, progress=True)
        print(f"generated in {time.perf_counter() - started:.1f}s")
    (data / "warehouse").mkdir(parents=True, exist_ok=True)

    # The two stages the target is on run --pipeline-repeat times, raw then features each time
    # (this machine's timings vary by a second or two from run to run): the best of each is kept.
    timed = [
        {name: _run_worker("stage", name, str(data)) for name in ("raw_to_long", "long_to_features")}
        for _ in range(args.pipeline_repeat)
    ]
    stages = {name: min((run[name] for run in timed), key=lambda r: r["seconds"]) for name in timed[0]}
    stages.update({name: _run_worker("stage", name, str(data)) for name in ("checks", "long_to_one_file")})
    total = stages["raw_to_long"]["seconds"] + stages["long_to_features"]["seconds"]
    peak = max(run[name]["peak_mib"] for run in timed for name in run)
    print(f"\n== pipeline, {args.scale} scale ({data}), raw -> features best of {args.pipeline_repeat} ==")
    print(f"{'stage':28s} {'seconds':>9s} {'peak MiB':>9s}   all runs")
    for name, report in stages.items():
        each = ", ".join(f"{run[name]['seconds']:.1f}" for run in timed) if name in timed[0] else ""
        print(f"{name:28s} {report['seconds']:9.1f} {report['peak_mib']:9d}   {each}")
    print(
        f"{'raw -> features':28s} {total:9.1f} {peak:9d}   target: <= {TARGETS['raw_to_features_seconds']} s, "
        f"<= {TARGETS['raw_to_features_peak_mib']} MiB -> {'met' if total <= TARGETS['raw_to_features_seconds'] and peak <= TARGETS['raw_to_features_peak_mib'] else 'MISSED'}"
    )
    by_store, one_file = stages["long_to_features"], stages["long_to_one_file"]
    print(
        f"features by store against one file (the layout before): {one_file['seconds'] / by_store['seconds']:.2f}x "
        f"the speed, {by_store['peak_mib'] / one_file['peak_mib']:.2f}x the peak memory"
    )

    reads = {}
    for name in ("read_casting", "read_strict"):
        runs = [_run_worker("stage", name, str(data)) for _ in range(args.repeat)]
        reads[name] = min(runs, key=lambda r: r["seconds"])
        reads[name]["all_seconds"] = [round(r["seconds"], 1) for r in runs]
    print(f"\n== reading the three raw files, best of {args.repeat} ==")
    print(f"{'read':28s} {'best s':>9s} {'peak MiB':>9s} {'vs casting':>11s}  all runs (s)")
    for name, report in reads.items():
        ratio = report["seconds"] / reads["read_casting"]["seconds"]
        print(f"{name:28s} {report['seconds']:9.1f} {report['peak_mib']:9d} {ratio:10.2f}x  {report['all_seconds']}")
    if args.skip_peers:
        return 0

    samples = {engine: data / f"sample-{engine}.npy" for engine in ("ours", "mlforecast", "pandas")}
    # This machine's timings vary from run to run; each engine runs `--repeat` times, best kept.
    subset = {}
    for engine, sample in samples.items():
        runs = [
            _run_worker("subset", engine, str(data), str(args.peer_series), str(sample)) for _ in range(args.repeat)
        ]
        subset[engine] = min(runs, key=lambda r: r["seconds"])
        subset[engine]["all_seconds"] = [round(r["seconds"], 1) for r in runs]
    ours = subset["ours"]
    print(f"\n== lag + rolling subset: {ours['series']:,} series, {ours['rows']:,} rows, {ours['columns']} columns ==")
    print(
        f"{'engine':12s} {'best s':>9s} {'peak MiB':>9s} {'ours faster by':>15s} {'max |diff| vs ours':>19s}  all runs (s)"
    )
    import numpy as np

    reference = np.load(samples["ours"])
    for engine, report in subset.items():
        values = np.load(samples[engine])
        both = ~np.isnan(reference) & ~np.isnan(values)
        agree = np.array_equal(np.isnan(reference), np.isnan(values))
        diff = float(np.max(np.abs(reference[both] - values[both]))) if both.any() else float("nan")
        ratio = report["seconds"] / ours["seconds"]
        print(
            f"{engine:12s} {report['seconds']:9.1f} {report['peak_mib']:9d} {ratio:14.2f}x {diff:19.2e}  {report['all_seconds']}"
            + ("" if agree else "  (missing values differ!)")
        )
    for engine in ("mlforecast", "pandas"):
        ratio = subset[engine]["seconds"] / ours["seconds"]
        target = TARGETS[f"vs_{engine}"]
        print(f"ours vs {engine}: {ratio:.2f}x faster, target >= {target}x -> {'met' if ratio >= target else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
