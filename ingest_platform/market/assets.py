"""Daily market bars: one asset per source and the consolidated `market_bars`.

Every asset runs over a partition *range* in one run (`BackfillPolicy.single_run()`), so a
three-year backfill makes one history request per symbol per source and writes each daily
partition atomically with its own metadata. The flow is `market.ingest`, the rules
`market.rules`; these functions choose the source and wire resources.

With $INGEST_PLATFORM_BACKFILL_CHUNK a backfill runs as chunks (`BackfillPolicy.multi_run`),
and each chunk writes what the single run would have: every partition's content depends on its
own day only (Yahoo's request reaches to today in every chunk, so each sees the same basis and
the same corporate actions), and the one choice made over a range, the rotating sample of a
budget-limited source, is made over the whole backfill (`backfill_partition_keys`).

A symbol that fails (unknown, throttled past the retries, malformed answer) is named with its
error in the run metadata and the rest is written. When failures exceed `max_failure_rate`, the
blocking `fetch_failure_rate` check fails the run after the good data is recorded, so nothing
downstream consumes an incomplete range.
"""

import datetime as dt
from collections.abc import Callable, Iterator

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)
from pydantic import Field

from ingest_platform.core.dataset import Dataset
from ingest_platform.core.dataset_assets import (
    asset_kwargs,
    backfill_partition_keys,
    partitions_def,
    record_partitions,
    record_run,
    spec,
)
from ingest_platform.core.lake import ParquetLake
from ingest_platform.core.metadata import mapping_table, markdown_table
from ingest_platform.market import rebase, rules, unavailable
from ingest_platform.market.checks import (
    DUPLICATES_CHECK,
    FAILURE_CHECK,
    duplicates_check,
    failure_rate_check,
)
from ingest_platform.market.config import BarsConfig
from ingest_platform.market.ingest import (
    BarsIngest,
    consolidated_content,
    ingest_bars,
    load_universe,
)
from ingest_platform.market.members import MemberDays, load_members
from ingest_platform.market.reports import partition_metadata, record_bars
from ingest_platform.market.resources import AlphaVantage, Polygon, YahooFinance
from ingest_platform.market.schema import (
    ALPHA_VANTAGE_DAILY_BARS,
    CORPORATE_ACTIONS,
    GROUP,
    MARKET_BARS,
    POLYGON_DAILY_BARS,
    SOURCE_DATASETS,
    YAHOO_DAILY_BARS,
)
from ingest_platform.market.sources.alpha_vantage import AlphaVantageSource
from ingest_platform.market.sources.bars import BarsFetch, Instrument
from ingest_platform.reference import universe
from ingest_platform.reference.schema import INDEX_MEMBERSHIP, INSTRUMENTS


def _run_specs(dataset: Dataset) -> list[AssetCheckSpec]:
    """The checks a per-source asset emits about its own run, with its materialization."""
    return [
        AssetCheckSpec(
            FAILURE_CHECK,
            asset=dataset.name,
            blocking=True,
            description="Share of requested symbols the source failed to deliver, against the "
            "run's max_failure_rate; blocks downstream assets when exceeded.",
        ),
        AssetCheckSpec(
            DUPLICATES_CHECK,
            asset=dataset.name,
            blocking=True,
            description="Days the source sent more than once: WARN when the copies agree, "
            "ERROR (blocking) when they disagree and the day was dropped.",
        ),
    ]


@multi_asset(
    specs=[
        spec(YAHOO_DAILY_BARS, deps=[INSTRUMENTS.name, INDEX_MEMBERSHIP.name]),
        spec(CORPORATE_ACTIONS, deps=[INSTRUMENTS.name, INDEX_MEMBERSHIP.name]),
    ],
    check_specs=_run_specs(YAHOO_DAILY_BARS),
    group_name=GROUP,
    partitions_def=partitions_def(YAHOO_DAILY_BARS),
    backfill_policy=asset_kwargs(YAHOO_DAILY_BARS)["backfill_policy"],
    pool="yahoo",
    can_subset=True,
)
def yahoo_daily_bars(
    context: AssetExecutionContext, config: BarsConfig, lake: ParquetLake, yahoo: YahooFinance
) -> Iterator[MaterializeResult | AssetCheckResult]:
    """Bars and corporate actions come from the same request, so one op serves both; either
    can be materialized alone. Corporate actions alone fetch every expected symbol of the range
    (the bars' "only what is missing" says nothing about the actions) and store no bars."""
    selected = {key.to_user_string() for key in context.selected_asset_keys}
    bars_selected = YAHOO_DAILY_BARS.name in selected
    if not bars_selected:
        config = BarsConfig(**{**config.model_dump(), "refresh": True})
    members = load_members(lake)
    keys = sorted(context.partition_keys)
    instruments = load_universe(lake, config.asset_classes, config.symbols, members, keys)
    source = yahoo.source()
    run = ingest_bars(
        lake, YAHOO_DAILY_BARS, "yahoo", instruments, list(context.partition_keys),
        source.fetch, config.refresh, context.log, store=bars_selected, cover_gaps=True,
        members=members,
    )  # fmt: skip
    run_metadata = record_bars(context, run)
    gaps = _record_unavailable(lake, "yahoo", run) if bars_selected else {}
    told = run.fetch.actions
    new = rebase.new_splits(told, lake)
    checks = (
        [
            failure_rate_check(YAHOO_DAILY_BARS.name, run.fetch, config.max_failure_rate),
            duplicates_check(YAHOO_DAILY_BARS.name, run.duplicates),
        ]
        if bars_selected
        else []
    )
    # The actions first: a refresh rewrites an unreadable actions partition before anything
    # reads the splits it holds.
    actions = (
        _write_actions(context, lake, run.fetch, repair=config.refresh)
        if CORPORATE_ACTIONS.name in selected
        else None
    )
    # The fetched and written bars are not needed past here: a generator's locals live until
    # its last yield, and the run's next asset (market_bars) should not hold them too.
    del run
    if bars_selected:
        # Every split the lake knows or this answer told, not only those in the run's range:
        # a range that starts after a split it never saw must still rebase what came before.
        splits = rebase.known_splits(lake, {i.symbol for i in instruments}, told)
        rebased = _rebase_yahoo(context, lake, instruments, splits, source.fetch)
        record_run(
            context,
            YAHOO_DAILY_BARS.name,
            {
                **run_metadata,
                "new_splits": MetadataValue.int(len(new)),
                **rebased,
                **gaps,
            },
        )
        yield MaterializeResult(asset_key=YAHOO_DAILY_BARS.name)
    if actions is not None:
        yield actions
    yield from checks


def _record_unavailable(
    lake: ParquetLake, source: str, run: BarsIngest
) -> dict[str, MetadataValue]:
    """Persist the run's unavailable-from-source symbols (`market.unavailable`) and describe
    the whole record in the run's metadata: the known gaps the checks report apart."""
    delivered = set(run.fetch.bars["symbol"]) if len(run.fetch.bars) else set()
    known = unavailable.record(lake, source, run.unavailable, delivered)
    return {
        "unavailable_recorded": MetadataValue.int(len(known)),
        "unavailable_record": MetadataValue.path(unavailable.record_name(source)),
    }


def _rebase_yahoo(
    context: AssetExecutionContext,
    lake: ParquetLake,
    instruments: list[Instrument],
    splits: pd.DataFrame,
    fetch: Callable[[list[Instrument], dt.date, dt.date], BarsFetch],
) -> dict[str, MetadataValue]:
    """A split puts the symbol's stored history fetched before it on a new basis: fetch that
    history again (one request) and rewrite it (see `market.rebase`)."""
    by_symbol = {i.symbol: i for i in instruments}
    done, failed = [], {}
    for split, stale in rebase.stale_by_split(YAHOO_DAILY_BARS, lake, splits):
        instrument = by_symbol.get(str(split["symbol"]))
        if instrument is None:
            continue
        rebasing, error, write = rebase.refetch_primary(
            YAHOO_DAILY_BARS, lake, instrument, split, fetch, stale
        )
        if write is not None:
            record_partitions(context, write)
        if error:
            failed[split["symbol"]] = error
            context.log.error(
                "%s: split of %s recorded, but its stored history could not be fetched again "
                "and stays on the old basis: %s", split["symbol"], split["date"].date(), error,
            )  # fmt: skip
        if rebasing is not None:
            done.append(rebasing.as_row())
            context.log.info("rebased %s onto its %s split", split["symbol"], split["date"].date())
    return {
        "rebased": markdown_table(done),
        "rebase_failed": mapping_table(failed, "symbol", "error"),
    }


def _write_actions(
    context: AssetExecutionContext, lake: ParquetLake, result: BarsFetch, repair: bool
) -> MaterializeResult:
    """Corporate actions of the fetched symbols replace theirs in each ex-date partition: the
    run's, and any other the fetch covered (a fetch reaching back over a gap sees the split
    in it, and that fact is recorded where it belongs)."""
    scheme = CORPORATE_ACTIONS.scheme
    covered = set(scheme.keys_between(result.start, result.end)) if len(result.actions) else set()
    seen = set(scheme.keys_of(result.actions["date"])) if len(result.actions) else set()
    keys = sorted(set(context.partition_keys) | (seen & covered))
    # A refresh fetched every expected symbol again: an unreadable partition is rewritten.
    existing = CORPORATE_ACTIONS.read_partitions(lake, keys, skip_corrupt=repair)
    fresh = CORPORATE_ACTIONS.split(result.actions, keys)
    refetched = set(result.bars["symbol"]) if not result.bars.empty else set()
    contents = consolidated_content(existing, fresh, refetched)
    write = CORPORATE_ACTIONS.write(lake, contents, existing)
    record_partitions(context, write)
    counts = result.actions["action"].value_counts().to_dict() if len(result.actions) else {}
    record_run(
        context,
        CORPORATE_ACTIONS.name,
        {
            "splits_fetched": MetadataValue.int(int(counts.get("split", 0))),
            "dividends_fetched": MetadataValue.int(int(counts.get("dividend", 0))),
            "partitions_written": MetadataValue.int(write.rewritten),
        },
    )
    return MaterializeResult(asset_key=CORPORATE_ACTIONS.name)


def _secondary(
    context: AssetExecutionContext,
    config: BarsConfig,
    lake: ParquetLake,
    dataset: Dataset,
    source_name: str,
    resource: AlphaVantage | Polygon,
    covers: Callable[[Instrument], bool],
) -> MaterializeResult:
    """A budget-limited second source: fetch a rotating sample, never more than the budget."""
    members = load_members(lake)
    # The sample is drawn over the whole backfill, not this run's chunk of it: the universe of
    # its range and its last day, so each chunk reconciles the symbols one run would have.
    keys = backfill_partition_keys(context, dataset.name)
    instruments = [
        i
        for i in load_universe(lake, config.asset_classes, config.symbols, members, keys)
        if covers(i)
    ]
    last_day = dt.date.fromisoformat(max(keys))
    budget = resource.budget().report()
    # Never plan more calls than the day's budget has left: a spent budget means a smaller
    # sample (possibly none), not a run that fails on every symbol.
    wanted = resource.effective_sample_size()
    size = wanted if budget.remaining is None else min(wanted, budget.remaining)
    sample = rules.rotating_sample(instruments, size, last_day)
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
    run = ingest_bars(
        lake, dataset, source_name, sample, list(context.partition_keys), source.fetch,
        config.refresh, context.log, members=members,
    )  # fmt: skip
    run_metadata = record_bars(context, run)
    gaps = _record_unavailable(lake, source_name, run)
    rebased: list[dict] = []
    if dataset is POLYGON_DAILY_BARS:  # split-adjusted as of its fetch (see market.rebase)
        done, write = rebase.rebase_stored(dataset, lake, rebase.known_splits(lake))
        if write is not None:
            record_partitions(context, write)
        rebased += [r.as_row() for r in done]
    after = resource.budget().report()
    record_run(
        context,
        dataset.name,
        {
            **run_metadata,
            "sample": MetadataValue.md(", ".join(f"`{i.symbol}`" for i in sample) or "_none_"),
            **{
                f"http_{name}": MetadataValue.float(float(value))
                for name, value in source.http.stats.as_dict().items()
            },
            "rebased": markdown_table(rebased),
            **gaps,
            "budget_calls_today": MetadataValue.int(after.calls),
            # -1: the source has no daily cap.
            "budget_remaining_today": MetadataValue.int(
                -1 if after.remaining is None else after.remaining
            ),
        },
    )
    return MaterializeResult(
        check_results=[
            failure_rate_check(dataset.name, run.fetch, config.max_failure_rate),
            duplicates_check(dataset.name, run.duplicates),
        ]
    )


@asset(
    **asset_kwargs(
        ALPHA_VANTAGE_DAILY_BARS,
        deps=[INSTRUMENTS.name, INDEX_MEMBERSHIP.name],
        check_specs=_run_specs(ALPHA_VANTAGE_DAILY_BARS),
        pool="alpha_vantage",
    )
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
        ALPHA_VANTAGE_DAILY_BARS,
        "alpha_vantage",
        alpha_vantage,
        AlphaVantageSource.covers,
    )


@asset(
    **asset_kwargs(
        POLYGON_DAILY_BARS,
        # After corporate_actions: a split recorded in the same run rebases its stored rows.
        deps=[INSTRUMENTS.name, INDEX_MEMBERSHIP.name, CORPORATE_ACTIONS.name],
        check_specs=_run_specs(POLYGON_DAILY_BARS),
        pool="polygon",
    )
)
def polygon_daily_bars(
    context: AssetExecutionContext, config: BarsConfig, lake: ParquetLake, polygon: Polygon
) -> MaterializeResult:
    return _secondary(context, config, lake, POLYGON_DAILY_BARS, "polygon", polygon, lambda i: True)


class ConsolidationConfig(Config):
    """Which part of the universe a `market_bars` run rebuilds (the rest is left as it is)."""

    asset_classes: list[str] = Field(
        default=list(universe.ASSET_CLASSES),
        description="Subset of equity, etf, fx, index, commodity.",
    )
    symbols: list[str] = Field(default=[], description="Explicit symbols (overrides classes).")


@asset(
    **asset_kwargs(
        MARKET_BARS,
        deps=[*(d.name for d in SOURCE_DATASETS.values()), CORPORATE_ACTIONS.name],
        pool="lake",
    )
)
def market_bars(
    context: AssetExecutionContext, config: ConsolidationConfig, lake: ParquetLake
) -> MaterializeResult:
    keys = sorted(context.partition_keys)
    members = load_members(lake)
    instruments = load_universe(lake, config.asset_classes, config.symbols, members, keys)
    # The sources store each member under the ticker in force on the day: FI and FISV alike.
    symbols = members.tickers_of(i.symbol for i in instruments)
    contents, existing, by_source = _consolidate(lake, keys, symbols)
    # market_bars is derived: an unreadable partition is rebuilt whole from its sources, every
    # symbol of the universe (a subset run must not leave the others out of it).
    reasons: dict[str, str] = {}
    corrupt = MARKET_BARS.corrupt_keys(lake, keys)
    if corrupt:
        everyone = members.tickers_of(
            i.symbol
            for i in load_universe(lake, list(universe.ASSET_CLASSES), [], members, corrupt)
        )
        repaired, _, _ = _consolidate(lake, corrupt, everyone)
        contents.update(repaired)
        reasons.update(dict.fromkeys(corrupt, "repaired: the file was unreadable"))
        context.log.warning("market_bars: rebuilt unreadable partition(s) %s", corrupt)
    # A split recorded in this range puts the symbol's older partitions on a new basis too:
    # they are rebuilt from the (rebased) sources.
    rebuilt = []
    for split, stale in rebase.stale_by_split(
        MARKET_BARS, lake, rebase.known_splits(lake, symbols)
    ):
        symbol, ratio = str(split["symbol"]), float(split["value"])
        older = [k for k in stale if k not in contents]
        if older:
            more, more_existing, _ = _consolidate(lake, older, {symbol})
            contents.update(more)
            existing.update(more_existing)
            reasons.update(dict.fromkeys(older, rebase.rebase_reason(symbol, ratio)))
            rebuilt.append({"symbol": symbol, "partitions_rebuilt": len(older)})
    # Validated as merged partitions by the one write path: the conformed content is
    # re-checked, not trusted because its sources passed.
    for key, frame in contents.items():  # one partition at a time: no second whole range
        contents[key] = _with_ids(frame, members)
    write = MARKET_BARS.write(lake, contents, existing, reasons=reasons)
    # Expected: the symbols this run rebuilds (the rest of the partition is left as it was),
    # each day's members under the ticker in force that day.
    expected = members.in_force(
        members.expected(
            instruments, rules.expected_by_partition(instruments, list(write.partitions))
        )
    )
    per_partition = partition_metadata(write, expected)
    record_partitions(context, write, per_partition)
    record_run(
        context,
        MARKET_BARS.name,
        {
            **{
                f"rows_from_{name}": MetadataValue.int(int(by_source.get(name, 0)))
                for name in SOURCE_DATASETS
            },
            "rebuilt_symbols": MetadataValue.int(len(symbols)),
            "rebased_history": markdown_table(rebuilt),
            "partitions_written": MetadataValue.int(write.rewritten),
            "partitions_unchanged": MetadataValue.int(write.unchanged),
            "partitions_with_missing_symbols": MetadataValue.int(
                sum(m["missing_count"].value > 0 for k, m in per_partition.items() if k in keys)
            ),
        },
    )
    return MaterializeResult()


def _with_ids(frame: pd.DataFrame, members: MemberDays) -> pd.DataFrame:
    """The partition with each bar's `instrument_id` (the same across a ticker change)."""
    return frame.assign(instrument_id=members.instrument_ids(frame))


def _consolidate(
    lake: ParquetLake, keys: list[str], symbols: set[str]
) -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame], dict[str, int]]:
    """The new content of `keys` for `symbols` (other symbols' rows kept), the content it
    replaces, and how many consolidated rows came from each source.

    Each whole-range copy is let go as soon as the next exists (the sources' rows once
    consolidated, the consolidated rows once split): peak memory, issue 20."""
    frames: dict[str, pd.DataFrame] = {}
    for source_name, dataset in SOURCE_DATASETS.items():
        frame = dataset.read(lake, keys)
        if len(frame):
            frames[source_name] = frame[frame["symbol"].isin(symbols)]
    if "alpha_vantage" in frames and lake.partition_keys(CORPORATE_ACTIONS.name):
        splits = CORPORATE_ACTIONS.read(lake, columns=["symbol", "date", "action", "value"])
        frames["alpha_vantage"] = rules.split_adjust(frames["alpha_vantage"], splits)
    consolidated = rules.consolidate(frames)
    del frames
    by_source = consolidated["source"].value_counts().to_dict() if len(consolidated) else {}
    # Unreadable partitions count as absent here; the caller rebuilds them whole.
    existing = MARKET_BARS.read_partitions(lake, keys, skip_corrupt=True)
    # A day no source has stored yet (its sessions not settled) stays missing here too.
    sourced = set().union(*(lake.partition_keys(d.name) for d in SOURCE_DATASETS.values()))
    fresh = MARKET_BARS.split(consolidated, [k for k in keys if k in sourced or k in existing])
    del consolidated
    return consolidated_content(existing, fresh, symbols), existing, by_source


MARKET_ASSETS = [yahoo_daily_bars, alpha_vantage_daily_bars, polygon_daily_bars, market_bars]
