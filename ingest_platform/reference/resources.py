"""Where the versioned reference snapshots live."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field


class ReferenceFiles(ConfigurableResource):
    """The folder of reference snapshots (``data/reference`` in the repository and the wheel)."""

    directory: str = Field(
        description="Folder holding sp500_constituents.csv, etfs.csv, fx_pairs.csv."
    )
