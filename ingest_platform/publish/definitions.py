"""The publishing domain's Definitions: the warehouse assets, dataset_metadata, and what runs
them by themselves."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetCheckKey, Definitions, EnvVar

from ingest_platform.core import settings
from ingest_platform.publish.assets import dataset_metadata_asset, warehouse_asset
from ingest_platform.publish.catalogue import PUBLISHED
from ingest_platform.publish.resources import Warehouse
from ingest_platform.publish.schedules import (
    dataset_metadata_after_updates,
    dataset_metadata_daily,
    dataset_metadata_job,
    warehouse_automation,
)

WAREHOUSE_URL_ENV = "INGEST_PLATFORM_WAREHOUSE_URL"


def warehouse_resource() -> Warehouse:
    """The embedded SQLite warehouse, or the URL in $INGEST_PLATFORM_WAREHOUSE_URL (read when
    a run starts, through EnvVar, so a password in it is never in config)."""
    if settings.env(WAREHOUSE_URL_ENV):
        return Warehouse(url=EnvVar(WAREHOUSE_URL_ENV))
    return Warehouse()


def publish_definitions(check_keys: Sequence[AssetCheckKey]) -> Definitions:
    """The publishing assets over the other domains; `check_keys` are all of their checks,
    whose latest results the metadata reports."""
    return Definitions(
        assets=[*(warehouse_asset(d) for d in PUBLISHED), dataset_metadata_asset(check_keys)],
        jobs=[dataset_metadata_job],
        schedules=[dataset_metadata_daily],
        sensors=[dataset_metadata_after_updates, warehouse_automation],
        resources={"warehouse": warehouse_resource()},
    )
