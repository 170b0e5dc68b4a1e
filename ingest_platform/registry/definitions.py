"""The registry domain's Definitions: `variable_mappings` and its check."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.registry.assets import REGISTRY_ASSETS
from ingest_platform.registry.checks import REGISTRY_CHECKS


def registry_definitions() -> Definitions:
    return Definitions(assets=REGISTRY_ASSETS, asset_checks=REGISTRY_CHECKS)
