"""The variables domain's Definitions: `variable_series` and its schedule."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.variables.assets import VARIABLE_ASSETS
from ingest_platform.variables.schedules import variable_series_daily, variable_series_job


def variables_definitions() -> Definitions:
    return Definitions(
        assets=VARIABLE_ASSETS, jobs=[variable_series_job], schedules=[variable_series_daily]
    )
