"""The registry domain's Definitions: `variable_mappings`, its check, job and schedule."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.registry.assets import REGISTRY_ASSETS
from ingest_platform.registry.checks import REGISTRY_CHECKS
from ingest_platform.registry.schedules import variable_mappings_job, variable_mappings_weekly


def registry_definitions() -> Definitions:
    return Definitions(
        assets=REGISTRY_ASSETS,
        asset_checks=REGISTRY_CHECKS,
        jobs=[variable_mappings_job],
        schedules=[variable_mappings_weekly],
    )
