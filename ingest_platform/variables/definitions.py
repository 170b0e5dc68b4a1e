"""The variables domain's Definitions: `variable_series`, its schedule and the sensor that
follows its inputs' changes."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.variables.assets import VARIABLE_ASSETS
from ingest_platform.variables.schedules import variable_series_daily, variable_series_job
from ingest_platform.variables.sensors import variable_series_after_updates


def variables_definitions() -> Definitions:
    return Definitions(
        assets=VARIABLE_ASSETS,
        jobs=[variable_series_job],
        schedules=[variable_series_daily],
        sensors=[variable_series_after_updates],
    )
