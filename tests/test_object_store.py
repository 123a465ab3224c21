"""The warehouse on an S3-compatible store (moto's server on loopback): publishing is a manifest
written last, readers never see a half-published file, and the whole pipeline runs against it."""

from __future__ import annotations

import filecmp
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.fs as pafs
import pytest
from conftest import BUCKET
from fastapi.testclient import TestClient
from forecasting import QUICK, feature_rows, issue, resource, run_pipeline, score, train
from served import SERVED, serving_app
from shard_job import store_group_job

from m5_assets import tables, warehouse
from m5_assets.object_store import MANIFESTS, RemoteError, RemoteWarehouse
from m5_assets.reader import read_partition
from m5_assets.table_files import MANIFEST
from m5_assets.warehouse import SHARDS_FOLDER

APRIL = "2016-04-01"


def _write(storage: warehouse.Warehouse, relative: str, text: str) -> Path:
    target = storage.root / relative
    storage.write_with(target, lambda partial: partial.write_text(text))
    return target


@pytest.fixture
def mirrored(tmp_path, url):
    remote = RemoteWarehouse(url)
    return warehouse.ObjectStoreWarehouse(tmp_path / "writer", remote), remote


def test_a_published_file_reaches_another_machine_and_old_versions_are_pruned(mirrored, tmp_path):
    storage, remote = mirrored
    relative = "forecasts/forecast_date=2016-05-20/data.parquet"
    for version in ("one", "two", "three"):
        _write(storage, relative, version)
    reader = tmp_path / "reader"
    assert remote.pull(reader) == [relative]
    assert (reader / relative).read_text() == "three"
    assert remote.pull(reader) == []  # nothing changed since
    # The current object and the one before it (for readers that resolved it); no older ones.
    folder = f"{remote.base}/forecasts/forecast_date=2016-05-20"
    objects = [i.base_name for i in remote.fs.get_file_info(pafs.FileSelector(folder))]
    assert len(objects) == 2 and all(name.startswith("data.parquet.") for name in objects)
    # A file written outside the root, or in a writer's staging folder, is not published.
    outside = tmp_path / "elsewhere" / "x" / "data.parquet"
    storage.write_with(outside, lambda partial: partial.write_text("local"))
    assert outside.read_text() == "local"
    assert set(remote.manifests()) == {relative}


def test_a_push_that_dies_before_its_manifest_publishes_nothing_and_changes_nothing(mirrored, tmp_path, monkeypatch):
    storage, remote = mirrored
    relative = "features/data.parquet"
    target = _write(storage, relative, "old")
    before = remote.manifests()[relative]

    def dies(key: str, data: bytes):
        raise RemoteError(f"{remote.display}: writing {key!r} failed: connection reset")

    monkeypatch.setattr(remote, "_write", dies)
    with pytest.raises(RemoteError, match="features/data.parquet.json' failed"):
        _write(storage, relative, "new")
    monkeypatch.undo()
    # The new object was uploaded but nothing names it: readers and the writer keep the old file.
    assert remote.manifests()[relative] == before
    assert target.read_text() == "old"
    reader = tmp_path / "reader"
    remote.pull(reader)
    assert (reader / relative).read_text() == "old"
    # A reader that resolved a version keeps reading it while a newer one is published.
    with remote.fs.open_input_file(f"{remote.base}/{before.object}") as held:
        _write(storage, relative, "newer")
        assert held.read() == b"old"
    remote.pull(reader)
    assert (reader / relative).read_text() == "newer"


def test_withdrawn_files_leave_every_copy_and_errors_name_the_store(mirrored, tmp_path, url):
    storage, remote = mirrored
    _write(storage, "_shards/run-1/group_0/forecast_date=2016-05-20.parquet", "staged")
    _write(storage, "features/data.parquet", "kept")
    reader = tmp_path / "reader"
    remote.pull(reader)
    storage.drop_shard_runs([storage.root / "_shards/run-1/group_0/forecast_date=2016-05-20.parquet"])
    assert set(remote.manifests()) == {"features/data.parquet"}
    assert remote.pull(reader) == ["_shards/run-1/group_0/forecast_date=2016-05-20.parquet"]
    assert not (reader / "_shards/run-1/group_0/forecast_date=2016-05-20.parquet").exists()
    assert (reader / "features/data.parquet").read_text() == "kept"

    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        RemoteWarehouse("/not/a/url")
    missing = RemoteWarehouse(url.replace(f"s3://{BUCKET}/", "s3://no-such-bucket/"))
    with pytest.raises(RemoteError, match=r"s3://no-such-bucket/.*upload of 'features/data.parquet\.\d"):
        missing.push(reader / "features/data.parquet", "features/data.parquet")


def _warehouse_files(root: Path) -> dict[str, Path]:
    skipped = ("_tmp", "_remote")
    return {
        p.relative_to(root).as_posix(): p
        for p in root.rglob("*")
        if p.is_file() and not p.relative_to(root).parts[0].startswith(skipped)
    }


def test_the_whole_pipeline_runs_on_the_object_store_and_another_machine_reads_and_adds_to_it(
    data_dir, tmp_path, url, monkeypatch
):
    monkeypatch.setenv("M5_WAREHOUSE_URL", url)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert run_pipeline(data_dir).success
    train(data_dir, APRIL, QUICK)  # so that the forecasts of late April can be scored
    issue(data_dir, "2016-04-20", "2016-04-21")
    remote = RemoteWarehouse(url)
    published = remote.manifests()
    written = _warehouse_files(data_dir / "warehouse")
    # Everything the pipeline wrote is in the bucket under the same path, and only that.
    assert set(published) == set(written)
    assert f"features/{MANIFEST}" in published and "forecasts/forecast_date=2016-04-20/data.parquet" in published
    generation = tables.FEATURES.files(data_dir / "warehouse")
    assert {p.relative_to(data_dir / "warehouse").as_posix() for p in generation.paths} <= set(published)

    # Another machine: an empty data folder with the same warehouse URL. Its first run pulls the
    # warehouse, scores the two forecasts (no model needed) and publishes the scores.
    other = tmp_path / "other"
    shutil.copytree(data_dir / "raw", other / "raw")
    assert score(other, "2016-04-20", "2016-04-21").success
    for relative, path in written.items():
        assert filecmp.cmp(path, other / "warehouse" / relative, shallow=False), relative
    day = pd.Timestamp("2016-04-21").date()
    pd.testing.assert_frame_equal(
        read_partition(other / "warehouse", tables.FORECASTS, day),
        read_partition(data_dir / "warehouse", tables.FORECASTS, day),
    )
    # The first machine's next run sees the scores the second one published.
    accuracy = tables.FORECAST_ACCURACY.name
    assert any(p.startswith(f"{accuracy}/") for p in remote.manifests())
    first_machine, context = resource(data_dir), dg.build_init_resource_context()
    first_machine.setup_for_execution(context)
    first_machine.teardown_after_execution(context)
    got = _warehouse_files(data_dir / "warehouse")
    assert {p for p in got if p.startswith(f"{accuracy}/")} == {
        p for p in _warehouse_files(other / "warehouse") if p.startswith(f"{accuracy}/")
    }
    assert not any(key.startswith(MANIFESTS) for key in got)

    # The API on a third machine, with nothing but the URL: it pulls, then serves the newest
    # forecast and the scores.
    with TestClient(serving_app(tmp_path / "api", rate_limit_per_minute=0)) as client:
        health = client.get("/health").json()
        assert health["ready"] and health["forecast_date"] == "2016-04-21"
        bottom = read_partition(data_dir / "warehouse", tables.FORECASTS, day)
        row = bottom.iloc[0]
        served = client.get(f"/forecasts/{row['store_id']}/{row['item_id']}").json()
        expected = bottom[bottom["id"] == row["id"]].sort_values("horizon")["forecast"].tolist()
        assert served["id"] == row["id"] and [d["forecast"] for d in served["days"]] == pytest.approx(
            expected, abs=SERVED
        )
        assert {r["forecast_date"] for r in client.get("/accuracy").json()["partitions"]} == {
            "2016-04-20",
            "2016-04-21",
        }


def test_store_group_steps_in_processes_of_their_own_publish_through_the_store(data_dir, tmp_path, url, monkeypatch):
    # Each step process pulls and publishes under the data folder's lock; the staged groups go
    # through the store too (a step on another machine would read them there), and are withdrawn.
    monkeypatch.setenv("M5_WAREHOUSE_URL", url)
    assert run_pipeline(data_dir).success
    one_step = feature_rows(data_dir / "warehouse")
    remote = RemoteWarehouse(url)
    before = remote.manifests()[f"features/{MANIFEST}"]
    job = store_group_job(monkeypatch, data_dir, "feature_store_job")
    with dg.instance_for_test() as instance:
        with dg.execute_job(job, instance, raise_on_error=False) as result:
            assert result.success
            steps = {e.step_key for e in result.get_step_success_events()}
    assert "features.compute_feature_group[group_1]" in steps
    published = remote.manifests()
    assert published[f"features/{MANIFEST}"].version != before.version
    assert not any(path.startswith(SHARDS_FOLDER) for path in published)
    other = tmp_path / "other"
    remote.pull(other / "warehouse")
    here, there = (tables.FEATURES.files(w / "warehouse") for w in (data_dir, other))
    assert [p.read_bytes() for p in here.paths] == [p.read_bytes() for p in there.paths]
    pd.testing.assert_frame_equal(feature_rows(other / "warehouse"), one_step)
