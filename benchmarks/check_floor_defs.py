"""Dagster's own floor for `ingest-platform check`: the market check keys (yahoo_daily_bars'
and market_bars' quality checks, same names, same blocking flags, same multi-check ops) on
assets of the same keys and partitions, with empty bodies that pass without reading anything.
Executing a checks-only job over these against the same instance measures what Dagster costs
for that job before any of our work (used by quality_checks.py)."""

from dagster import (
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetSelection,
    AssetSpec,
    Definitions,
    define_asset_job,
    multi_asset_check,
)

from ingest_platform.core.partitions import market_day_partitions
from ingest_platform.market.checks import MARKET_CHECKS

JOB_NAME = "floor_checks"


def _empty(checks: AssetChecksDefinition) -> AssetChecksDefinition:
    specs = [
        AssetCheckSpec(spec.name, asset=spec.asset_key, blocking=spec.blocking)
        for spec in checks.check_specs
    ]

    @multi_asset_check(name=checks.node_def.name, specs=specs, can_subset=True)
    def _checks(context):
        for key in context.selected_asset_check_keys:
            yield AssetCheckResult(asset_key=key.asset_key, check_name=key.name, passed=True)

    return _checks


FLOOR_CHECKS = [_empty(checks) for checks in MARKET_CHECKS]
CHECK_KEYS = sorted((k for c in FLOOR_CHECKS for k in c.check_keys), key=str)
ASSETS = sorted({k.asset_key for k in CHECK_KEYS}, key=str)

defs = Definitions(
    assets=[AssetSpec(key, partitions_def=market_day_partitions) for key in ASSETS],
    asset_checks=FLOOR_CHECKS,
    jobs=[define_asset_job(JOB_NAME, selection=AssetSelection.checks(*CHECK_KEYS))],
)
