"""Every run-time path derives from one setting, ``M5_DATA_DIR`` (default ``./data``)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DATA_DIR_ENV = "M5_DATA_DIR"
# The warehouse on an object store (s3://bucket/prefix); the data folder's warehouse is then its
# local working copy. Empty: the local folder is the warehouse.
WAREHOUSE_URL_ENV = "M5_WAREHOUSE_URL"


@dataclass(frozen=True)
class DataPaths:
    """Where the pipeline reads raw files and writes everything it produces."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def genuine_days(self) -> Path:
        """Known genuine days that features never cap (``validation.outliers``), when present."""
        return self.root / "known_genuine_days.csv"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse"

    @property
    def mlflow(self) -> Path:
        return self.root / "mlflow"

    @property
    def dagster_home(self) -> Path:
        return self.root / "dagster"

    def dagster_instance_env(self) -> dict[str, str]:
        """The variables ``dagster.yaml`` reads its storage paths from, inside this data folder."""
        home = self.dagster_home
        return {
            "M5_DAGSTER_STORAGE": str(home / "storage"),
            "M5_DAGSTER_ARTIFACTS": str(home / "artifacts"),
            "M5_DAGSTER_LOGS": str(home / "logs"),
        }


def data_paths(root: str | os.PathLike | None = None) -> DataPaths:
    """Resolve the data folder from the argument, else ``$M5_DATA_DIR``, else ``./data``."""
    chosen = root if root is not None else os.environ.get(DATA_DIR_ENV, "data")
    return DataPaths(Path(chosen).expanduser().resolve())
