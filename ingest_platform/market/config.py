"""Run configuration of the per-source bar assets (set it in the launchpad)."""

from __future__ import annotations

from dagster import Config
from pydantic import Field

from ingest_platform.reference import universe


class BarsConfig(Config):
    """Run configuration shared by the per-source bar assets (set it in the launchpad)."""

    refresh: bool = Field(
        default=False,
        description="Re-fetch every expected symbol in the range. Default: fetch only what the "
        "lake is missing, so a daily run after a backfill asks for one day.",
    )
    asset_classes: list[str] = Field(
        default=list(universe.ASSET_CLASSES),
        description="Subset of equity, etf, fx, index, commodity.",
    )
    symbols: list[str] = Field(
        default=[], description="Explicit symbols (overrides asset_classes)."
    )
    max_failure_rate: float = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="Fraction of requested symbols allowed to fail before the run fails (0..1).",
    )
