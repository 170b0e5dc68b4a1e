"""The instance configs the README uses: runs really land where dagster.yaml says.

The PostgreSQL test runs against the server on 127.0.0.1:5432. It fails, never skips, when the
server is down: CI starts it, and a skipped production-instance test would prove nothing.
"""

from __future__ import annotations

import os
import shutil

import psycopg2
import pytest
from dagster import DagsterInstance, DagsterRunStatus, materialize

from ingest_platform.core import settings
from ingest_platform.reference.assets import ReferenceFiles, instruments
from ingest_platform_tests.postgres import PG_HOST, PG_PORT, PG_USER


def _resources(lake):
    return {
        "lake": lake,
        "reference_files": ReferenceFiles(directory=str(settings.reference_dir())),
    }


@pytest.mark.slow
def test_root_dagster_yaml_records_runs_in_sqlite_under_data(lake, tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(settings.project_root() / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.chdir(home)
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    with DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled
        result = materialize([instruments], resources=_resources(lake), instance=instance)
        assert result.success

    assert (home / "data" / "dagster" / "storage" / "history" / "runs.db").exists()
    with DagsterInstance.get() as reopened:
        run = reopened.get_run_by_id(result.run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert reopened.get_latest_materialization_event(instruments.key) is not None


@pytest.mark.slow
def test_postgres_instance_records_a_real_materialization(
    lake, tmp_path, monkeypatch, postgres_database
):
    home = tmp_path / "pg-home"
    home.mkdir()
    shutil.copy(settings.project_root() / "deploy" / "dagster-postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    for key, value in {
        "DAGSTER_PG_HOST": PG_HOST,
        "DAGSTER_PG_PORT": str(PG_PORT),
        "DAGSTER_PG_DB": postgres_database,
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": "",
    }.items():
        monkeypatch.setenv(key, value)

    with DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = materialize([instruments], resources=_resources(lake), instance=instance)
        assert result.success

    # Read it back through SQL, not through the instance that wrote it.
    with (
        psycopg2.connect(
            host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=postgres_database
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute("SELECT status FROM runs WHERE run_id = %s", (result.run_id,))
        assert cur.fetchone() == ("SUCCESS",)
        cur.execute(
            "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = %s",
            (result.run_id, "ASSET_MATERIALIZATION"),
        )
        assert cur.fetchone() == (1,)
    assert os.path.exists(lake.partition_path("instruments").path)
