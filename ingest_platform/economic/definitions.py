"""The economic domain's Definitions: indicators, the release calendar, checks, schedules."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.economic.assets import ECONOMIC_ASSETS
from ingest_platform.economic.checks import ECONOMIC_CHECKS
from ingest_platform.economic.resources import economic_resources
from ingest_platform.economic.schedules import ECONOMIC_JOBS, ECONOMIC_SCHEDULES


def economic_definitions() -> Definitions:
    return Definitions(
        assets=ECONOMIC_ASSETS,
        asset_checks=ECONOMIC_CHECKS,
        jobs=ECONOMIC_JOBS,
        schedules=ECONOMIC_SCHEDULES,
        resources=economic_resources(),
    )
