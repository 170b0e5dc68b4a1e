"""The market domain's Definitions: bar assets, their job and schedule, the source resources."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.core import settings
from ingest_platform.core.dataset_assets import with_backfill_chunks
from ingest_platform.market.assets import MARKET_ASSETS
from ingest_platform.market.checks import MARKET_CHECKS
from ingest_platform.market.resources import market_resources
from ingest_platform.market.schedules import market_bars_daily, market_bars_job


def market_definitions() -> Definitions:
    """With $INGEST_PLATFORM_BACKFILL_CHUNK set, a market backfill runs in chunks of at most
    that many days (`market.assets` keeps each chunk's lake what one run would have written)."""
    return Definitions(
        assets=with_backfill_chunks(MARKET_ASSETS, settings.backfill_chunk()),
        asset_checks=MARKET_CHECKS,
        jobs=[market_bars_job],
        schedules=[market_bars_daily],
        resources=market_resources(),
    )
