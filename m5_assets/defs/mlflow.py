"""MLflow as a Dagster resource: the tracking store and the ``m5-demand`` registry of one data folder.

One client per call, bound to this resource's tracking URI (see ``model.tracking``): no asset,
sensor or job sets MLflow's process-wide state, and the experiment keeps its artifacts under
``$M5_DATA_DIR/mlflow`` instead of ``./mlruns`` of whatever folder the process runs in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from mlflow.tracking import MlflowClient

from m5_assets.model import registry, tracking
from m5_assets.model.tracking import TrackedRun
from m5_assets.settings import DataPaths


class MlflowTracking(dg.ConfigurableResource):
    """Where runs, artifacts and registered versions go."""

    tracking_uri: str
    artifact_root: str
    experiment_name: str = registry.EXPERIMENT

    def client(self) -> MlflowClient:
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

    @contextmanager
    def run(self, name: str, parent: TrackedRun | None = None) -> Iterator[TrackedRun]:
        """A run in the experiment, nested under ``parent`` if given; FAILED if the block raises."""
        client = self.client()
        experiment_id = tracking.ensure_experiment(
            client, self.experiment_name, Path(self.artifact_root), registry.EXPERIMENT_DESCRIPTION
        )
        with tracking.tracked_run(client, experiment_id, name, parent) as run:
            yield run

    def run_url(self, run: TrackedRun) -> str:
        return registry.run_url(self.tracking_uri, run.experiment_id, run.run_id)


def mlflow_tracking(paths: DataPaths) -> MlflowTracking:
    """The resource for a data folder (``$MLFLOW_TRACKING_URI`` wins, see ``registry.tracking_uri``)."""
    return MlflowTracking(
        tracking_uri=registry.tracking_uri(paths.mlflow), artifact_root=str(paths.mlflow / "artifacts")
    )
