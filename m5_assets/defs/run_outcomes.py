"""How the latest run of each daily job ended, written to the warehouse (``run_outcomes``) by job
hooks, so the dashboard can say "the last scheduled forecast failed" without opening the Dagster
instance (its read side never imports Dagster)."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pandas as pd

from m5_assets import reader, tables
from m5_assets.defs.resources import M5Data

SCHEDULE_TAG, SENSOR_TAG = "dagster/schedule_name", "dagster/sensor_name"


def _record(context: dg.HookContext, status: str, message: str = "") -> None:
    m5_data: M5Data = context.resources.m5_data
    run = context.instance.get_run_by_id(context.run_id)
    tags = run.tags if run is not None else {}
    partition = tags.get("dagster/partition") or "..".join(
        filter(None, (tags.get("dagster/asset_partition_range_start"), tags.get("dagster/asset_partition_range_end")))
    )
    row = {
        "run_id": context.run_id,
        "status": status,
        "launched_by": tags.get(SCHEDULE_TAG) or tags.get(SENSOR_TAG) or "manual",
        "partition": partition,
        "step": context.step_key if status == "failed" else "",
        "message": message,
        "ended_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    tables.RUN_OUTCOMES.write_partition(m5_data.storage, context.job_name, pd.DataFrame([row]))


@dg.failure_hook(required_resource_keys={"m5_data"})
def record_failure(context: dg.HookContext) -> None:
    error = context.op_exception
    _record(context, "failed", f"{type(error).__name__}: {error}"[:2000] if error is not None else "")


@dg.success_hook(required_resource_keys={"m5_data"})
def record_success(context: dg.HookContext) -> None:
    # A hook runs per step: a later step's success must not hide an earlier step's failure.
    m5_data: M5Data = context.resources.m5_data
    try:
        latest = reader.read_partition(m5_data.paths.warehouse, tables.RUN_OUTCOMES, context.job_name).iloc[0]
    except FileNotFoundError:
        latest = None
    if latest is None or not (latest["run_id"] == context.run_id and latest["status"] == "failed"):
        _record(context, "succeeded")


RECORDED = {record_failure, record_success}
