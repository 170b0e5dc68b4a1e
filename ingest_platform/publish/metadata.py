"""`metadata.json`: what the lake holds, described from the lake itself.

Every figure is computed from the Parquet files (row counts, date ranges, partitions present
and missing, the source mix), coverage with the quality functions (`quality.bars.coverage`, never a
second implementation), and the rest from the instance (last materialization, latest check
results) and the call budgets. The document has a versioned JSON schema,
``metadata.schema.json`` beside this module.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from typing import Any

import pandas as pd
from dagster import DagsterInstance

from ingest_platform.core import fingerprint
from ingest_platform.core.dataset import Dataset
from ingest_platform.core.http import CallBudget
from ingest_platform.core.lake import ParquetLake
from ingest_platform.economic import due as economic_due
from ingest_platform.economic.schema import ECONOMIC_INDICATORS
from ingest_platform.market.schema import MARKET_BARS, YAHOO_DAILY_BARS
from ingest_platform.market.unavailable import read_unavailable
from ingest_platform.publish import state
from ingest_platform.publish.catalogue import DATASETS
from ingest_platform.quality.bars.coverage import coverage_by_key
from ingest_platform.quality.bars.expected import expected_sessions
from ingest_platform.quality.bars.membership import member_sessions, split_known_gaps
from ingest_platform.reference.schema import INDEX_MEMBERSHIP, INSTRUMENTS
from ingest_platform.registry.schema import VARIABLE_MAPPINGS

SCHEMA_VERSION = 1
#: Missing partitions listed by key (the count is always complete).
MISSING_LISTED = 50
#: Keys per coverage table (lowest coverage first; the summary figures cover every key).
COVERAGE_LISTED = 100


def schema() -> dict[str, Any]:
    """The JSON schema of `metadata.json` (schema_version 1)."""
    text = resources.files("ingest_platform.publish").joinpath("metadata.schema.json").read_text()
    return dict(json.loads(text))


def _day(value: Any) -> str | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).date().isoformat()


def _date_column(dataset: Dataset) -> str | None:
    columns = dataset.model.to_schema().columns
    return "date" if "date" in columns else None


def partition_summary(
    lake: ParquetLake, dataset: Dataset, now: dt.datetime
) -> dict[str, Any] | None:
    """Partitions present, expected (the closed keys of the definition up to now), missing."""
    if dataset.partitioning is None:
        return None
    present = lake.partition_keys(dataset.name)
    expected = dataset.partitioning.closed_keys(now)
    if present:  # missing counts from the first partition the lake holds
        expected = [k for k in expected if k >= present[0]]
    missing = sorted(set(expected) - set(present))
    return {
        "present": len(present),
        "first": present[0] if present else None,
        "last": present[-1] if present else None,
        "expected": len(expected),
        "missing_count": len(missing),
        "missing": missing[:MISSING_LISTED],
    }


def coverage_table(table: pd.DataFrame, key: str) -> dict[str, Any]:
    """A `coverage_by_key` table as JSON.

    Keys the dataset holds no row of at all (a symbol never ingested, a variable never
    fetched) are listed apart as ``absent``: their coverage is trivially 0 and would bury the
    keys that have gaps. The summary figures and ``lowest`` cover the keys held.
    """
    absent = table[(table["present"] == 0) & (table["expected"] > 0)]
    held = table.drop(absent.index)
    ratios = held["ratio"].dropna()
    rows = [
        {
            key: str(row[key]),
            "ratio": None if pd.isna(row["ratio"]) else round(float(row["ratio"]), 6),
            "present": int(row["present"]),
            "expected": int(row["expected"]),
        }
        for row in held.head(COVERAGE_LISTED).to_dict("records")
    ]
    return {
        "key": key,
        "keys": len(held),
        "min": round(float(ratios.min()), 6) if len(ratios) else None,
        "median": round(float(ratios.median()), 6) if len(ratios) else None,
        "below_0_9": int((ratios < 0.9).sum()),
        "lowest": rows,
        "absent": len(absent),
        "absent_keys": sorted(str(k) for k in absent[key])[:MISSING_LISTED],
    }


def _bar_coverage(
    lake: ParquetLake, dataset: Dataset, frame: pd.DataFrame, now: dt.datetime
) -> dict[str, Any]:
    """Coverage against each date's expected symbols, as the checks count it: index members on
    the sessions they were members (known-unavailable member days left out), every other
    instrument on its calendar."""
    everything = INSTRUMENTS.read(lake, columns=["symbol", "calendar", "asset_class"])
    others = everything[everything["asset_class"] != "equity"]
    start, end = frame["date"].min(), frame["date"].max()
    settled = pd.Timestamp(now)
    intervals = INDEX_MEMBERSHIP.read(lake)
    members = member_sessions(intervals, start, end, settled_by=settled)
    gaps = read_unavailable(lake, ["yahoo"])
    members, _ = split_known_gaps(members, gaps, frame)
    expected = pd.concat(
        [expected_sessions(others, start, end, settled_by=settled), members[["symbol", "date"]]],
        ignore_index=True,
    )
    return coverage_table(coverage_by_key(frame, expected, start=start, end=end), "symbol")


def _economic_coverage(lake: ParquetLake, frame: pd.DataFrame, now: dt.datetime) -> dict[str, Any]:
    due = economic_due.expected_publications(lake, frame, pd.Timestamp(now))
    table = coverage_by_key(frame, due[["variable", "date"]], key="variable")
    return coverage_table(table, "variable")


#: The columns the figures need: reading only these keeps three years of bars cheap.
_FIGURE_COLUMNS = ("symbol", "variable", "series_id", "date", "source", "realtime_start")

#: Which datasets get a coverage table, and how it is computed.
COVERAGE: dict[str, Callable[..., dict[str, Any]]] = {
    MARKET_BARS.name: lambda lake, frame, now: _bar_coverage(lake, MARKET_BARS, frame, now),
    YAHOO_DAILY_BARS.name: lambda lake, frame, now: _bar_coverage(
        lake, YAHOO_DAILY_BARS, frame, now
    ),
    ECONOMIC_INDICATORS.name: _economic_coverage,
}


def describe_dataset(
    lake: ParquetLake,
    dataset: Dataset,
    instance: DagsterInstance | None,
    checks: Sequence[state.CheckResult],
    now: dt.datetime,
) -> dict[str, Any]:
    """One dataset's entry of `metadata.json`."""
    present = (
        lake.partition_keys(dataset.name) if dataset.partitioned else
        (["all"] if lake.has_partition(dataset.name) else [])
    )  # fmt: skip
    wanted = [c for c in _FIGURE_COLUMNS if c in dataset.columns]
    frame = dataset.read(lake, columns=wanted) if present else dataset.empty_frame()[wanted]
    date_column = _date_column(dataset)
    entry: dict[str, Any] = {
        "description": dataset.description,
        "group": dataset.group,
        "natural_key": list(dataset.key),
        "schema": [
            {"name": f.name, "type": str(f.type), "nullable": bool(f.nullable)}
            for f in dataset.arrow_schema
        ],
        "rows": len(frame),
        "content": describe_content(lake, dataset),
        "date_range": None,
        "partitions": partition_summary(lake, dataset, now),
        "source_mix": None,
        "coverage": None,
        "last_materialization": None,
        "checks": [c.as_dict() for c in checks if c.asset == dataset.name],
    }
    if date_column and len(frame):
        entry["date_range"] = {
            "column": date_column,
            "min": _day(frame[date_column].min()),
            "max": _day(frame[date_column].max()),
        }
    if "source" in frame.columns and len(frame):
        entry["source_mix"] = {
            str(k): int(v) for k, v in frame["source"].value_counts().sort_index().items()
        }
    if dataset.name in COVERAGE and len(frame):
        entry["coverage"] = COVERAGE[dataset.name](lake, frame, now)
    if instance is not None:
        last = state.last_materialization(instance, dataset.name)
        entry["last_materialization"] = last.as_dict() if last else None
    return entry


def describe_content(lake: ParquetLake, dataset: Dataset) -> dict[str, Any]:
    """The lake's content of `dataset` as `ingest-platform audit` recomputes it (one read of
    every column: the figures above read only the columns they need)."""
    state, corrupt = dataset.content_state(lake)
    return {
        "partitions": len(state) + len(corrupt),
        "rows": sum(p.rows for p in state.values()),
        "digest": fingerprint.digest(
            {**{k: p.content_hash for k, p in state.items()}, **dict.fromkeys(corrupt, "corrupt")}
        ),
    }


def describe_budgets(budgets: Mapping[str, CallBudget]) -> dict[str, Any]:
    """Each source's calls today against its limit."""
    out = {}
    for name, budget in sorted(budgets.items()):
        report = budget.report()
        out[name] = {
            "day": report.day,
            "calls": report.calls,
            "limit": report.limit,
            "remaining": report.remaining,
            "cost": round(report.cost, 6),
            "exhausted": report.exhausted,
        }
    return out


def describe_registry(lake: ParquetLake) -> dict[str, Any] | None:
    if not lake.has_partition(VARIABLE_MAPPINGS.name):
        return None
    mappings = VARIABLE_MAPPINGS.read(lake)
    unmapped = mappings[mappings["source"].isna()]
    return {
        "variables": len(mappings),
        "mapped": int(mappings["source"].notna().sum()),
        "by_source": {
            str(k): int(v) for k, v in mappings["source"].value_counts().sort_index().items()
        },
        "unmapped": [
            {"variable": r.variable, "reason": r.reason} for r in unmapped.itertuples(index=False)
        ],
    }


def build(
    lake: ParquetLake,
    instance: DagsterInstance | None,
    checks: Sequence[state.CheckResult],
    budgets: Mapping[str, CallBudget],
    now: dt.datetime,
    datasets: Sequence[Dataset] = DATASETS,
) -> dict[str, Any]:
    """The whole `metadata.json` document."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": now.astimezone(dt.UTC).isoformat(),
        "lake_root": lake.root,
        "datasets": {d.name: describe_dataset(lake, d, instance, checks, now) for d in datasets},
        "sources": describe_budgets(budgets),
        "registry": describe_registry(lake),
    }
