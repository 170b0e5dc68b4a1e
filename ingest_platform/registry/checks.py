"""The registry's check: variables no ingested source carries (WARN, named with the reason)."""

from __future__ import annotations

import pandas as pd

from ingest_platform.core.lake import ParquetLake
from ingest_platform.quality.registry.mappings import unmapped_variables
from ingest_platform.quality.shared.factory import (
    CheckInputs,
    CheckWindow,
    QualityCheck,
    quality_checks,
)
from ingest_platform.quality.shared.finding import Finding
from ingest_platform.registry.schema import VARIABLE_MAPPINGS


def _load(lake: ParquetLake, window: CheckWindow) -> dict[str, pd.DataFrame]:
    return {"mappings": VARIABLE_MAPPINGS.read(lake)}


def _unmapped(inputs: CheckInputs) -> Finding:
    return unmapped_variables(inputs["mappings"])


registry_checks = quality_checks(
    VARIABLE_MAPPINGS,
    [
        QualityCheck(
            "unmapped_variables",
            _unmapped,
            "Registry variables no ingested source carries, each with its reason (WARN).",
            key_figure="unmapped",
        )
    ],
    _load,
)

REGISTRY_CHECKS = [registry_checks]
