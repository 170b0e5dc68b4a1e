"""The local PostgreSQL server the tests use (127.0.0.1:5432, trust auth), and throwaway
databases on it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg2
import pytest

PG_HOST, PG_PORT, PG_USER = "127.0.0.1", 5432, "postgres"


@contextlib.contextmanager
def throwaway_database(prefix: str = "ingest_platform_test") -> Iterator[str]:
    """A fresh database on the local server (127.0.0.1:5432), dropped (connections first) on
    exit. Fails, never skips, when the server is down: CI starts it, and a skipped PostgreSQL
    test would prove nothing."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres")
    except psycopg2.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL is not reachable on {PG_HOST}:{PG_PORT} ({exc}). Start it with: "
            "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
            )
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()


def instance_yaml(database: str) -> str:
    """A Dagster instance on ``database`` of the local server, every pool one step at a time
    (the deployment's default), telemetry off: what the tests running several runs at once on
    one PostgreSQL instance write as their ``dagster.yaml``."""
    return f"""\
storage:
  postgres:
    postgres_db:
      hostname: {PG_HOST}
      port: {PG_PORT}
      db_name: {database}
      username: {PG_USER}
      password: ""
concurrency:
  pools:
    default_limit: 1
telemetry:
  enabled: false
"""
