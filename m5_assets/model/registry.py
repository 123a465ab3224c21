"""MLflow tracking and registry: where runs go, and the champion alias of ``m5-demand``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import mlflow
from mlflow.tracking import MlflowClient

MODEL_NAME = "m5-demand"
EXPERIMENT = "m5-demand"
CHAMPION = "champion"
PROMOTION_MARGIN = 0.01  # a challenger must beat the champion by at least 1 %


def tracking_uri(mlflow_dir: Path) -> str:
    """``$MLFLOW_TRACKING_URI`` if set, else a SQLite store under the data folder."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(mlflow_dir / 'mlflow.db').resolve()}"


def ensure_experiment(uri: str, name: str, artifact_root: Path) -> None:
    """Create the experiment with its artifacts under ``artifact_root`` (not ./mlruns in the cwd)."""
    client = MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name(name) is None:
        artifact_root.mkdir(parents=True, exist_ok=True)
        client.create_experiment(name, artifact_location=artifact_root.resolve().as_uri())


@dataclass(frozen=True)
class Champion:
    version: str
    run_id: str
    cutoff: str


def current_champion(client: MlflowClient) -> Champion | None:
    try:
        version = client.get_model_version_by_alias(MODEL_NAME, CHAMPION)
    except mlflow.exceptions.MlflowException:
        return None
    run = client.get_run(version.run_id)
    return Champion(version=version.version, run_id=version.run_id, cutoff=run.data.tags.get("cutoff", ""))


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    challenger_wrmsse: float
    champion_wrmsse: float | None


def decide(challenger_wrmsse: float, champion_wrmsse: float | None, champion_is_later: bool = False) -> Decision:
    """The promotion gate: no champion yet, or at least 1 % better on the same window."""
    if champion_wrmsse is None:
        return Decision(True, "no champion yet", challenger_wrmsse, None)
    if champion_is_later:
        return Decision(False, "the champion was trained on a later cutoff", challenger_wrmsse, champion_wrmsse)
    if challenger_wrmsse <= (1 - PROMOTION_MARGIN) * champion_wrmsse:
        return Decision(True, "beats the champion by at least 1 %", challenger_wrmsse, champion_wrmsse)
    return Decision(False, "does not beat the champion by 1 %", challenger_wrmsse, champion_wrmsse)
