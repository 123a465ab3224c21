"""MLflow tracking through dagster-mlflow, with the experiment's artifacts kept in the data folder.

dagster-mlflow's resource calls ``mlflow.set_experiment``, which on a SQLite store creates the
experiment with artifacts in ``./mlruns`` of whatever folder the process runs in. This thin
wrapper creates the experiment first, with its artifacts under ``$M5_DATA_DIR/mlflow``, and then
returns dagster-mlflow's own resource unchanged.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from m5_assets.defs.beta import known_beta_apis

with known_beta_apis():
    from dagster_mlflow.resources import CONFIG_SCHEMA, MlFlow

from m5_assets.model.registry import EXPERIMENT, ensure_experiment, tracking_uri
from m5_assets.settings import DataPaths


@dg.resource(config_schema={**CONFIG_SCHEMA, "artifact_root": dg.Field(str)})
def m5_mlflow(context) -> MlFlow:
    config = context.resource_config
    ensure_experiment(config["mlflow_tracking_uri"], config["experiment_name"], Path(config["artifact_root"]))
    with known_beta_apis():
        return MlFlow(context)


def mlflow_resource(paths: DataPaths) -> dg.ResourceDefinition:
    return m5_mlflow.configured(
        {
            "experiment_name": EXPERIMENT,
            "mlflow_tracking_uri": tracking_uri(paths.mlflow),
            "artifact_root": str(paths.mlflow / "artifacts"),
        }
    )
