"""Accuracy on 280 genuine M5 series (real_280): the rolling-origin backtest against its targets.

Copies ``real_280`` (the Kaggle files of 280 genuine series, whole history) into a fresh data
folder, times ``m5 run`` there as a new user's first run (target: under 90 s on an idle machine),
then runs ``m5 backtest`` (53 forecast dates, a model each month, the peers beside it) and prints
the table of methods and each accuracy target, met or missed: on every date, and on the dates
from 2015-11-01 alone, on which no design choice was made.

    python benchmarks/bench_genuine.py [--data ../shared/data/m5/real_280] [--keep DIR] [--no-mlforecast]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_DATA = HERE.parents[1] / "shared" / "data" / "m5" / "real_280"
RUN_SECONDS_TARGET = 90.0


def _m5(data_dir: Path, *args: str) -> float:
    """Run the ``m5`` command on ``data_dir`` as a user would; its seconds."""
    env = os.environ | {"M5_DATA_DIR": str(data_dir)}
    env.pop("MLFLOW_TRACKING_URI", None)
    for name in ("M5_DAGSTER_STORAGE", "M5_DAGSTER_ARTIFACTS", "M5_DAGSTER_LOGS"):
        env[name] = str(data_dir / "dagster" / name.rsplit("_", 1)[1].lower())
    env.setdefault("DAGSTER_HOME", str(HERE.parent))
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "m5_assets.cli", *args], env=env, cwd=data_dir)
    if done.returncode not in (0, 1):
        raise SystemExit(f"m5 {' '.join(args)} exited with {done.returncode}")
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("M5_REAL_280", DEFAULT_DATA)))
    parser.add_argument("--keep", type=Path, help="data folder to use and keep (default: a temporary one)")
    parser.add_argument("--no-mlforecast", action="store_true", help="leave the mlforecast peer out")
    args = parser.parse_args()
    if not (args.data / "calendar.csv").is_file():
        print(f"genuine files not found in {args.data}", file=sys.stderr)
        return 2
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench-genuine-"))
    try:
        (folder / "raw").mkdir(parents=True, exist_ok=True)
        for path in args.data.glob("*.csv"):
            shutil.copy(path, folder / "raw" / path.name)
        run_seconds = _m5(folder, "run")
        backtest_seconds = _m5(folder, "backtest", *(["--no-mlforecast"] if args.no_mlforecast else []))
        from m5_assets import reader
        from m5_assets.backtest import report
        from m5_assets.backtest.origins import DESIGN_ORIGINS_BEFORE

        scores = reader.read_backtest(folder / "warehouse")
        print(f"\n# bench_genuine: {args.data}")
        print(
            f"m5 run on a fresh folder: {run_seconds:.1f} s ({run_seconds / RUN_SECONDS_TARGET:.2f} x the {RUN_SECONDS_TARGET:.0f} s target: "
            f"{'met' if run_seconds <= RUN_SECONDS_TARGET else 'MISSED'}); m5 backtest: {backtest_seconds:.0f} s"
        )
        missed = 0
        for title, frame in (
            ("all forecast dates", scores),
            (f"forecast dates from {DESIGN_ORIGINS_BEFORE}", report.later(scores, DESIGN_ORIGINS_BEFORE)),
        ):
            print(f"\n## {title} ({frame['origin'].nunique()})\n")
            print(report.method_table(frame).round(4).to_markdown(index=False))
            targets = report.target_table(frame)
            print()
            print(targets.round(4).to_markdown(index=False))
            missed += int((targets["met"] != "met").sum())
        print("\n## intervals, all dates\n")
        print(report.interval_table(scores).round(2).to_markdown(index=False))
        return 0 if missed == 0 else 1
    finally:
        if args.keep is None:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
