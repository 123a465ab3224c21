"""The repository's dagster.yaml: SQLite in the data folder by default, Postgres when DAGSTER_PG_*
are set, tested against a real PostgreSQL server on loopback."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg
import pyarrow.parquet as pq
import pytest
import servers
from conftest import MAY, OLDER
from forecasting import QUICK

from m5_assets import tables
from m5_assets.definitions import build_definitions
from m5_assets.defs.automation import ISSUE_FORECAST_JOB
from m5_assets.defs.instance_storage import PG_SETTINGS, InstanceStorageError, postgres_url
from m5_assets.defs.jobs import TRAIN_MODEL_JOB
from m5_assets.defs.resources import M5Data
from m5_assets.settings import data_paths

ROOT = Path(__file__).resolve().parents[1]
needs_postgres = pytest.mark.skipif(
    not (servers.postgres_bin("initdb") and servers.postgres_bin("postgres")),
    reason="the PostgreSQL server (Debian's postgresql package) is not installed; .ci/run installs it",
)


def test_postgres_settings_make_one_url_and_partial_settings_are_refused():
    assert postgres_url({}) is None
    env = {
        "DAGSTER_PG_HOST": "db",
        "DAGSTER_PG_USER": "dagster",
        "DAGSTER_PG_PASSWORD": "p@ss/word",
        "DAGSTER_PG_DB": "dagster",
    }
    assert postgres_url(env) == "postgresql+psycopg2://dagster:p%40ss%2Fword@db:5432/dagster"
    assert postgres_url(env | {"DAGSTER_PG_PORT": "6543"}).endswith("@db:6543/dagster")
    with pytest.raises(
        InstanceStorageError, match="DAGSTER_PG_HOST set but DAGSTER_PG_USER, DAGSTER_PG_PASSWORD, DAGSTER_PG_DB not"
    ):
        postgres_url({"DAGSTER_PG_HOST": "db"})
    with pytest.raises(InstanceStorageError, match="DAGSTER_PG_PORT must be a port number"):
        postgres_url(env | {"DAGSTER_PG_PORT": "five"})


@pytest.fixture
def instance_home(tmp_path, monkeypatch) -> Path:
    """A DAGSTER_HOME holding only the repository's dagster.yaml, its data-folder paths under tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    for name, value in data_paths(tmp_path / "instance-data").dagster_instance_env().items():
        monkeypatch.setenv(name, value)
    for name in PG_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    return home


def test_without_postgres_settings_the_instance_is_sqlite_in_the_data_folder(instance_home, tmp_path):
    with dg.DagsterInstance.from_config(str(instance_home)) as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
        assert instance.get_runs() == []
    assert (tmp_path / "instance-data" / "dagster" / "storage" / "history").is_dir()


@needs_postgres
def test_a_forecast_partition_materialized_on_postgres_is_read_back_from_its_event_log(
    model_data, instance_home, tmp_path, monkeypatch
):
    import psycopg2

    defs = build_definitions(M5Data(data_dir=str(model_data)))
    with servers.postgres_server() as settings:
        for name, value in settings.items():
            monkeypatch.setenv(name, value)
        with dg.DagsterInstance.from_config(str(instance_home)) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
            trained = defs.resolve_job_def(TRAIN_MODEL_JOB).execute_in_process(
                instance=instance, partition_key=MAY, run_config={"ops": {"demand_model": {"config": QUICK}}}
            )
            issued = defs.resolve_job_def(ISSUE_FORECAST_JOB).execute_in_process(
                instance=instance, partition_key=OLDER.isoformat()
            )
            assert trained.success and issued.success
            checked_in_run = {(e.asset_check_key.name, e.passed) for e in issued.get_asset_check_evaluations()}

        # A fresh instance, as the webserver or another process would open it: all of it is in Postgres.
        with dg.DagsterInstance.from_config(str(instance_home)) as instance:
            assert {r.run_id for r in instance.get_runs()} == {trained.run_id, issued.run_id}
            (record,) = instance.fetch_materializations(dg.AssetKey("forecasts"), limit=10).records
            assert record.partition_key == OLDER.isoformat() and record.run_id == issued.run_id
            shown = {k: v.value for k, v in record.asset_materialization.metadata.items()}
            stored = pq.read_table(tables.FORECASTS.path(model_data / "warehouse", OLDER))
            assert shown["dagster/row_count"] == stored.num_rows > 0
            evaluations = instance.all_logs(issued.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
            checked = {
                (
                    e.dagster_event.asset_check_evaluation_data.check_name,
                    e.dagster_event.asset_check_evaluation_data.passed,
                )
                for e in evaluations
            }
            assert checked == checked_in_run and ("levels_add_up", True) in checked
        connection = psycopg2.connect(
            host=settings["DAGSTER_PG_HOST"],
            port=settings["DAGSTER_PG_PORT"],
            user=settings["DAGSTER_PG_USER"],
            password=settings["DAGSTER_PG_PASSWORD"],
            dbname=settings["DAGSTER_PG_DB"],
        )
        with connection, connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM runs")
            assert cursor.fetchone() == (2,)
        connection.close()
    # Nothing went to the SQLite folder the instance would otherwise use.
    assert not (tmp_path / "instance-data" / "dagster" / "storage").exists()
