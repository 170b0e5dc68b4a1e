"""The one place that assembles the code location's Definitions."""

from __future__ import annotations

from dagster import AssetSelection, Definitions, define_asset_job

from ingest_platform import settings
from ingest_platform.assets import reference
from ingest_platform.assets.reference import ReferenceFiles
from ingest_platform.lake import ParquetLake

reference_job = define_asset_job(
    "reference_job",
    selection=AssetSelection.groups(reference.GROUP),
    description="Rebuild the instrument universe, trading sessions and exchange holidays.",
)


def build_definitions() -> Definitions:
    """Definitions with resources pointing at the configured (default: repository) data folders."""
    return Definitions(
        assets=[reference.instruments, reference.trading_sessions, reference.exchange_holidays],
        jobs=[reference_job],
        resources={
            "lake": ParquetLake(root=settings.lake_root()),
            "reference_files": ReferenceFiles(directory=str(settings.reference_dir())),
        },
    )


defs = build_definitions()
