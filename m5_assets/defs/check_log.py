"""Every check result is also written to the warehouse (``check_results``), so the dashboard shows
checks through the read side without opening the Dagster instance."""

import datetime as dt

import dagster as dg
import pandas as pd

from m5_assets import tables
from m5_assets.defs.resources import M5Data
from m5_assets.defs.results import StepContext


def recorded(
    m5_data: M5Data, context: StepContext, asset: str, check: str, result: dg.AssetCheckResult
) -> dg.AssetCheckResult:
    """``result``, after writing it as the latest result of ``asset.check``."""
    row = {
        "asset": asset,
        "check": check,
        "passed": bool(result.passed),
        "severity": (result.severity or dg.AssetCheckSeverity.ERROR).value,
        "description": result.description or "",
        "evaluated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "run_id": context.run.run_id,
    }
    tables.CHECK_RESULTS.write_partition(m5_data.storage, f"{asset}.{check}", pd.DataFrame([row]))
    return result
