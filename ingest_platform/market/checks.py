"""Asset checks of the market datasets.

`fetch_failure_rate` describes a run, not the data: it is emitted by the per-source assets
themselves, with their materialization, and blocks `market_bars` when a source failed on too
many symbols. The data checks (coverage, staleness, drift, anomalies) are declared here too,
through the quality factory.
"""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from ingest_platform.core.metadata import mapping_table
from ingest_platform.market.sources.bars import BarsFetch

FAILURE_CHECK = "fetch_failure_rate"


def failure_rate_check(asset: str, result: BarsFetch, max_failure_rate: float) -> AssetCheckResult:
    """ERROR when more than `max_failure_rate` of the requested symbols failed."""
    rate = result.failure_rate
    return AssetCheckResult(
        check_name=FAILURE_CHECK,
        asset_key=asset,
        passed=rate <= max_failure_rate,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{len(result.failures)} of {len(result.requested)} symbols failed ({rate:.1%}); "
            f"allowed {max_failure_rate:.1%}"
        ),
        metadata={
            "failed_symbols": mapping_table(result.failure_messages(), "symbol", "error"),
            "failed_count": MetadataValue.int(len(result.failures)),
            "requested_count": MetadataValue.int(len(result.requested)),
            "failure_rate": MetadataValue.float(rate),
            "max_failure_rate": MetadataValue.float(max_failure_rate),
        },
    )
