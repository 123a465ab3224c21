"""The environment variables that belong to libraries: MLflow's, Dagster's and Prometheus's.

The project's own settings are in ``settings.py``; this module is the only other one that reads or
writes ``os.environ``. Libraries read these variables themselves, so setting one here is how the
project configures them (and hands values to the child processes they start).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # importing the package sets Arrow's allocator here: no settings loaded for it
    from m5_assets.settings import DataPaths

MLFLOW_TRACKING_URI = "MLFLOW_TRACKING_URI"
PROMETHEUS_MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Dagster's instance storage in Postgres (defs/instance_storage.py says which are required).
DAGSTER_PG = ("DAGSTER_PG_HOST", "DAGSTER_PG_PORT", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


def mlflow_tracking_uri() -> str | None:
    """The tracking server the environment names, if any."""
    return os.environ.get(MLFLOW_TRACKING_URI) or None


def quiet_mlflow() -> None:
    """MLflow quiet in a run printed to a person, unless they asked otherwise."""
    # MLflow draws a progress bar for every artifact it reads (two per forecast run).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow's INFO lines (database set-up, signature checks) are its own business; training's
    # progress is the user's. MLflow sets its level from this variable when it is imported.
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")


DAGSTER_HOME = "DAGSTER_HOME"
INSTANCE_CONFIG = "dagster.yaml"


def point_dagster_instance_at(paths: DataPaths) -> str | None:
    """The instance's storage in this data folder (``dagster.yaml`` reads these), unless set; the
    instance's home (``DAGSTER_HOME``), when unset, the working folder if it holds the project's
    ``dagster.yaml`` (``m5`` run by hand from the project, as ``make`` runs it). Returns why the
    instance cannot be opened, or None."""
    for name, value in paths.dagster_instance_env().items():
        os.environ.setdefault(name, value)
    if os.environ.get(DAGSTER_HOME):
        return None
    here = os.getcwd()
    if os.path.isfile(os.path.join(here, INSTANCE_CONFIG)):
        os.environ[DAGSTER_HOME] = here
        return None
    return (
        f"{DAGSTER_HOME} is not set and {here} holds no {INSTANCE_CONFIG}, so there is no Dagster instance to "
        f"record the runs in: run m5 from the project's folder (as make run does), or export {DAGSTER_HOME} "
        f"as the folder holding the project's {INSTANCE_CONFIG}"
    )


def dagster_postgres_variables() -> dict[str, str]:
    """The ``DAGSTER_PG_*`` variables that are set."""
    return {name: os.environ[name] for name in DAGSTER_PG if os.environ.get(name)}


def prometheus_multiproc_dir() -> str | None:
    """The folder where each API worker writes its metrics samples, when there are several."""
    return os.environ.get(PROMETHEUS_MULTIPROC_DIR) or None


def hand_to_child_processes(variables: Mapping[str, str]) -> None:
    """Set variables for the processes this one starts next (a server's workers read them)."""
    os.environ.update(variables)


def arrow_returns_freed_memory() -> None:
    """Arrow's buffers from jemalloc, which hands freed memory back to the system, unless the
    environment chose an allocator (``ARROW_DEFAULT_MEMORY_POOL``, read by Arrow at its first
    allocation: this runs when the package is imported).

    pyarrow's default here, mimalloc, keeps what it frees resident: a full-scale training
    window's 3 GiB Arrow table, freed column by column as the feature matrix fills, stayed in the
    process beside the matrix and through the fits after it (reading alone peaked at 6.6 GiB
    against 4.7 GiB with jemalloc; README, "Training"). Child processes inherit the choice."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")
