"""Shared test helpers: run the feature store, train models, issue and score forecast partitions
in process against a data folder, and the training presets the tests use."""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import TypedDict

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from m5_assets import tables
from m5_assets.definitions import build_definitions
from m5_assets.defs.automation import ISSUE_FORECAST_JOB, SCORE_FORECAST_JOB
from m5_assets.defs.jobs import FEATURE_STORE_JOB, TRAIN_MODEL_JOB
from m5_assets.defs.resources import M5Data
from m5_assets.features import build
from m5_assets.model.training import TrainingParams
from m5_assets.settings import load_settings
from m5_assets.table_files import StoreFiles, TableFiles


class Preset(TypedDict):
    """A training preset: the demand model's run config, and ``TrainingParams``' keywords."""

    learning_rate: float
    max_rounds: int
    early_stopping_rounds: int
    train_days: int


QUICK: Preset = {"learning_rate": 0.1, "max_rounds": 150, "early_stopping_rounds": 20, "train_days": 365}
QUICK_PARAMS = TrainingParams(**QUICK)  # the same, as the model layer takes it
# Five boosting rounds: beats seasonal naive on the tiny data, but clearly worse than QUICK.
WEAK: Preset = {"learning_rate": 0.1, "max_rounds": 5, "early_stopping_rounds": 5, "train_days": 365}


def copy_data(source: Path, target: Path) -> Path:
    """A data folder's raw files and warehouse copied to ``target`` (no MLflow store: models are
    trained afresh there)."""
    shutil.copytree(source / "raw", target / "raw")
    shutil.copytree(source / "warehouse", target / "warehouse")
    return target


def resource(data_dir) -> M5Data:
    """The data resource of ``data_dir``; on the object store in $M5_WAREHOUSE_URL when it is set."""
    return M5Data(data_dir=str(data_dir), warehouse_url=load_settings().warehouse_url)


def in_groups(store_groups: int) -> dict:
    """The run config that computes a run in ``store_groups`` groups of stores: chosen when the run
    starts, on definitions that do not depend on it."""
    return {"resources": {"store_groups": {"config": {"count": store_groups}}}}


def run_pipeline(data_dir, store_groups: int = 1) -> dg.ExecuteInProcessResult:
    """Materialize the feature-store job with every check against ``data_dir``, in process."""
    defs = build_definitions(resource(data_dir))
    with dg.instance_for_test() as instance:
        return defs.resolve_job_def(FEATURE_STORE_JOB).execute_in_process(
            instance=instance, raise_on_error=False, run_config=in_groups(store_groups)
        )


def train(
    data_dir, cutoff: str, config: Mapping[str, object], raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    defs = build_definitions(resource(data_dir))
    with dg.instance_for_test() as instance:
        return defs.resolve_job_def(TRAIN_MODEL_JOB).execute_in_process(
            instance=instance,
            partition_key=cutoff,
            raise_on_error=raise_on_error,
            run_config={"ops": {"demand_model": {"config": config}}},
        )


def run_range(
    data_dir, job: str, first: str, last: str, raise_on_error: bool = True, store_groups: int = 1
) -> dg.ExecuteInProcessResult:
    """One run over partitions ``first`` .. ``last``, as a backfill under the assets' policy runs."""
    defs = build_definitions(resource(data_dir))
    with dg.instance_for_test() as instance:
        return defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            raise_on_error=raise_on_error,
            run_config=in_groups(store_groups),
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
        )


def issue(
    data_dir, first: str, last: str | None = None, raise_on_error: bool = True, store_groups: int = 1
) -> dg.ExecuteInProcessResult:
    return run_range(data_dir, ISSUE_FORECAST_JOB, first, last or first, raise_on_error, store_groups)


def score(data_dir, first: str, last: str | None = None, store_groups: int = 1) -> dg.ExecuteInProcessResult:
    return run_range(data_dir, SCORE_FORECAST_JOB, first, last or first, store_groups=store_groups)


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    """The metadata of the run's (first) materialization, as plain values."""
    (event, *_) = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def feature_rows(source: Path | TableFiles) -> pd.DataFrame:
    """The feature store's rows in (id, date) order with plain string ids, however it is stored:
    a warehouse folder's published generation, files, or one file (the whole build's)."""
    files = tables.FEATURES.files(source) if isinstance(source, Path) and source.is_dir() else TableFiles.of(source)
    frame = files.read().to_pandas()
    categorical = [c for c in frame if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    frame[categorical] = frame[categorical].astype(str)
    return frame.sort_values(["id", "date"], ignore_index=True)


def assert_store_file_layout(files: StoreFiles) -> None:
    """Each store's file holds that store's rows only, in row groups that are each a run of its
    series (``series_runs``) by a whole block of days, run after run, each run's in date order:
    the statistics of a read of some days rule every other row group out."""
    for store, path in zip(files.stores, files.paths, strict=True):
        file = pq.ParquetFile(path)
        frame = pd.concat(
            [
                file.read_row_group(k, columns=["id", "date", "store_id"]).to_pandas().assign(group=k)
                for k in range(file.num_row_groups)
            ],
            ignore_index=True,
        )
        frame["date"] = pd.to_datetime(frame["date"])
        assert set(frame["store_id"].astype(str)) == {store}
        ids, series = np.unique(frame["id"].astype(str), return_inverse=True)
        days = (frame["date"] - frame["date"].min()).dt.days.to_numpy()
        expected = build.row_groups_of(series, days, len(ids), int(days.max()) + 1)
        np.testing.assert_array_equal(frame["group"].to_numpy(), expected)
        # Within a row group: series by series, each series' days in order.
        assert (np.lexsort((days, series, expected)) == np.arange(len(frame))).all()
        for run in build.series_runs(len(ids), int(days.max()) + 1):
            spans = frame[(series >= run.start) & (series < run.stop)].groupby("group")["date"].agg(["min", "max"])
            assert ((spans["max"] - spans["min"]).dt.days < build.days_per_row_group(run.stop - run.start)).all()
            assert (spans["max"].to_numpy()[:-1] < spans["min"].to_numpy()[1:]).all()


def table_bytes(warehouse: Path, name: str) -> bytes:
    """The bytes of a table's published version: its file's, or its files' one after the other."""
    return b"".join(path.read_bytes() for path in tables.named(name).files(warehouse).paths)
