"""The market flows' reports, shown in Dagster: partition and run metadata.

`market.ingest` returns what a run did as plain data (`BarsIngest`); this adapter is the one
place that decides how it reads in the UI. Per-partition figures go on each partition's
materialization, the run's own figures once, on its newest partition (`record_run`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetExecutionContext, MetadataValue

from ingest_platform.core.dataset import DatasetWrite
from ingest_platform.core.dataset_assets import record_partitions
from ingest_platform.core.metadata import mapping_table, markdown_table
from ingest_platform.core.partitions import market_day
from ingest_platform.market.ingest import BarsIngest


def symbol_list(symbols: set[str]) -> MetadataValue:
    """Every symbol, as Markdown (never truncated): `AAPL`, `MSFT`, …"""
    return MetadataValue.md(", ".join(f"`{s}`" for s in sorted(symbols)) or "_none_")


def partition_metadata(
    write: DatasetWrite, expected: Mapping[str, set[str]]
) -> dict[str, dict[str, Any]]:
    """Per-partition figures of a bar dataset: symbols present, expected, missing."""
    out: dict[str, dict[str, Any]] = {}
    for key, part in write.partitions.items():
        present = set(part.rows["symbol"]) if len(part.rows) else set()
        missing = expected[key] - present
        out[key] = {
            "symbols": MetadataValue.int(len(present)),
            "expected_symbols": MetadataValue.int(len(expected[key])),
            "missing_count": MetadataValue.int(len(missing)),
            "missing_symbols": symbol_list(missing),
            "market_closed": MetadataValue.bool(market_day(key).market_closed),
        }
    return out


def record_bars(context: AssetExecutionContext, report: BarsIngest) -> dict[str, MetadataValue]:
    """Record the partitions a bar ingest wrote (and those it left missing) on their
    materializations; return the run's figures, for the caller to add to and `record_run`."""
    dataset = report.write.dataset
    per_partition = partition_metadata(report.write, report.expected)
    record_partitions(context, report.write, per_partition)
    for key in report.unstored_keys:
        context.add_asset_metadata(
            {
                "stored": MetadataValue.bool(False),
                "missing_count": MetadataValue.int(len(report.expected[key])),
            },
            asset_key=dataset,
            partition_key=key,
        )
    plan, fetch, write = report.plan, report.fetch, report.write
    keys = report.keys
    return {
        "source": MetadataValue.text(report.source),
        "run_partitions": MetadataValue.text(f"{keys[0]}..{keys[-1]} ({len(keys)})"),
        "requested_symbols": MetadataValue.int(len(plan.instruments)),
        "fetched_range": MetadataValue.text("" if plan.empty else f"{plan.start}..{plan.end}"),
        "fetched_rows": MetadataValue.int(len(fetch.bars)),
        "off_calendar_rows_dropped": MetadataValue.int(report.off_calendar_rows),
        "rows_outside_range": MetadataValue.int(report.rows_outside_range),
        "unsettled_rows_dropped": MetadataValue.int(report.unsettled_rows),
        "rows_outside_membership": MetadataValue.int(report.rows_outside_membership),
        "unavailable_count": MetadataValue.int(len(report.unavailable)),
        "unavailable_from_source": markdown_table(report.unavailable.drop(columns=["recorded_at"])),
        "partitions_left_missing": MetadataValue.int(len(keys) - len(report.written_keys)),
        "quarantined_rows": MetadataValue.int(report.quarantine.rejected_rows),
        "quarantined": mapping_table(report.quarantine.reasons, "symbol", "reason"),
        "failed_count": MetadataValue.int(len(fetch.failures)),
        "stale_count": MetadataValue.int(len(report.stale)),
        "stale_symbols": markdown_table(report.stale),
        "failed_symbols": mapping_table(fetch.failure_messages(), "symbol", "error"),
        "partitions_written": MetadataValue.int(write.rewritten),
        "partitions_unchanged": MetadataValue.int(write.unchanged),
        "partitions_with_missing_symbols": MetadataValue.int(
            sum(m["missing_count"].value > 0 for m in per_partition.values())
        ),
    }
