"""What every domain's assets share: the lake."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.core import settings
from ingest_platform.core.lake import ParquetLake


def core_definitions() -> Definitions:
    return Definitions(resources={"lake": ParquetLake(root=settings.lake_root())})
