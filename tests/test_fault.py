"""A materialization killed mid-write loses nothing: every table still reads whole, no partial file
is visible to a glob over the tables, and the rerun gives what an uninterrupted run gives."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
from forecasting import feature_rows, run_pipeline

from m5_assets.staging import STAGING_FOLDER, remove_stale_partials
from m5_assets.table_files import MANIFEST
from m5_assets.warehouse import SHARDS_FOLDER, table_path

HERE = Path(__file__).parent


def _kill_while_features_are_written(data_dir: Path) -> Path:
    ready = data_dir / "writing"
    worker = subprocess.Popen([sys.executable, str(HERE / "killed_writer.py"), str(data_dir), str(ready)], cwd=HERE)
    try:
        deadline = time.monotonic() + 180
        while not ready.exists():
            assert worker.poll() is None, "the worker ended before it wrote the features"
            assert time.monotonic() < deadline, "the worker never reached the features write"
            time.sleep(0.1)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGKILL)
            worker.wait()
    return Path(ready.read_text())


def test_a_run_killed_mid_write_leaves_whole_tables_and_reruns_to_the_same_result(data_dir, tiny_raw, tmp_path_factory):
    warehouse = data_dir / "warehouse"
    partial = _kill_while_features_are_written(data_dir)
    assert partial.exists() and partial.is_relative_to(warehouse / STAGING_FOLDER), partial
    assert not (warehouse / "features" / MANIFEST).exists()  # no generation of the feature store published

    con = duckdb.connect()
    tables = [p for p in warehouse.iterdir() if p.is_dir() and p.name not in (STAGING_FOLDER, SHARDS_FOLDER)]
    assert {t.name for t in tables} >= {"raw_sales", "raw_calendar", "raw_sell_prices", "sales_long"}
    for table in tables:
        seen = con.sql(f"SELECT file FROM glob('{table}/**/*')").fetchall()
        assert seen and not [f for (f,) in seen if f.endswith(".partial")]
        assert con.sql(f"SELECT count(*) FROM read_parquet('{table}/**/*.parquet')").fetchall()[0][0] > 0

    assert run_pipeline(data_dir).success
    assert not partial.exists()  # the rerun cleared what the killed writer left

    clean_dir = tmp_path_factory.mktemp("uninterrupted")
    os.symlink(tiny_raw, clean_dir / "raw")
    assert run_pipeline(clean_dir).success
    rerun, clean = (pd.read_parquet(table_path(w, "sales_long")) for w in (warehouse, clean_dir / "warehouse"))
    pd.testing.assert_frame_equal(rerun, clean)
    pd.testing.assert_frame_equal(feature_rows(warehouse), feature_rows(clean_dir / "warehouse"))


def test_stale_partials_of_dead_writers_go_and_live_ones_stay(tmp_path):
    staging = tmp_path / STAGING_FOLDER
    host = os.uname().nodename
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for owner in (f"{host}-{dead.pid}", f"{host}-{os.getpid()}"):
        (staging / owner).mkdir(parents=True)
        (staging / owner / "features.data.parquet.x.partial").write_bytes(b"PAR1")
    target = tmp_path / "forecasts" / "forecast_date=2016-05-23" / "data.parquet"
    target.parent.mkdir(parents=True)
    legacy = target.parent / ".data.parquet.0123.partial"  # where writers staged before _tmp/
    legacy.write_bytes(b"")

    removed = remove_stale_partials(staging, target)

    assert set(removed) == {staging / f"{host}-{dead.pid}", legacy}
    assert (staging / f"{host}-{os.getpid()}" / "features.data.parquet.x.partial").exists()
