"""MLflow runs, artifacts and registrations through one explicit client.

Nothing here sets MLflow's process-wide tracking URI, experiment or active run: every call names
its client and run, so two data folders (two code locations, or tests) in one process never write
into each other's store, and a run that fails is marked FAILED rather than left open.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import mlflow
from mlflow.entities import Dataset, DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import (
    MLFLOW_DATASET_CONTEXT,
    MLFLOW_PARENT_RUN_ID,
    MLFLOW_SOURCE_NAME,
    MLFLOW_SOURCE_TYPE,
)

if TYPE_CHECKING:  # annotations only: mlflow.lightgbm imports LightGBM when a model loads
    import lightgbm as lgb

_BATCH = 100  # MLflow takes at most this many params in one call


@dataclass(frozen=True)
class TrackedRun:
    client: MlflowClient
    run_id: str
    experiment_id: str

    def log_params(self, params: dict) -> None:
        items = [Param(k, str(v)) for k, v in params.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, params=items[start : start + _BATCH])

    def log_metrics(self, metrics: dict) -> None:
        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        for start in range(0, len(items), _BATCH):
            self.client.log_batch(self.run_id, metrics=items[start : start + _BATCH])

    def set_tags(self, tags: dict) -> None:
        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_training_data(self, name: str, location: Path, digest: str) -> None:
        """Record the data this run trains on: where it is and its digest (the run's Datasets)."""
        dataset = Dataset(name=name, digest=digest, source_type="local", source=json.dumps({"uri": location.as_uri()}))
        self.client.log_inputs(self.run_id, [DatasetInput(dataset, [InputTag(MLFLOW_DATASET_CONTEXT, "training")])])

    def log_text(self, text: str, path: str) -> None:
        self.client.log_text(self.run_id, text, path)

    def log_folder(self, folder: Path, artifact_path: str) -> None:
        self.client.log_artifacts(self.run_id, str(folder), artifact_path)

    def register(self, artifact_path: str, name: str, description: str = "", tags: dict | None = None) -> str:
        """Register the model logged at ``artifact_path`` of this run as a new version of ``name``
        (created with ``description`` and ``tags``, or given them if it lacks them)."""
        tags = tags or {}
        try:
            registered = self.client.get_registered_model(name)
        except mlflow.exceptions.MlflowException:
            self.client.create_registered_model(name, tags=tags, description=description or None)
        else:
            if description and registered.description != description:
                self.client.update_registered_model(name, description=description)
            for key, value in tags.items():
                if registered.tags.get(key) != value:
                    self.client.set_registered_model_tag(name, key, value)
        source = f"{self.client.get_run(self.run_id).info.artifact_uri}/{artifact_path}"
        return str(self.client.create_model_version(name, source, run_id=self.run_id).version)


# The tag the MLflow UI reads an experiment's type from: without it, MLflow 3 guesses, and an
# experiment of LightGBM runs opened as a GenAI one.
EXPERIMENT_KIND_TAG, MODEL_TRAINING = "mlflow.experimentKind", "custom_model_development"
DESCRIPTION_TAG = "mlflow.note.content"  # an experiment's description, as the UI shows and edits it


def ensure_experiment(client: MlflowClient, name: str, artifact_root: Path, description: str = "") -> str:
    """The experiment's id, creating it with its artifacts under ``artifact_root`` (not ./mlruns);
    either way a model-training experiment (and described, when it has no description yet)."""
    experiment = client.get_experiment_by_name(name)
    if experiment is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        tags = {EXPERIMENT_KIND_TAG: MODEL_TRAINING} | ({DESCRIPTION_TAG: description} if description else {})
        return client.create_experiment(name, artifact_location=artifact_root.resolve().as_uri(), tags=tags)
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    if description and not experiment.tags.get(DESCRIPTION_TAG):
        client.set_experiment_tag(experiment.experiment_id, DESCRIPTION_TAG, description)
    return experiment.experiment_id


@contextmanager
def tracked_run(
    client: MlflowClient, experiment_id: str, name: str, parent: TrackedRun | None = None
) -> Iterator[TrackedRun]:
    """A run named ``name`` (nested under ``parent`` if given), FINISHED if the block completes."""
    tags = {MLFLOW_SOURCE_TYPE: "JOB", MLFLOW_SOURCE_NAME: f"m5-forecasting {_package_version()}: {name}"}
    if parent:
        tags[MLFLOW_PARENT_RUN_ID] = parent.run_id
    run = client.create_run(experiment_id, run_name=name, tags=tags)
    status = "FAILED"
    try:
        yield TrackedRun(client, run.info.run_id, experiment_id)
        status = "FINISHED"
    finally:
        client.set_terminated(run.info.run_id, status)


def _package_version() -> str:
    try:
        return version("m5-forecasting")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def read_text(client: MlflowClient, run_id: str, path: str) -> str:
    """A run's text artifact; FileNotFoundError naming it when the run has none."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = client.download_artifacts(run_id, path, folder)
        except (mlflow.exceptions.MlflowException, OSError) as error:
            raise FileNotFoundError(f"MLflow run {run_id} has no artifact {path}") from error
        return Path(local).read_text()


def load_lightgbm(client: MlflowClient, run_id: str, artifact_path: str) -> lgb.Booster:
    """The LightGBM booster a run logged at ``artifact_path``; FileNotFoundError when it has none."""
    with tempfile.TemporaryDirectory() as folder:
        try:
            local = client.download_artifacts(run_id, artifact_path, folder)
        except (mlflow.exceptions.MlflowException, OSError) as error:
            raise FileNotFoundError(f"MLflow run {run_id} has no model {artifact_path}") from error
        return mlflow.lightgbm.load_model(local)


class Tracker(Protocol):
    """Where runs and registered versions go (the MLflow resource is one)."""

    def client(self) -> MlflowClient: ...

    def run(self, name: str, parent: TrackedRun | None = None) -> AbstractContextManager[TrackedRun]: ...

    def run_url(self, run: TrackedRun) -> str: ...
