"""Daily market bars: one asset per source and the consolidated `market_bars`.

Every asset here runs over a partition *range* in one run (`BackfillPolicy.single_run()`), so a
three-year backfill makes one history request per symbol per source, and writes each daily
partition atomically with its own metadata (rows, symbols, which expected symbols are missing).
The rules live in `ingest_platform.market`; these functions only wire them to Dagster.

A symbol that fails (unknown, throttled past the retries, malformed answer) is named with its
error in the run metadata and the rest is written. When failures exceed `max_failure_rate`, the
blocking `fetch_failure_rate` check fails the run after the good data is recorded, so nothing
downstream consumes an incomplete range.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pydantic import Field

from ingest_platform import market, schemas, universe
from ingest_platform.assets.storage import OWNERS, definition_metadata
from ingest_platform.lake import LakeError, ParquetLake
from ingest_platform.partitions import market_day, market_day_partitions
from ingest_platform.resources import AlphaVantage, Polygon, YahooFinance
from ingest_platform.sources.alpha_vantage import AlphaVantageSource
from ingest_platform.sources.bars import BarsFetch, Instrument, empty_actions, empty_bars

GROUP = "market"
FAILURE_CHECK = "fetch_failure_rate"
_SHOWN_SYMBOLS = 40  # metadata lists are truncated; counts are always complete


class BarsConfig(Config):
    """Run configuration shared by the per-source bar assets (set it in the launchpad)."""

    refresh: bool = Field(
        default=False,
        description="Re-fetch every expected symbol in the range. Default: fetch only what the "
        "lake is missing, so a daily run after a backfill asks for one day.",
    )
    asset_classes: list[str] = Field(
        default=list(universe.ASSET_CLASSES), description="Subset of equity, etf, fx."
    )
    symbols: list[str] = Field(
        default=[], description="Explicit symbols (overrides asset_classes)."
    )
    max_failure_rate: float = Field(
        default=0.05,
        description="Fraction of requested symbols allowed to fail before the run fails.",
    )


def load_universe(lake: ParquetLake, config: BarsConfig) -> list[Instrument]:
    try:
        frame = lake.read("instruments")
    except LakeError as exc:
        raise LakeError(f"{exc}; materialize the `instruments` asset first") from exc
    chosen = universe.select(frame, tuple(config.asset_classes), tuple(config.symbols) or None)
    return Instrument.from_frame(chosen)


def _read_partitions(
    lake: ParquetLake, dataset: str, keys: Sequence[str]
) -> dict[str, pd.DataFrame]:
    present = set(lake.partition_keys(dataset)) & set(keys)
    if not present:
        return {}
    frame = lake.read(dataset, sorted(present))
    return market.rows_by_partition(frame, sorted(present))


def _shown(symbols: set[str] | list[str]) -> list[str]:
    ordered = sorted(symbols)
    return ordered[:_SHOWN_SYMBOLS] + (
        [f"… {len(ordered) - _SHOWN_SYMBOLS} more"] if len(ordered) > _SHOWN_SYMBOLS else []
    )


def write_daily_partitions(
    context: AssetExecutionContext,
    lake: ParquetLake,
    dataset: str,
    model: Any,
    fetched: pd.DataFrame,
    expected: dict[str, set[str]],
    existing: dict[str, pd.DataFrame],
    merge: Callable[[pd.DataFrame | None, pd.DataFrame], pd.DataFrame],
    asset_key: AssetKey,
) -> dict[str, int]:
    """Merge and atomically write each partition of the run, attaching per-partition metadata.

    `merge(old, fetched)` gives a partition's new content. A partition whose content would not
    change is not rewritten, so re-running a range leaves the lake untouched.
    Returns counts for the run metadata.
    """
    by_key = market.rows_by_partition(fetched, expected.keys())
    contents: dict[str, pd.DataFrame] = {}
    changed: dict[str, pd.DataFrame] = {}
    for key in sorted(expected):
        old = existing.get(key)
        new = merge(old, by_key[key])
        contents[key] = new if not new.empty else schemas.empty_frame(model)
        if old is None or not market.same_content(old, contents[key]):
            changed[key] = contents[key]
    written = lake.write_partitions(dataset, changed, schemas.arrow_schema(model))
    uris = {w.partition_key: w.uri for w in written}
    totals = {
        "rows": 0,
        "written": len(changed),
        "unchanged": len(contents) - len(changed),
        "partitions_with_missing": 0,
    }
    for key, new in contents.items():
        present = set(new["symbol"])
        missing = expected[key] - present
        totals["rows"] += len(new)
        totals["partitions_with_missing"] += bool(missing)
        context.add_asset_metadata(
            {
                "dagster/row_count": MetadataValue.int(len(new)),
                "dagster/uri": MetadataValue.path(
                    uris.get(key) or str(lake.partition_path(dataset, key))
                ),
                "symbols": MetadataValue.int(len(present)),
                "expected_symbols": MetadataValue.int(len(expected[key])),
                "missing_symbols": MetadataValue.json(_shown(missing)),
                "missing_count": MetadataValue.int(len(missing)),
                "market_closed": MetadataValue.bool(market_day(key).market_closed),
                "rewritten": MetadataValue.bool(key in changed),
            },
            asset_key=asset_key,
            partition_key=key,
        )
    return totals


def _failure_check(asset_key: AssetKey, result: BarsFetch, config: BarsConfig) -> AssetCheckResult:
    rate = result.failure_rate
    passed = rate <= config.max_failure_rate
    return AssetCheckResult(
        check_name=FAILURE_CHECK,
        asset_key=asset_key,
        passed=passed,
        severity=AssetCheckSeverity.ERROR,
        description=(
            f"{len(result.failures)} of {len(result.requested)} symbols failed ({rate:.1%}); "
            f"allowed {config.max_failure_rate:.1%}"
        ),
        metadata={
            "failed_symbols": MetadataValue.json(result.failure_messages()),
            "failure_rate": MetadataValue.float(rate),
            "max_failure_rate": MetadataValue.float(config.max_failure_rate),
        },
    )


def ingest_bars(
    context: AssetExecutionContext,
    lake: ParquetLake,
    dataset: str,
    source_name: str,
    instruments: list[Instrument],
    fetch: Callable[[list[Instrument], dt.date, dt.date], BarsFetch],
    config: BarsConfig,
) -> tuple[BarsFetch, dict[str, Any]]:
    """Plan, fetch, quarantine invalid rows, merge and write a range of daily partitions."""
    keys = sorted(context.partition_keys)
    expected = market.expected_by_partition(instruments, keys)
    existing = _read_partitions(lake, dataset, keys)
    present = {k: set(frame["symbol"]) for k, frame in existing.items()}
    plan = market.plan_fetch(instruments, expected, present, config.refresh)
    if plan.empty:
        context.log.info(
            "%s: every expected symbol is already in the lake for %s..%s",
            dataset,
            keys[0],
            keys[-1],
        )
        result = BarsFetch(source_name, plan.start, plan.end, empty_bars(), empty_actions())
    else:
        context.log.info(
            "%s: fetching %d symbols over %s..%s (one request each)",
            dataset,
            len(plan.instruments),
            plan.start,
            plan.end,
        )
        result = fetch(plan.instruments, plan.start, plan.end)
    for _, error in sorted(result.failures.items()):
        context.log.warning("%s", error)
    fetched = result.bars
    off_calendar = 0
    if not fetched.empty:
        keep = market.on_calendar(fetched, plan.instruments, keys)
        off_calendar = int((~keep).sum())
        fetched = fetched[keep]
    quarantine = market.quarantine_invalid(fetched.reset_index(drop=True), schemas.DailyBars)
    for symbol, reason in quarantine.reasons.items():
        context.log.warning("%s %s: quarantined: %s", source_name, symbol, reason)
    totals = write_daily_partitions(
        context,
        lake,
        dataset,
        schemas.DailyBars,
        quarantine.valid,
        expected,
        existing,
        lambda old, fetched: market.merge_partition(old, fetched, config.refresh),
        AssetKey(dataset),
    )
    metadata = {
        "source": MetadataValue.text(source_name),
        "partitions": MetadataValue.text(f"{keys[0]}..{keys[-1]} ({len(keys)})"),
        "requested_symbols": MetadataValue.int(len(plan.instruments)),
        "fetched_range": MetadataValue.text("" if plan.empty else f"{plan.start}..{plan.end}"),
        "fetched_rows": MetadataValue.int(len(result.bars)),
        "off_calendar_rows_dropped": MetadataValue.int(off_calendar),
        "quarantined_rows": MetadataValue.int(quarantine.rejected_rows),
        "quarantined": MetadataValue.json(quarantine.reasons),
        "failed_symbols": MetadataValue.json(result.failure_messages()),
        "partitions_written": MetadataValue.int(totals["written"]),
        "partitions_unchanged": MetadataValue.int(totals["unchanged"]),
        "partitions_with_missing_symbols": MetadataValue.int(totals["partitions_with_missing"]),
        "dagster/column_schema": MetadataValue.table_schema(
            schemas.column_schema(schemas.DailyBars)
        ),
    }
    return result, metadata


def _bars_asset_kwargs(description: str, pool: str) -> dict[str, Any]:
    return {
        "group_name": GROUP,
        "partitions_def": market_day_partitions,
        "backfill_policy": BackfillPolicy.single_run(),
        "kinds": {"pandas", "parquet"},
        "owners": OWNERS,
        "pool": pool,
        "description": description,
    }


@multi_asset(
    specs=[
        AssetSpec(
            "yahoo_daily_bars",
            deps=["instruments"],
            description="Daily OHLCV for the whole universe from Yahoo (yfinance): split-adjusted "
            "close and split+dividend adjusted close, one partition per NYSE weekday.",
            metadata=definition_metadata(schemas.DailyBars),
            kinds={"pandas", "parquet"},
            owners=OWNERS,
        ),
        AssetSpec(
            "corporate_actions",
            deps=["instruments"],
            description="Splits and dividends reported by Yahoo, partitioned by ex-date.",
            metadata=definition_metadata(schemas.CorporateActions),
            kinds={"pandas", "parquet"},
            owners=OWNERS,
        ),
    ],
    check_specs=[AssetCheckSpec(FAILURE_CHECK, asset="yahoo_daily_bars", blocking=True)],
    group_name=GROUP,
    partitions_def=market_day_partitions,
    backfill_policy=BackfillPolicy.single_run(),
    pool="yahoo",
)
def yahoo_daily_bars(
    context: AssetExecutionContext, config: BarsConfig, lake: ParquetLake, yahoo: YahooFinance
):
    instruments = load_universe(lake, config)
    source = yahoo.source()
    result, metadata = ingest_bars(
        context, lake, "yahoo_daily_bars", "yahoo", instruments, source.fetch, config
    )
    yield MaterializeResult(asset_key="yahoo_daily_bars", metadata=metadata)
    yield _write_actions(context, lake, result)
    yield _failure_check(AssetKey("yahoo_daily_bars"), result, config)


def _write_actions(
    context: AssetExecutionContext, lake: ParquetLake, result: BarsFetch
) -> MaterializeResult:
    """Corporate actions of the fetched symbols replace theirs in each ex-date partition."""
    keys = sorted(context.partition_keys)
    actions = result.actions
    if not actions.empty:
        actions = schemas.validate(schemas.CorporateActions, actions)
    by_key = market.rows_by_partition(actions, keys)
    existing = _read_partitions(lake, "corporate_actions", keys)
    refetched = set(result.bars["symbol"]) if not result.bars.empty else set()
    order = ["symbol", "date", "action"]
    contents: dict[str, pd.DataFrame] = {}
    changed: dict[str, pd.DataFrame] = {}
    for key in keys:
        parts = [by_key[key]]
        old = existing.get(key)
        if old is not None:
            parts.append(old[~old["symbol"].isin(refetched)])
        parts = [p for p in parts if len(p)]
        new = (
            pd.concat(parts, ignore_index=True).sort_values(order, ignore_index=True)
            if parts
            else schemas.empty_frame(schemas.CorporateActions)
        )
        contents[key] = new
        if old is None or not old.sort_values(order, ignore_index=True).equals(new):
            changed[key] = new
    lake.write_partitions(
        "corporate_actions", changed, schemas.arrow_schema(schemas.CorporateActions)
    )
    for key, new in contents.items():
        context.add_asset_metadata(
            {
                "dagster/row_count": MetadataValue.int(len(new)),
                "dagster/uri": MetadataValue.path(
                    str(lake.partition_path("corporate_actions", key))
                ),
            },
            asset_key="corporate_actions",
            partition_key=key,
        )
    counts = actions["action"].value_counts().to_dict() if len(actions) else {}
    return MaterializeResult(
        asset_key="corporate_actions",
        metadata={
            "splits": MetadataValue.int(int(counts.get("split", 0))),
            "dividends": MetadataValue.int(int(counts.get("dividend", 0))),
            "partitions_written": MetadataValue.int(len(changed)),
        },
    )


def _secondary(
    context: AssetExecutionContext,
    config: BarsConfig,
    lake: ParquetLake,
    dataset: str,
    source_name: str,
    resource: AlphaVantage | Polygon,
    covers: Callable[[Instrument], bool],
) -> MaterializeResult:
    """A budget-limited second source: fetch a rotating sample, never more than the budget."""
    instruments = [i for i in load_universe(lake, config) if covers(i)]
    last_day = dt.date.fromisoformat(max(context.partition_keys))
    budget = resource.budget().report()
    # Never plan more calls than the day's budget has left: a spent budget means a smaller
    # sample (possibly none), not a run that fails on every symbol.
    size = (
        resource.sample_size
        if budget.remaining is None
        else min(resource.sample_size, budget.remaining)
    )
    sample = market.rotating_sample(instruments, size, last_day)
    context.log.info(
        "%s: reconciling a rotating sample of %d of %d symbols (budget %s)",
        source_name,
        len(sample),
        len(instruments),
        budget.as_dict(),
    )
    if budget.remaining == 0:
        context.log.warning(
            "%s: daily call budget spent (%s); nothing fetched", source_name, budget.as_dict()
        )
    source = resource.source()
    result, metadata = ingest_bars(
        context, lake, dataset, source_name, sample, source.fetch, config
    )
    metadata["sample"] = MetadataValue.json([i.symbol for i in sample])
    metadata["http"] = MetadataValue.json(source.http.stats.as_dict())
    metadata["budget"] = MetadataValue.json(resource.budget().report().as_dict())
    return MaterializeResult(
        metadata=metadata, check_results=[_failure_check(AssetKey(dataset), result, config)]
    )


@asset(
    deps=["instruments"],
    metadata=definition_metadata(schemas.DailyBars),
    check_specs=[AssetCheckSpec(FAILURE_CHECK, asset="alpha_vantage_daily_bars", blocking=True)],
    **_bars_asset_kwargs(
        "Alpha Vantage TIME_SERIES_DAILY closes (as traded) for a rotating sample of equities and "
        "ETFs within the daily call budget, for cross-source reconciliation.",
        pool="alpha_vantage",
    ),
)
def alpha_vantage_daily_bars(
    context: AssetExecutionContext,
    config: BarsConfig,
    lake: ParquetLake,
    alpha_vantage: AlphaVantage,
) -> MaterializeResult:
    return _secondary(
        context,
        config,
        lake,
        "alpha_vantage_daily_bars",
        "alpha_vantage",
        alpha_vantage,
        AlphaVantageSource.covers,
    )


@asset(
    deps=["instruments"],
    metadata=definition_metadata(schemas.DailyBars),
    check_specs=[AssetCheckSpec(FAILURE_CHECK, asset="polygon_daily_bars", blocking=True)],
    **_bars_asset_kwargs(
        "Polygon daily aggregates (split-adjusted) for a rotating sample of the universe within "
        "the rate limit, for cross-source reconciliation.",
        pool="polygon",
    ),
)
def polygon_daily_bars(
    context: AssetExecutionContext, config: BarsConfig, lake: ParquetLake, polygon: Polygon
) -> MaterializeResult:
    return _secondary(
        context, config, lake, "polygon_daily_bars", "polygon", polygon, lambda i: True
    )


class ConsolidationConfig(Config):
    asset_classes: list[str] = Field(default=list(universe.ASSET_CLASSES))
    symbols: list[str] = Field(default=[])


SOURCE_DATASETS = {
    "yahoo": "yahoo_daily_bars",
    "polygon": "polygon_daily_bars",
    "alpha_vantage": "alpha_vantage_daily_bars",
}


@asset(
    deps=[
        "yahoo_daily_bars",
        "polygon_daily_bars",
        "alpha_vantage_daily_bars",
        "corporate_actions",
    ],
    metadata=definition_metadata(schemas.DailyBars),
    **_bars_asset_kwargs(
        "The conformed daily bars: one row per symbol and session, taken from the first source "
        "that has it in priority order yahoo > polygon > alpha_vantage (Alpha Vantage's as-traded "
        "prices split-adjusted first), with the source named on each row.",
        pool="lake",
    ),
)
def market_bars(
    context: AssetExecutionContext, config: ConsolidationConfig, lake: ParquetLake
) -> MaterializeResult:
    keys = sorted(context.partition_keys)
    instruments = load_universe(
        lake, BarsConfig(asset_classes=config.asset_classes, symbols=config.symbols)
    )
    symbols = {i.symbol for i in instruments}
    frames: dict[str, pd.DataFrame] = {}
    for source_name, dataset in SOURCE_DATASETS.items():
        available = sorted(set(lake.partition_keys(dataset)) & set(keys))
        if available:
            frame = lake.read(dataset, available)
            frames[source_name] = frame[frame["symbol"].isin(symbols)]
    if "alpha_vantage" in frames and lake.partition_keys("corporate_actions"):
        splits = lake.read("corporate_actions", columns=["symbol", "date", "action", "value"])
        frames["alpha_vantage"] = market.split_adjust(frames["alpha_vantage"], splits)
    consolidated = market.consolidate(frames)
    if not consolidated.empty:
        consolidated = schemas.validate(schemas.DailyBars, consolidated)
    expected = market.expected_by_partition(instruments, keys)
    existing = _read_partitions(lake, "market_bars", keys)
    # Derived data: each partition is exactly what the sources say now, nothing carried over.
    totals = write_daily_partitions(
        context,
        lake,
        "market_bars",
        schemas.DailyBars,
        consolidated,
        expected,
        existing,
        lambda old, fetched: fetched.sort_values(["symbol", "date"], ignore_index=True),
        AssetKey("market_bars"),
    )
    by_source = consolidated["source"].value_counts().to_dict() if len(consolidated) else {}
    return MaterializeResult(
        metadata={
            "rows_by_source": MetadataValue.json({k: int(v) for k, v in by_source.items()}),
            "partitions_written": MetadataValue.int(totals["written"]),
            "partitions_unchanged": MetadataValue.int(totals["unchanged"]),
            "partitions_with_missing_symbols": MetadataValue.int(totals["partitions_with_missing"]),
            "dagster/column_schema": MetadataValue.table_schema(
                schemas.column_schema(schemas.DailyBars)
            ),
        }
    )


MARKET_ASSETS = [yahoo_daily_bars, alpha_vantage_daily_bars, polygon_daily_bars, market_bars]
