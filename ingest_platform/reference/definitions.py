"""The reference domain's Definitions: instruments, sessions, holidays and their job."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from ingest_platform.core import settings
from ingest_platform.reference.assets import REFERENCE_ASSETS
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.reference.schema import GROUP

reference_job = define_asset_job(
    "reference_job",
    selection=AssetSelection.groups(GROUP),
    description="Rebuild the instrument universe, trading sessions and exchange holidays.",
)


def reference_definitions() -> Definitions:
    return Definitions(
        assets=REFERENCE_ASSETS,
        jobs=[reference_job],
        resources={"reference_files": ReferenceFiles(directory=str(settings.reference_dir()))},
    )
