"""The reference domain's job: its whole asset group in one run."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from ingest_platform.reference.schema import GROUP

reference_job = define_asset_job(
    "reference_job",
    selection=AssetSelection.groups(GROUP),
    description="Rebuild the instrument universe, S&P 500 membership, trading sessions and "
    "exchange holidays.",
)
