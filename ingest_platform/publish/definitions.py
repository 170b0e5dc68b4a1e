"""The publishing domain's Definitions: the warehouse assets and their resource."""

from __future__ import annotations

from dagster import Definitions, EnvVar

from ingest_platform.core import settings
from ingest_platform.core.dataset import Dataset
from ingest_platform.market.schema import CORPORATE_ACTIONS, MARKET_BARS
from ingest_platform.publish.assets import warehouse_asset
from ingest_platform.publish.resources import Warehouse
from ingest_platform.reference.schema import EXCHANGE_HOLIDAYS, INSTRUMENTS, TRADING_SESSIONS

#: What SQL users query: the consolidated datasets and the reference data.
PUBLISHED: tuple[Dataset, ...] = (
    MARKET_BARS,
    CORPORATE_ACTIONS,
    INSTRUMENTS,
    TRADING_SESSIONS,
    EXCHANGE_HOLIDAYS,
)

WAREHOUSE_URL_ENV = "INGEST_PLATFORM_WAREHOUSE_URL"


def warehouse_resource() -> Warehouse:
    """The embedded SQLite warehouse, or the URL in $INGEST_PLATFORM_WAREHOUSE_URL."""
    return (
        Warehouse(url=EnvVar(WAREHOUSE_URL_ENV)) if settings.env(WAREHOUSE_URL_ENV) else Warehouse()
    )


def publish_definitions() -> Definitions:
    return Definitions(
        assets=[warehouse_asset(d) for d in PUBLISHED],
        resources={"warehouse": warehouse_resource()},
    )
