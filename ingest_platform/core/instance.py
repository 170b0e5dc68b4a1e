"""What the platform shares through the Dagster instance's own database."""

from __future__ import annotations

from dagster import DagsterInstance


def shared_store_url(instance: DagsterInstance | None) -> str | None:
    """The instance's PostgreSQL database as a SQLAlchemy URL, when the instance has one.

    Call budgets and rate-limit state live there whenever the instance is PostgreSQL, so runs
    on different machines (Kubernetes pods) draw from one budget. An embedded SQLite instance
    has no such database: callers fall back to a local file.
    """
    storage = getattr(instance, "run_storage", None) if instance is not None else None
    url = getattr(storage, "postgres_url", None)
    return url if isinstance(url, str) and url.startswith("postgresql") else None
