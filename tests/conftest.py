"""Shared fixtures: the tiny generated data set (made once per run) and the genuine M5 files."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from forecasting import QUICK, copy_data, issue, run_pipeline, train
from handmade import write_handmade

from m5_assets.generator import SCALES, generate

# Tests choose their warehouse: one on an object store only where a test sets it.
os.environ.pop("M5_WAREHOUSE_URL", None)

MAY = "2016-05-01"
OLDER, NEWEST = dt.date(2016, 5, 20), dt.date(2016, 5, 23)  # tiny data: sales to 2016-05-22
# Beside the repository; a git worktree elsewhere names the folder in $M5_SHARED_DATA.
SHARED_M5 = Path(os.environ.get("M5_SHARED_DATA") or Path(__file__).resolve().parents[2] / "shared" / "data" / "m5")
REAL_SUBSET = SHARED_M5 / "real_subset"


@pytest.fixture(scope="session")
def tiny_raw(tmp_path_factory) -> Path:
    """The tiny generated Kaggle file set; tests copy it before changing anything."""
    raw = tmp_path_factory.mktemp("tiny") / "raw"
    generate(SCALES["tiny"], raw, seed=7)
    return raw


@pytest.fixture(scope="session")
def real_subset() -> Path:
    if not (REAL_SUBSET / "calendar.csv").is_file():
        pytest.skip(f"genuine M5 files not found at {REAL_SUBSET} (the shared folder is absent)")
    return REAL_SUBSET


@pytest.fixture(scope="session")
def handmade_warehouse(tmp_path_factory) -> Path:
    """The warehouse after the whole graph ran on the hand-made data set (see handmade.py)."""
    data_dir = tmp_path_factory.mktemp("handmade")
    write_handmade(data_dir / "raw")
    result = run_pipeline(data_dir)
    assert result.success, [e.description for e in result.get_asset_check_evaluations() if not e.passed]
    return data_dir / "warehouse"


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict:
    """Warehouses after the whole graph ran once on the tiny and the small generated data."""
    warehouses = {}
    for scale in ("tiny", "small"):
        data_dir = tmp_path_factory.mktemp(f"built-{scale}")
        generate(SCALES[scale], data_dir / "raw", seed=11)
        assert run_pipeline(data_dir).success
        warehouses[scale] = data_dir / "warehouse"
    return warehouses


@pytest.fixture
def model_data(tmp_path, built, monkeypatch):
    """A copy of the tiny warehouse with an empty MLflow store of its own."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    copy_data(built["tiny"].parent, tmp_path)
    return tmp_path


@pytest.fixture
def data_dir(tmp_path, tiny_raw) -> Path:
    """A fresh data folder holding a copy of the tiny raw files."""
    shutil.copytree(tiny_raw, tmp_path / "raw")
    return tmp_path


@pytest.fixture(scope="session")
def warehouse_dir(tmp_path_factory, built):
    """Tiny data, a May model (its card in the warehouse, its MLflow store deleted), and forecasts
    issued on 2016-05-20 and 2016-05-23: what the API serves in tests."""
    data_dir = tmp_path_factory.mktemp("served")
    copy_data(built["tiny"].parent, data_dir)
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        train(data_dir, MAY, QUICK)
        issue(data_dir, OLDER.isoformat())
        issue(data_dir, NEWEST.isoformat())
    # Serving must not need MLflow: the model card is in the warehouse.
    shutil.rmtree(data_dir / "mlflow")
    return data_dir


BUCKET = "m5-warehouse"


@pytest.fixture(scope="session")
def s3_query():
    """An S3-compatible server on loopback with one bucket: the query string that reaches it."""
    from servers import s3_server

    with pytest.MonkeyPatch.context() as patch:
        # moto's fixed credentials; and never ask a cloud metadata endpoint for any.
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        with s3_server(BUCKET) as query:
            yield query


@pytest.fixture
def url(s3_query, request) -> str:
    """A prefix of its own in the bucket for each test."""
    return f"s3://{BUCKET}/{request.node.name.replace('[', '-').rstrip(']')}?{s3_query}"
