"""The ``m5`` command: generate the embedded data set, run the pipeline, print what it made."""

from __future__ import annotations

import argparse
import datetime as dt
import fcntl
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from m5_assets import library_env, tables
from m5_assets.settings import DataPaths, SettingsError, data_paths, load_settings

BACKTEST_PARTITIONS = 7
RUN_LOCK = ".m5-run.lock"  # in the data folder; holds the PID of the m5 run that has it


class _Printed(logging.Handler):
    """Log records printed to whatever ``sys.stdout`` is when they arrive."""

    def emit(self, record: logging.LogRecord) -> None:
        print(self.format(record), flush=True)


def _generate(args: argparse.Namespace) -> int:
    from m5_assets.generator import SCALES, generate

    scale = SCALES[args.scale]
    end = dt.date.fromisoformat(args.end_date) if args.end_date else None
    started = time.perf_counter()
    kwargs = {"end_date": end} if end else {}
    try:
        paths = generate(scale, args.out, seed=args.seed, progress=args.scale == "full" or args.progress, **kwargs)
    except FileExistsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"wrote {scale.name} data set ({scale.n_series:,} series x {scale.n_days:,} days, seed {args.seed}) "
        f"to {Path(args.out).resolve()} in {time.perf_counter() - started:.1f}s:"
    )
    for path in paths.values():
        print(f"  {path.name:32s} {path.stat().st_size / 2**20:8.1f} MiB")
    return 0


@contextmanager
def _one_run_at_a_time(root: Path) -> Iterator[None]:
    """Hold the data folder for this run. Two runs at once on one folder would both generate the
    demo set and both create MLflow's SQLite store (one crashes: "duplicate column name: step");
    a second run therefore waits for the first, saying which process it waits for."""
    root.mkdir(parents=True, exist_ok=True)
    lock = root / RUN_LOCK
    lock.touch()
    with open(lock, "r+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = handle.read().strip() or "unknown"
            print(f"another m5 run (PID {holder}) is using {root}: waiting for it to finish ...", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
            print("... it finished: this run goes on", flush=True)
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)


def _no_instance(paths: DataPaths) -> bool:
    """Whether there is no Dagster instance to record runs in (and say so, before any work)."""
    problem = library_env.point_dagster_instance_at(paths)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
    return problem is not None


def _run(args: argparse.Namespace) -> int:
    if _no_instance(data_paths()):
        return 2
    with _one_run_at_a_time(data_paths().root):
        return _run_locked(args)


def _run_locked(args: argparse.Namespace) -> int:
    from m5_assets.generator import SCALES, generate
    from m5_assets.raw_files import locate_raw_files, visible_entries

    paths = data_paths()
    if not visible_entries(paths.raw):
        print(f"no files in {paths.raw}: generating the '{args.scale}' demo data set there")
        # Ending yesterday, the newest forecast partition is today's: the daily schedule is real.
        generate(SCALES[args.scale], paths.raw, progress=True, end_date=dt.date.today() - dt.timedelta(days=1))
    else:
        # Some files are there: they are the user's, and a partial set, a foreign archive or an
        # unrelated file is an error, never a reason to generate demo data beside them.
        try:
            files = locate_raw_files(paths.raw)
        except FileNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        names = f"{files.calendar.name}, {files.prices.name}, {files.sales.name}"
        if files.archive is not None:
            print(f"using the Kaggle archive {files.archive}: {names} (unpacked into {files.sales.parent})")
        else:
            print(f"using the raw files in {paths.raw}: {names}")

    code = _run_jobs(args, paths)
    print(f"\noutputs: {paths.warehouse}/<asset>/data.parquet; run history: `make ui` (http://127.0.0.1:3000)")
    return code


def _quiet_libraries(paths: DataPaths) -> None:
    """Environment and logging for a run in this process: libraries quiet, the user's progress printed."""
    library_env.quiet_mlflow()
    library_env.point_dagster_instance_at(paths)
    progress = logging.getLogger("m5_assets.progress")
    progress.setLevel(logging.INFO)
    progress.propagate = False
    if not progress.handlers:
        handler = _Printed()
        handler.setFormatter(logging.Formatter("  %(asctime)s %(message)s", "%H:%M:%S"))
        progress.addHandler(handler)


def _run_jobs(args: argparse.Namespace, paths: DataPaths) -> int:
    """The feature store, the models, the newest forecast and the backtest, each summarized; each
    run that an earlier ``m5 run`` already did with the same files, code and inputs is skipped."""
    _quiet_libraries(paths)
    import dagster as dg

    from m5_assets.definitions import build_definitions
    from m5_assets.defs.automation import ISSUE_FORECAST_JOB, SCORE_FORECAST_JOB, file_state, snapshot
    from m5_assets.defs.jobs import FEATURE_STORE_JOB, TRAIN_MODEL_JOB
    from m5_assets.defs.launch import CodeLocationRuns
    from m5_assets.defs.resources import default_data_resource
    from m5_assets.defs.summary import print_backtest, print_summary
    from m5_assets.defs.up_to_date import Chain, skipped_line
    from m5_assets.features.catalog import HORIZON
    from m5_assets.model.selection import WINDOWS, months_before
    from m5_assets.reader import newest_forecast_date, read_accuracy
    from m5_assets.table_files import MANIFEST

    # Built now, not imported: bound to the folder checked above whatever the process saw when it
    # first imported the code location, and the same definitions `make ui` loads from these settings,
    # so the runs' job snapshots are the ones the UI shows.
    defs = build_definitions(default_data_resource())
    instance = dg.DagsterInstance.get()
    runs = CodeLocationRuns(defs, instance)
    # The summary says what failed and why; the step-by-step log, stack traces included, stays in
    # the run's view in the UI, so the terminal shows a data error as a message, not a crash.
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    # The known genuine days change what the features cap, as a raw file changes what they read.
    genuine = paths.genuine_days
    inputs = {"raw": snapshot(paths.raw), "known_genuine_days": file_state(genuine) if genuine.exists() else None}
    chain = Chain(instance, json.dumps(inputs, sort_keys=True) + load_settings().model_dump_json())
    skipped: list[str] = []

    def launch(
        job: str,
        what: str,
        outputs: list[Path],
        partition_key: str | None = None,
        tags: dict[str, str] | None = None,
    ) -> dg.JobExecutionResult | None:
        """``job`` run for ``what`` (None when an earlier run already did it, which is said)."""
        done = chain.done(job, what, outputs)
        if done is not None:
            print(skipped_line(job, what, done, instance))
            skipped.append(done.run_id)
            chain.add(done.run_id)
            return None
        started = time.perf_counter()
        tags = chain.tags(job, what) | (tags or {})
        if partition_key is None:
            result = runs.execute(job, quiet, tags)
        else:
            result = runs.execute_partition(job, partition_key, quiet, tags)
        print_summary(result, time.perf_counter() - started)
        chain.add(result.run_id)
        return result

    features_done = [tables.FEATURES.folder(paths.warehouse) / MANIFEST]
    result = launch(FEATURE_STORE_JOB, "", features_done)
    if (result is not None and not result.success) or args.skip_model:
        return 0 if result is None or result.success else 1

    newest = newest_forecast_date(paths)
    backtest = [newest - dt.timedelta(days=HORIZON + k) for k in reversed(range(BACKTEST_PARTITIONS))]
    train = defs.resolve_job_def(TRAIN_MODEL_JOB)
    # The backtest's forecasts need a model whose cutoff is not after their first day; older first,
    # so the newer model meets it as the champion it must beat. Each model chooses how it issues
    # on its validation window and the stored ones of the months before: those are trained too.
    # demand_model, all the job selects, is partitioned by month from a fixed start: it has partitions.
    monthly = train.partitions_def
    assert monthly is not None
    newest_month = monthly.get_last_partition_key()
    assert newest_month is not None
    first, last = backtest[0].replace(day=1), dt.date.fromisoformat(newest_month)
    months = [*months_before(first, WINDOWS), first]
    while months[-1] < last:
        months.append((months[-1] + dt.timedelta(days=31)).replace(day=1))
    known = set(monthly.get_partition_keys())
    cutoffs = [m.isoformat() for m in months if m.isoformat() in known]
    for cutoff in cutoffs:
        print(f"\ntraining model partition {cutoff} ...")
        result = launch(TRAIN_MODEL_JOB, cutoff, [], partition_key=cutoff)
        if result is not None and not result.success:
            return 1

    def days(first: dt.date, last: dt.date) -> list[dt.date]:
        return [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]

    # The backtest is issued before the newest forecast: the UI names the partition materialized
    # last as an asset's latest, and that should be the newest day, not four weeks before it.
    ranges = [
        (
            f"backtest: issuing {BACKTEST_PARTITIONS} forecasts",
            ISSUE_FORECAST_JOB,
            backtest[0],
            backtest[-1],
            tables.FORECASTS,
        ),
        ("issuing the newest forecast", ISSUE_FORECAST_JOB, newest, newest, tables.FORECASTS),
        (
            "backtest: scoring them against actuals",
            SCORE_FORECAST_JOB,
            backtest[0],
            backtest[-1],
            tables.FORECAST_ACCURACY,
        ),
    ]
    withheld = False
    for title, job, first, last, output in ranges:
        print(f"\n{title} ({first} .. {last}) ...")
        tags = {
            "dagster/asset_partition_range_start": first.isoformat(),
            "dagster/asset_partition_range_end": last.isoformat(),
        }
        outputs = [output.path(paths.warehouse, day) for day in days(first, last)]
        result = launch(job, f"{first}..{last}", outputs, tags=tags)
        if result is not None and not result.success:
            # A plan refused by its check leaves the forecasts published: they are still scored,
            # so the user sees how far off they are, and the run still ends as failed.
            if {e.step_key for e in result.get_step_failure_events()} != {tables.INVENTORY_PLAN.name}:
                return 1
            withheld = True
    print_backtest(read_accuracy(paths.warehouse), backtest)
    if skipped:
        print(
            f"\n{len(skipped)} of {len(chain.runs)} runs were up to date and skipped (same raw files, code and "
            "inputs as a successful earlier run); `make clean` starts afresh"
        )
    if withheld:
        print(
            "\ninventory plans were withheld (see above): their forecasts are beyond what the series' history justifies"
        )
        return 1
    return 0


def _backtest(args: argparse.Namespace) -> int:
    if _no_instance(data_paths()):
        return 2
    with _one_run_at_a_time(data_paths().root):
        return _backtest_locked(args)


def _backtest_locked(args: argparse.Namespace) -> int:
    import dagster as dg

    from m5_assets.backtest.origins import DESIGN_ORIGINS_BEFORE
    from m5_assets.definitions import build_definitions
    from m5_assets.defs.backtest import BACKTEST_JOB
    from m5_assets.defs.jobs import FEATURE_STORE_JOB
    from m5_assets.defs.launch import CodeLocationRuns
    from m5_assets.defs.resources import default_data_resource
    from m5_assets.defs.summary import print_backtest_report, print_summary
    from m5_assets.reader import read_backtest
    from m5_assets.table_files import MANIFEST

    paths = data_paths()
    _quiet_libraries(paths)
    runs = CodeLocationRuns(build_definitions(default_data_resource()), dg.DagsterInstance.get())
    quiet = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
    if not (tables.FEATURES.folder(paths.warehouse) / MANIFEST).exists():
        print(f"no feature store in {paths.warehouse}: building it first ...")
        started = time.perf_counter()
        result = runs.execute(FEATURE_STORE_JOB, quiet, {})
        print_summary(result, time.perf_counter() - started)
        if not result.success:
            return 1
    print(f"\nbacktest: {args.weeks} weeks of forecasts, a monthly model each month (registered as m5-backtest) ...")
    config = {
        "ops": {
            tables.BACKTEST_REPORT.name: {"config": {"weeks": args.weeks, "mlforecast_peer": not args.no_mlforecast}}
        }
    }
    started = time.perf_counter()
    result = runs.execute(BACKTEST_JOB, quiet | config, {})
    print_summary(result, time.perf_counter() - started)
    if not result.success:
        return 1
    print_backtest_report(read_backtest(paths.warehouse), DESIGN_ORIGINS_BEFORE)
    print(f"\ntable: {tables.BACKTEST_REPORT.path(paths.warehouse)}; the dashboard's Performance page shows it")
    return 0


def _migrate_warehouse(args: argparse.Namespace) -> int:
    from m5_assets.features.build import row_groups_of
    from m5_assets.grid import SERIES_COLUMNS
    from m5_assets.table_files import migrate_to_store_files
    from m5_assets.warehouse import open_warehouse

    settings = load_settings()
    paths = data_paths()
    storage = open_warehouse(paths.warehouse, settings.warehouse_url)
    storage.pull()
    moved = 0
    for table in tables.ALL:
        if not table.by_store:
            continue
        started = time.perf_counter()
        files = migrate_to_store_files(storage, table.folder(paths.warehouse), row_groups_of, SERIES_COLUMNS)
        if files is None:
            print(f"{table.name}: already stored by store (or not built yet); nothing to move")
            continue
        moved += 1
        print(
            f"{table.name}: {files.rows:,} rows moved to {len(files.stores)} files by store "
            f"(generation {files.generation}) in {time.perf_counter() - started:.1f} s"
        )
    print(f"{moved} table(s) moved in {storage.display}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from m5_assets.reader import WarehouseReader
    from m5_assets.submission import to_csv

    paths = data_paths()
    reader = WarehouseReader(paths, load_settings().warehouse_url)
    reader.sync(force=True)
    stored = reader.forecast_dates()
    day = dt.date.fromisoformat(args.forecast_date) if args.forecast_date else (stored[-1] if stored else None)
    if day not in stored:
        shown = ", ".join(str(d) for d in stored[-5:]) or "none yet: run `m5 run`"
        print(f"error: no forecast issued on {day}; stored: {shown}", file=sys.stderr)
        return 2
    try:
        frame = reader.submission(day)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    target = Path(args.out) if args.out else paths.root / "exports" / f"submission_{day}.csv"
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(to_csv(frame))
    partial.replace(target)  # whole or not at all
    print(f"{target}: {len(frame):,} rows ({len(frame) // 2:,} series x _validation, _evaluation), forecast of {day}")
    return 0


def parser() -> argparse.ArgumentParser:
    """The ``m5`` command's arguments (the command-line reference page is generated from them)."""
    cli = argparse.ArgumentParser(prog="m5", description="m5-forecasting command line")
    commands = cli.add_subparsers(dest="command", required=True)

    gen = commands.add_parser("generate", help="write a synthetic Kaggle M5 file set")
    gen.add_argument(
        "--scale",
        choices=["tiny", "small", "full"],
        default="small",
        help="30, 1,150 or 30,490 series (see Getting started)",
    )
    gen.add_argument(
        "--out", required=True, help="folder to write calendar.csv, sell_prices.csv, sales_train_evaluation.csv"
    )
    gen.add_argument("--seed", type=int, default=42, help="the generator's seed: the same seed writes the same files")
    gen.add_argument("--end-date", help="last day of sales, YYYY-MM-DD (default: 2016-05-22, as in M5)")
    gen.add_argument("--progress", action="store_true", help="show a progress bar (always on for full)")
    gen.set_defaults(handler=_generate)

    run = commands.add_parser("run", help="materialize the pipeline in this process and print a summary")
    run.add_argument("--skip-model", action="store_true", help="build the feature store only")
    run.add_argument(
        "--scale", choices=["tiny", "small", "full"], default="small", help="demo scale when data/raw is empty"
    )
    run.set_defaults(handler=_run)

    back = commands.add_parser(
        "backtest", help="replay the last 52 weeks: monthly models, a forecast every 7 days, scored beside peers"
    )
    back.add_argument("--weeks", type=int, default=52, help="weeks to replay (default 52: 53 forecast dates)")
    back.add_argument(
        "--no-mlforecast",
        action="store_true",
        help="leave the mlforecast peer out (it trains a second model each month)",
    )
    back.set_defaults(handler=_backtest)

    migrate = commands.add_parser(
        "migrate-warehouse",
        help="move tables written before the feature store was stored by store to the current layout",
    )
    migrate.set_defaults(handler=_migrate_warehouse)

    export = commands.add_parser("export", help="write a stored forecast as a Kaggle M5 submission file (id, F1..F28)")
    export.add_argument("--forecast-date", help="the forecast issued on this day, YYYY-MM-DD (default: the newest)")
    export.add_argument("--out", help="the CSV to write (default: <data dir>/exports/submission_<date>.csv)")
    export.set_defaults(handler=_export)
    return cli


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        load_settings()
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
