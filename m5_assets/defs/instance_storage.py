"""The Dagster instance's run, event-log and schedule storage, chosen when the instance loads:
SQLite in the data folder by default, Postgres when ``DAGSTER_PG_*`` settings are present.

One ``dagster.yaml`` then serves a laptop and a deployment alike; Dagster's own ``postgres``
block cannot be made conditional, and two instance files would drift apart. Each process that
loads the instance (webserver, daemon, code server, run workers) decides from its own
environment, so they must all see the same settings (compose passes them to every service).
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.sqlite_storage import DagsterSqliteStorage
from dagster._serdes import ConfigurableClass, ConfigurableClassData

from m5_assets import library_env

# What a deployment sets (library_env.DAGSTER_PG). Host, user, password and database are required
# together; the port defaults to Postgres's own.
PG_SETTINGS = library_env.DAGSTER_PG
PG_REQUIRED = ("DAGSTER_PG_HOST", "DAGSTER_PG_USER", "DAGSTER_PG_PASSWORD", "DAGSTER_PG_DB")


class InstanceStorageError(ValueError):
    pass


def postgres_url(env: Mapping[str, str]) -> str | None:
    """The Postgres URL the ``DAGSTER_PG_*`` settings describe, or None when none is set."""
    given = {name: env[name] for name in PG_SETTINGS if env.get(name)}
    if not given:
        return None
    missing = [name for name in PG_REQUIRED if name not in given]
    if missing:
        raise InstanceStorageError(
            f"Dagster instance storage: {', '.join(sorted(given))} set but {', '.join(missing)} not: "
            "set all of DAGSTER_PG_HOST, DAGSTER_PG_USER, DAGSTER_PG_PASSWORD and DAGSTER_PG_DB for Postgres, "
            "or none of them for SQLite in the data folder"
        )
    port = given.get("DAGSTER_PG_PORT", "5432")
    if not port.isdigit():
        raise InstanceStorageError(f"Dagster instance storage: DAGSTER_PG_PORT must be a port number, got {port!r}")
    user, password = quote(given["DAGSTER_PG_USER"], safe=""), quote(given["DAGSTER_PG_PASSWORD"], safe="")
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; dagster-postgres brings psycopg2.
    return f"postgresql+psycopg2://{user}:{password}@{given['DAGSTER_PG_HOST']}:{port}/{quote(given['DAGSTER_PG_DB'], safe='')}"


class DataFolderOrPostgresStorage(DagsterStorage, ConfigurableClass):
    """Never instantiated: loading it from the instance config yields Dagster's SQLite or Postgres
    storage (it subclasses DagsterStorage because Dagster checks the configured class)."""

    @classmethod
    def config_type(cls) -> dict:
        from dagster import StringSource

        return {"sqlite_base_dir": StringSource}

    @classmethod
    def from_config_value(  # type: ignore[override]  # Dagster declares it returning Self; this class stands in for another
        cls, inst_data: ConfigurableClassData | None, config_value: dict
    ) -> DagsterStorage:
        url = postgres_url(library_env.dagster_postgres_variables())
        if url is None:
            return DagsterSqliteStorage.from_config_value(None, {"base_dir": config_value["sqlite_base_dir"]})  # type: ignore[arg-type]  # its inst_data may be None (the SQLite storage only keeps it)
        try:
            from dagster_postgres import DagsterPostgresStorage
        except ImportError as error:  # pragma: no cover - dagster-postgres is a dependency
            raise InstanceStorageError("DAGSTER_PG_* set but dagster-postgres is not installed") from error
        # The URL (with its password) stays in memory: no inst_data that `dagster instance info` would print.
        return DagsterPostgresStorage(postgres_url=url)
