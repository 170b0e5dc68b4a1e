"""The reference domain's Definitions: instruments, sessions, holidays, their job and schedule."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.core import settings
from ingest_platform.reference.assets import REFERENCE_ASSETS
from ingest_platform.reference.checks import REFERENCE_CHECKS
from ingest_platform.reference.jobs import reference_job
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.reference.schedules import reference_weekly

__all__ = ["reference_definitions", "reference_job"]


def reference_definitions() -> Definitions:
    return Definitions(
        assets=REFERENCE_ASSETS,
        asset_checks=REFERENCE_CHECKS,
        jobs=[reference_job],
        schedules=[reference_weekly],
        resources={"reference_files": ReferenceFiles(directory=str(settings.reference_dir()))},
    )
