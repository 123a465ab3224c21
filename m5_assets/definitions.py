"""The code location: everything Dagster shows, assembled from one module per concern."""

import dagster as dg

from m5_assets.defs import checks, features, jobs, long_table, raw
from m5_assets.defs.resources import M5Data, default_data_resource


def build_definitions(m5_data: M5Data) -> dg.Definitions:
    """The whole code location bound to one data folder (tests bind a temporary one)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([raw, long_table, features]),
        asset_checks=checks.checks,
        jobs=[jobs.build_feature_store],
        resources={"m5_data": m5_data},
        # Steps are short and share one disk; one process avoids a subprocess start per step.
        executor=dg.in_process_executor,
    )


defs = build_definitions(default_data_resource())
