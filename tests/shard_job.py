"""The issue job of the data folder in $M5_DATA_DIR, split into $M5_STORE_GROUPS store groups:
reconstructable, so Dagster's multiprocess executor can start each step in a process of its own."""

from m5_assets.defs.automation import ISSUE_FORECAST_JOB
from m5_assets.defs.resources import default_data_resource
from m5_assets.definitions import build_definitions


def issue_job():
    return build_definitions(default_data_resource()).resolve_job_def(ISSUE_FORECAST_JOB)
