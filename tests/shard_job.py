"""The issue and feature-store jobs of the data folder in $M5_DATA_DIR, split into $M5_STORE_GROUPS
store groups: reconstructable, so Dagster's multiprocess executor can start each step in a process of its own."""

from pathlib import Path

from m5_assets.definitions import build_definitions
from m5_assets.defs.automation import ISSUE_FORECAST_JOB
from m5_assets.defs.jobs import FEATURE_STORE_JOB
from m5_assets.defs.resources import default_data_resource


def issue_job():
    return build_definitions(default_data_resource()).resolve_job_def(ISSUE_FORECAST_JOB)


def feature_store_job():
    return build_definitions(default_data_resource()).resolve_job_def(FEATURE_STORE_JOB)


def store_group_job(monkeypatch, data_dir, job: str):
    """``job`` of ``data_dir`` in 2 store groups, reconstructable: the multiprocess executor runs
    each step in a process of its own."""
    import dagster as dg

    here = Path(__file__).resolve().parent
    monkeypatch.setenv("M5_DATA_DIR", str(data_dir))
    monkeypatch.setenv("M5_STORE_GROUPS", "2")
    reconstructable = dg.build_reconstructable_job("shard_job", job, reconstructor_working_directory=str(here))
    # Dagster keeps the last job loaded from a pointer; an earlier test's (its data folder, its
    # warehouse URL) would otherwise be the one this test runs.
    type(reconstructable).get_definition.cache_clear()
    type(reconstructable).get_repository_definition.cache_clear()
    return reconstructable


def killing_group_1(monkeypatch, data_dir, marker, job: str):
    """``store_group_job`` in processes that load killed_shard/sitecustomize.py: the first to
    write a file of store group 1 dies mid-write, and leaves ``marker``."""
    here = Path(__file__).resolve().parent
    monkeypatch.setenv("M5_KILL_MARKER", str(marker))
    monkeypatch.setenv("PYTHONPATH", f"{here / 'killed_shard'}:{here}")
    return store_group_job(monkeypatch, data_dir, job)
