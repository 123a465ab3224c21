"""The code location: everything Dagster shows, assembled from one module per concern."""

import dagster as dg

from m5_assets.defs import checks, features, jobs, long_table, raw
from m5_assets.defs.resources import default_data_resource

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([raw, long_table, features]),
    asset_checks=checks.checks,
    jobs=[jobs.build_feature_store],
    resources={"m5_data": default_data_resource()},
    # Steps are short and share one disk; one process avoids a subprocess start per step.
    executor=dg.in_process_executor,
)
