"""A new user's first ``m5 run`` at Kaggle scale, end to end, then the same command again.

Uses the full-scale raw files ``bench_features.py`` generates into ``benchmarks/.cache`` (it
generates them if they are missing). Each run starts from a fresh data folder holding only those
files, runs ``m5 run`` as a subprocess, samples the resident memory of its whole process tree
every half second, and then reads the stages back from the run's own Dagster instance: every
job's runs and their steps, and each model's training stages (read, early-stopped fit, final
rounds) from its materialization. A second ``m5 run`` on the same folder, with nothing changed,
shows what a rerun costs.

    python benchmarks/bench_first_run.py [--repeat 2] [--keep DIR]

Prints the stage table, each target met or MISSED, and exits non-zero on a miss.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RAW = HERE / ".cache" / "full-seed42" / "raw"
TARGETS = {"first_seconds": 15 * 60, "first_peak_mib": 8 * 1024, "second_seconds": 60}


def _environment(folder: Path) -> dict[str, str]:
    env = os.environ | {"M5_DATA_DIR": str(folder), "DAGSTER_HOME": str(HERE.parent)}
    env.pop("MLFLOW_TRACKING_URI", None)
    for name in ("M5_DAGSTER_STORAGE", "M5_DAGSTER_ARTIFACTS", "M5_DAGSTER_LOGS"):
        env[name] = str(folder / "dagster" / name.rsplit("_", 1)[1].lower())
    return env


def _tree_rss_mib(root: int) -> int:
    """Resident memory of ``root`` and every process below it, MiB."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/statm") as statm:
                rss[int(entry)] = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue  # ended while listed
        children.setdefault(int(fields[1]), []).append(int(entry))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total // 2**20


def timed_run(folder: Path, log: Path) -> dict:
    """``m5 run`` on ``folder`` as a subprocess: its seconds, exit code, the peak of its tree and
    the tree's resident memory every half second (wall-clock time, MiB)."""
    samples: list[tuple[float, int]] = []
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "m5_assets.cli", "run"], env=_environment(folder), cwd=folder, stdout=out, stderr=out
        )
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.5):
                samples.append((time.time(), _tree_rss_mib(proc.pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        code = proc.wait()
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    return {"seconds": seconds, "code": code, "peak_mib": max((m for _, m in samples), default=0), "samples": samples}


def stages(folder: Path) -> list[tuple[str, float, float, float]]:
    """Each run the instance in ``folder`` recorded, oldest first, with its steps and, for a model,
    its training stages: (name, seconds, start, end) rows, a step's name indented under its run's
    (start and end are wall-clock times, 0 for the training stages, which only have seconds)."""
    script = """
import json, dagster as dg
instance = dg.DagsterInstance.get()
rows = []
for run in reversed(instance.get_runs()):
    stats = instance.get_run_stats(run.run_id)
    tags = run.tags
    what = tags.get("dagster/partition") or (
        f"{tags['dagster/asset_partition_range_start']} .. {tags['dagster/asset_partition_range_end']}"
        if "dagster/asset_partition_range_start" in tags else "")
    start, end = stats.start_time or 0, stats.end_time or 0
    rows.append([f"{run.job_name} {what}".strip(), end - start, start, end])
    for step in instance.get_run_step_stats(run.run_id):
        start, end = step.start_time or 0, step.end_time or 0
        rows.append(["  " + step.step_key, end - start, start, end])
    if run.job_name == "train_model":
        records = instance.fetch_materializations(dg.AssetKey("demand_model"), limit=100).records
        for record in records:
            event = record.event_log_entry
            if event.run_id == run.run_id:
                meta = event.asset_materialization.metadata
                for name, seconds in meta["training_seconds_by_stage"].value.items():
                    rows.append([f"    training: {name}", seconds, 0, 0])
                rows.append(["    training: rounds (best iteration)", meta["best_iteration"].value, 0, 0])
print(json.dumps(rows))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], env=_environment(folder), capture_output=True, text=True, check=True
    )
    return [tuple(row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


def fresh_folder(parent: Path) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="bench-first-run-", dir=parent))
    (folder / "raw").mkdir()
    for path in RAW.glob("*.csv"):
        try:
            os.link(path, folder / "raw" / path.name)  # the run only reads them
        except OSError:
            shutil.copy(path, folder / "raw" / path.name)
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="first runs, each on a fresh folder (best is kept)")
    parser.add_argument("--keep", type=Path, help="keep the data folders under DIR (default: deleted)")
    args = parser.parse_args()
    if not (RAW / "sales_train_evaluation.csv").exists():
        print("generating the full-scale raw files first (bench_features.py) ...", flush=True)
        subprocess.run([sys.executable, str(HERE / "bench_features.py"), "--skip-peers", "--repeat", "1"], check=True)
    parent = args.keep or Path(tempfile.mkdtemp(prefix="bench-first-run-"))
    parent.mkdir(parents=True, exist_ok=True)
    firsts = []
    try:
        for k in range(args.repeat):
            folder = fresh_folder(parent)
            print(f"first run {k + 1} of {args.repeat} in {folder} ...", flush=True)
            first = timed_run(folder, folder / "first-run.log")
            first |= {"folder": folder, "stages": stages(folder)}
            print(f"  {first['seconds']:.1f} s, peak {first['peak_mib']:,} MiB, exit {first['code']}", flush=True)
            firsts.append(first)
        best = min(firsts, key=lambda r: r["seconds"])
        print(f"second run, nothing changed, in {best['folder']} ...", flush=True)
        second = timed_run(best["folder"], best["folder"] / "second-run.log")
        print(f"  {second['seconds']:.1f} s, peak {second['peak_mib']:,} MiB, exit {second['code']}", flush=True)
        return report(firsts, best, second)
    finally:
        if args.keep is None:
            shutil.rmtree(parent, ignore_errors=True)


def report(firsts: list[dict], best: dict, second: dict) -> int:
    print(f"\n== m5 run at full scale on a fresh data folder, 2 cores: best of {len(firsts)} ==\n")
    print("| stage (a Dagster run, its steps) | seconds | peak MiB of the process tree |\n| --- | --- | --- |")
    for name, seconds, start, end in best["stages"]:
        shown = name.replace("  ", "&nbsp;&nbsp;")
        during = [mib for t, mib in best["samples"] if start <= t <= end]
        print(f"| {shown} | {seconds:,.1f} | {f'{max(during):,}' if during else ''} |")
    every = ", ".join(f"{r['seconds']:.0f}" for r in firsts)
    print(f"| **whole `m5 run`** (first runs: {every} s) | **{best['seconds']:,.1f}** | **{best['peak_mib']:,}** |")
    checks = [
        ("first run, seconds", best["seconds"], TARGETS["first_seconds"]),
        ("first run, peak MiB of the process tree", max(r["peak_mib"] for r in firsts), TARGETS["first_peak_mib"]),
        ("second run, nothing changed, seconds", second["seconds"], TARGETS["second_seconds"]),
    ]
    print()
    missed = 0
    for name, value, target in checks:
        met = value <= target
        missed += not met
        print(f"{name}: {value:,.1f} ({value / target:.2f}x the target {target:,}) -> {'met' if met else 'MISSED'}")
    failed = sum(r["code"] != 0 for r in [*firsts, second])
    if failed:
        print(f"{failed} run(s) exited with an error: see first-run.log / second-run.log (--keep DIR keeps them)")
    return 1 if missed or failed else 0


if __name__ == "__main__":
    sys.exit(main())
