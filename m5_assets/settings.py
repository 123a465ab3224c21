"""Every setting of the project, declared once: the pipeline's, the API's and the dashboard's.

Each is read from an ``M5_*`` environment variable, typed and validated when a face starts (``m5``,
the code location, the API, the dashboard), so a wrong value stops it with the variable's name
instead of failing deep inside a run. Nothing else in the project reads the environment; the
variables that belong to libraries (MLflow, Dagster, Prometheus) are read and set in
``library_env.py`` beside this module.

``python -m m5_assets.settings`` prints the reference page the documentation site builds from it.
"""

from __future__ import annotations

import datetime as dt
import os
import typing
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PREFIX = "M5_"


class SettingsError(ValueError):
    """A setting's environment variable holds a value its type or rule refuses."""


class Settings(BaseSettings):
    """The project's settings; the environment variable of each field is ``M5_`` + its name in
    capitals (``data_dir`` is ``M5_DATA_DIR``)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, frozen=True, extra="ignore")

    # -- the pipeline
    data_dir: Path = Field(
        Path("data"),
        description="The data folder: raw files in `raw/`; the warehouse, MLflow and the Dagster instance beside them.",
    )
    warehouse_url: str = Field(
        "",
        description="The warehouse on an object store (`s3://bucket/prefix`); the data folder's warehouse is then "
        "its local working copy. Empty: the data folder's warehouse is the warehouse.",
    )
    store_groups: int = Field(
        1,
        ge=1,
        description="How many groups of stores a run computes features, forecasts and scores in, unless its run config "
        "says otherwise (`resources: store_groups: config: count`). 1: one group.",
    )
    step_executor: Literal["in_process", "multiprocess", "k8s"] | None = Field(
        None,
        description="Where a run's steps run: all in the run's process, a process each (store groups side by side), "
        "or a Kubernetes Job each. Unset: `in_process` with one store group, `multiprocess` with more.",
    )
    forecast_start: dt.date | None = Field(
        None,
        description="The first forecast partition (YYYY-MM-DD). Unset: the first model cutoff, before which no "
        "model can exist.",
    )
    schedule_timezone: str = Field(
        "UTC",
        description="The IANA time zone of the schedules (the forecast at 06:00, its scoring at 06:30, the monthly "
        "model at 03:00) and of the forecast's deadline.",
    )
    forecast_due_by: dt.time = Field(
        dt.time(7, 0),
        description="When the day's forecast must be issued (HH:MM, in the schedule's time zone): after it, the "
        "`forecasts` freshness check fails until it is.",
    )
    asset_owner: str = Field(
        "team:demand-forecasting",
        pattern=r"^(team:[\w.-]+|[^@\s]+@[^@\s]+)$",
        description="The owner every asset names in the Dagster catalog: `team:<name>` or an e-mail address.",
    )
    alert_webhook_url: str = Field(
        "", description="Where failed runs and failed or warning asset checks are posted as JSON (unset: no alerts)."
    )
    dagster_ui_url: str = Field(
        "http://127.0.0.1:3000",
        description="Where a person opens the Dagster UI: the links of alerts and of the dashboard's checks.",
    )
    mlflow_ui_url: str = Field(
        "",
        description="Where a person opens the MLflow UI. Unset: the tracking server when tracking goes to one over "
        "HTTP, else http://127.0.0.1:5000 (`make mlflow`).",
    )
    # dagster.yaml reads these three itself; `m5` and the Makefile point them into the data folder.
    dagster_storage: Path | None = Field(
        None, description="The Dagster instance's SQLite storage (default: `<data folder>/dagster/storage`)."
    )
    dagster_artifacts: Path | None = Field(
        None, description="The Dagster instance's local artifacts (default: `<data folder>/dagster/artifacts`)."
    )
    dagster_logs: Path | None = Field(
        None, description="The Dagster instance's compute logs (default: `<data folder>/dagster/logs`)."
    )

    # -- the REST API
    api_keys: str = Field(
        "", description="API keys as `id:scope:secret,...` (scope `read` or `admin`). Unset: loopback only, no keys."
    )
    api_keys_file: Path | None = Field(
        None, description="API keys as lines `id scope sha256:<hex digest of the secret>`, beside or instead of those."
    )
    api_rate_limit: int = Field(
        100,
        ge=0,
        description="Requests per minute per key (per address without keys), and failed logins per address "
        "(0: no limit).",
    )
    api_batch_limit: int = Field(1000, ge=1, description="Most lookups in one batch request.")
    api_cors_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), description="Origins a browser may call the API from, comma-separated (unset: none)."
    )
    api_max_body_bytes: int = Field(1 << 20, ge=1, description="The largest request body accepted.")
    api_protect_health: bool = Field(False, description="Require a key for `/health` and `/metrics` too.")
    api_reload_seconds: float = Field(
        10.0, ge=0, description="How often the API looks for a newer forecast partition (0: never)."
    )
    api_redis_url: str = Field(
        "",
        description="The online store: every worker and replica serves the snapshot published there and shares one "
        "rate limit. Unset: each process holds its own snapshot.",
    )
    api_redis_prefix: str = Field("m5", description="The prefix of the API's keys in Redis.")
    api_rate_limit_file: Path | None = Field(
        None,
        description="Without Redis, the SQLite file of the rate limit's buckets every worker of one server opens "
        "(`python -m m5_serving --workers N` makes a fresh one). Unset: in the process.",
    )

    @field_validator("schedule_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"not an IANA time zone such as UTC or America/Chicago: {value!r}") from error
        return value

    @field_validator("api_cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(o.strip() for o in value.split(",") if o.strip())
        return value

    @field_validator(
        "forecast_start",
        "step_executor",
        "api_keys_file",
        "api_rate_limit_file",
        "dagster_storage",
        "dagster_artifacts",
        "dagster_logs",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # Compose and Helm pass an unset optional variable as an empty string.
        return None if value == "" else value

    @property
    def executor(self) -> str:
        """Where a run's steps run (``step_executor``, or its default for ``store_groups``)."""
        return self.step_executor or ("multiprocess" if self.store_groups > 1 else "in_process")

    @property
    def paths(self) -> DataPaths:
        return DataPaths(self.data_dir.expanduser().resolve())

    @staticmethod
    def variable(field: str) -> str:
        return PREFIX + field.upper()

    @classmethod
    def exported(cls, **fields: object) -> dict[str, str]:
        """The variables that hand these fields to a child process (a server's workers)."""
        return {cls.variable(name): "" if value is None else str(value) for name, value in fields.items()}


# ``Any``: pydantic validates and coerces each override against its field's type at run time.
def load_settings(**overrides: Any) -> Settings:
    """The settings of this process's environment (and ``overrides``), or a ``SettingsError`` naming
    each refused variable, its value and the rule."""
    try:
        return Settings(**overrides)
    except ValidationError as error:
        problems = []
        for problem in error.errors():
            field = str(problem["loc"][0]) if problem["loc"] else "?"
            problems.append(f"{Settings.variable(field)}={problem.get('input')!r}: {problem['msg']}")
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None


@dataclass(frozen=True)
class DataPaths:
    """Where the pipeline reads raw files and writes everything it produces."""

    root: Path

    @property
    def raw(self) -> Path:
        return self.root / "raw"

    @property
    def genuine_days(self) -> Path:
        """Known genuine days that features never cap (``features.outliers``), when present."""
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
        return Settings.exported(
            dagster_storage=home / "storage",
            dagster_artifacts=home / "artifacts",
            dagster_logs=home / "logs",
        )


def data_paths(root: str | os.PathLike[str] | None = None) -> DataPaths:
    """The data folder ``root``, else ``$M5_DATA_DIR``, else ``./data``."""
    if root is not None:
        return DataPaths(Path(root).expanduser().resolve())
    return load_settings().paths


def reference() -> str:
    """The settings reference page, in Markdown: one row per variable."""
    rows = [
        "# Settings",
        "",
        "Every setting of the pipeline, the API and the dashboard is an environment variable, read and",
        "validated when `m5`, the code location, the API or the dashboard starts (a wrong value stops it",
        "with the variable's name and the rule).",
        "",
        "*Generated from the code when the site is built (`m5_assets/settings.py`, the one class that",
        "declares them); edit that, not this page.*",
        "",
        "| variable | type | default | what it sets |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        kind = _type_name(field.annotation)
        default = "" if field.default in (None, "", ()) else f"`{field.default}`"
        rows.append(f"| `{Settings.variable(name)}` | {kind} | {default} | {field.description} |")
    return "\n".join(rows) + "\n"


def _type_name(annotation: object) -> str:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if typing.get_origin(annotation) is tuple:
        return "comma-separated list"
    if len(args) == 1:
        return _type_name(args[0])
    names: dict[object, str] = {
        Path: "path",
        dt.date: "date (YYYY-MM-DD)",
        bool: "true or false",
        int: "whole number",
        float: "number",
    }
    return names.get(annotation, "text")


if __name__ == "__main__":
    print(reference(), end="")
