"""The market domain's Definitions: bar assets, their job and schedule, the source resources."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.market.assets import MARKET_ASSETS
from ingest_platform.market.checks import MARKET_CHECKS
from ingest_platform.market.resources import market_resources
from ingest_platform.market.schedules import market_bars_daily, market_bars_job


def market_definitions() -> Definitions:
    return Definitions(
        assets=MARKET_ASSETS,
        asset_checks=MARKET_CHECKS,
        jobs=[market_bars_job],
        schedules=[market_bars_daily],
        resources=market_resources(),
    )
