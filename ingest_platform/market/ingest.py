"""The flow every per-source bar asset runs: plan, fetch, filter, quarantine, merge, write.

Plain functions over a Dagster context: the assets in `market.assets` only choose the source
and the instruments. Rules live in `market.rules`; the validated write in `core.dataset`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from dagster import AssetExecutionContext, Config, MetadataValue
from pydantic import Field

from ingest_platform.core import calendars, settings
from ingest_platform.core.dataset import Dataset, DatasetWrite, record_partitions
from ingest_platform.core.lake import LakeError, ParquetLake
from ingest_platform.core.metadata import mapping_table, markdown_table
from ingest_platform.core.partitions import market_day
from ingest_platform.market import rules, unavailable
from ingest_platform.market.members import MemberDays
from ingest_platform.market.schema import DailyBars
from ingest_platform.market.sources.bars import BarsFetch, Instrument, empty_actions, empty_bars
from ingest_platform.reference import universe
from ingest_platform.reference.schema import INSTRUMENTS


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


def load_universe(
    lake: ParquetLake,
    asset_classes: list[str],
    symbols: list[str],
    members: MemberDays | None = None,
    keys: list[str] | None = None,
) -> list[Instrument]:
    """The instruments a run covers, from the `instruments` dataset in the lake.

    With `members` and the run's `keys`, the point-in-time universe: former index members
    too, those that were members on some day of the range (an explicit symbol list is taken
    as given); without, today's.
    """
    try:
        frame = lake.read(INSTRUMENTS.name)
    except LakeError as exc:
        raise LakeError(f"{exc}; materialize the `instruments` asset first") from exc
    former = members is not None
    chosen = universe.select(
        frame, tuple(asset_classes), tuple(symbols) or None, include_former=former
    )
    if members is not None and keys and not symbols:
        inactive = set(chosen.loc[~chosen["active"].astype(bool), "symbol"])
        outside = inactive - members.overlapping(min(keys), max(keys))
        chosen = chosen[~chosen["symbol"].isin(outside)]
    return Instrument.from_frame(chosen)


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


def settled_days(
    keys: list[str],
    expected: Mapping[str, set[str]],
    instruments: list[Instrument],
    now: pd.Timestamp,
) -> set[str]:
    """The partitions at least one of whose expected sessions has closed and settled: the
    others are left missing (not written empty) until a later run."""
    calendar_of = {i.symbol: i.calendar for i in instruments}
    out = set()
    for key in keys:
        needed = {calendar_of[s] for s in expected[key]}
        if not needed or rules.settled_calendars(key, needed, now, rules.SETTLE):
            out.add(key)
    return out


#: Partitions read at a time when looking back for each symbol's last stored bar.
LOOKBACK_CHUNK = 20


def last_stored(
    dataset: Dataset, lake: ParquetLake, symbols: set[str], before: str
) -> dict[str, pd.Timestamp]:
    """Each symbol's newest stored bar dated before partition `before` (symbols never stored
    are absent), reading back a chunk of partitions at a time until every one is found."""
    keys = [k for k in lake.partition_keys(dataset.name) if k < before]
    found: dict[str, pd.Timestamp] = {}
    while keys and len(found) < len(symbols):
        chunk, keys = keys[-LOOKBACK_CHUNK:], keys[:-LOOKBACK_CHUNK]
        frame = lake.read(dataset.name, chunk, columns=["symbol", "date"])
        frame = frame[frame["symbol"].isin(symbols - set(found))]
        if len(frame):
            found.update(frame.groupby("symbol")["date"].max().to_dict())
    return found


def reach_back(
    dataset: Dataset, lake: ParquetLake, plan: rules.FetchPlan, today: dt.date
) -> rules.FetchPlan:
    """Widen the one request per symbol so its answer also says which basis it is on.

    A split-adjusting source (Yahoo) answers on the basis of the day it is asked, and reports
    only the splits inside the range asked for. So each request reaches:

    - back, to the earliest day after a symbol's last stored bar when sessions of its calendar
      are missing in between: a split in that gap is seen (the week's daily runs missed, a
      backfill of the days after);
    - forward, to `today`: a split after the range is seen too (a refresh of an old day after
      a split, which would otherwise store a new-basis bar beside old-basis history, with
      nothing recorded to say why).

    Still one request per symbol; rows outside the run's partitions are not stored. A gap-free
    daily run asks for exactly its own day.
    """
    if plan.empty:
        return plan
    start_key = dataset.scheme.key_of(pd.Timestamp(plan.start))
    last = last_stored(dataset, lake, {i.symbol for i in plan.instruments}, start_key)
    start = plan.start
    calendar_of = {i.symbol: i.calendar for i in plan.instruments}
    for symbol, day in last.items():
        after = (day + pd.Timedelta(days=1)).date()
        if after < start and calendars.sessions(after, plan.start - dt.timedelta(days=1),
                                                calendar_of[symbol]):  # fmt: skip
            start = after
    return rules.FetchPlan(plan.instruments, start, max(plan.end, today))


@dataclass
class BarsIngest:
    """What one run of a per-source asset did."""

    fetch: BarsFetch
    write: DatasetWrite
    run_metadata: dict[str, Any]
    #: Days the source sent more than once: symbol, date, copies, conflicting.
    duplicates: pd.DataFrame
    #: Former members the source has no history for (`market.unavailable.COLUMNS`).
    unavailable: pd.DataFrame


def ingest_bars(
    context: AssetExecutionContext,
    lake: ParquetLake,
    dataset: Dataset,
    source_name: str,
    instruments: list[Instrument],
    fetch: Callable[[list[Instrument], dt.date, dt.date], BarsFetch],
    config: BarsConfig,
    store: bool = True,
    cover_gaps: bool = False,
    members: MemberDays | None = None,
) -> BarsIngest:
    """Plan, fetch, quarantine invalid rows, merge and write a range of daily partitions.

    Per-partition figures go on each partition's materialization; the run's own figures
    (requests, failures, quarantine) go once, on the run's newest partition. With `store`
    False the bars are fetched (for their corporate actions) but not written. With
    `cover_gaps` (the split-adjusting source of corporate actions) each request reaches back
    over a gap before the range and forward to today (`reach_back`), so its answer's basis is
    known; rows outside the range are not stored.

    With `members` each partition expects the index members of its day, and stores each
    member's bars under the ticker in force that day (`market.members`); a former member the
    source has no history for is recorded as unavailable, not failed (`market.unavailable`).
    """
    keys = sorted(context.partition_keys)
    expected = rules.expected_by_partition(instruments, keys)
    if members is not None:
        expected = members.expected(instruments, expected)
    # A refresh rewrites the range, so a corrupt partition in it is repaired, not fatal.
    existing = dataset.read_partitions(lake, keys, skip_corrupt=config.refresh)
    present = {k: set(frame["symbol"]) for k, frame in existing.items()}
    if members is not None:
        present = members.canonical(present)
    plan = rules.plan_fetch(instruments, expected, present, config.refresh)
    if cover_gaps:
        plan = reach_back(
            dataset, lake, plan, settings.now().tz_convert(dataset.scheme.timezone).date()
        )
    if plan.empty:
        context.log.info(
            "%s: every expected symbol is already in the lake for %s..%s",
            dataset.name,
            keys[0],
            keys[-1],
        )
        result = BarsFetch(source_name, plan.start, plan.end, empty_bars(), empty_actions())
    else:
        context.log.info(
            "%s: fetching %d symbols over %s..%s (one request each)",
            dataset.name,
            len(plan.instruments),
            plan.start,
            plan.end,
        )
        result = fetch(plan.instruments, plan.start, plan.end)
    now = settings.now()
    gaps = unavailable.empty_gaps()
    if members is not None:
        result, gaps = unavailable.separate(result, members, keys, now)
        for gap in gaps.itertuples(index=False):
            context.log.warning(
                "%s %s: unavailable from the source for its member days %s..%s: %s",
                source_name, gap.symbol, gap.first_date, gap.last_date, gap.reason,
            )  # fmt: skip
    for _, error in sorted(result.failures.items()):
        context.log.warning("%s", error)
    fetched = result.bars
    off_calendar = unsettled = outside = not_member = 0
    if not fetched.empty:
        # A request widened to see the basis (`reach_back`) brings rows outside the range.
        first, last = dataset.scheme.bounds([keys[0], keys[-1]])
        inside = fetched["date"].between(max(first, pd.Timestamp(keys[0])), last)
        outside = int((~inside).sum())
        fetched = fetched[inside]
        keep = rules.on_calendar(fetched, plan.instruments, keys)
        off_calendar = int((~keep).sum())
        fetched = fetched[keep]
        final = rules.settled(fetched, plan.instruments, now, result.stamps)
        unsettled = int((~final).sum())
        fetched = fetched[final]
    by_fetch_symbol = fetched  # as requested: what staleness is judged on
    if members is not None:
        fetched, not_member = members.cut_and_relabel(fetched)
    writable = settled_days(keys, expected, instruments, now)
    if unsettled:
        context.log.warning(
            "%s: %d bar(s) of sessions not yet closed and settled (as of %s) were not stored",
            dataset.name,
            unsettled,
            now,
        )
    settled_expected = {k: v for k, v in expected.items() if k in writable}
    stale = rules.stale_symbols(
        by_fetch_symbol,
        [i.symbol for i in plan.instruments],
        settled_expected,
        [*result.failures, *gaps["symbol"]],
    )
    for row in stale.itertuples(index=False):
        context.log.warning(
            "%s %s: stale: newest bar %s, but %s was expected (the day stays missing)",
            source_name,
            row.symbol,
            row.last_date.date(),
            row.expected_date.date(),
        )
    fetched, duplicates = rules.resolve_duplicates(fetched.reset_index(drop=True))
    for row in duplicates.itertuples(index=False):
        context.log.warning(
            "%s %s %s: sent %d times%s",
            source_name,
            row.symbol,
            row.date.date(),
            row.copies,
            " with different values: dropped" if row.conflicting else "",
        )
    quarantine = rules.quarantine_invalid(fetched, DailyBars)
    for symbol, reason in quarantine.reasons.items():
        context.log.warning("%s %s: quarantined: %s", source_name, symbol, reason)
    by_key = dataset.split(quarantine.valid, keys)
    contents = {
        key: rules.merge_partition(existing.get(key), by_key[key], config.refresh)
        for key in keys
        if key in writable or key in existing
    }
    write = dataset.write(lake, contents if store else {}, existing)
    stored_expected = expected if members is None else members.in_force(expected)
    per_partition = partition_metadata(write, stored_expected)
    record_partitions(context, write, per_partition)
    for key in sorted(set(keys) - set(contents)) if store else ():
        context.add_asset_metadata(
            {
                "stored": MetadataValue.bool(False),
                "missing_count": MetadataValue.int(len(expected[key])),
            },
            asset_key=dataset.name,
            partition_key=key,
        )
    run_metadata = {
        "source": MetadataValue.text(source_name),
        "run_partitions": MetadataValue.text(f"{keys[0]}..{keys[-1]} ({len(keys)})"),
        "requested_symbols": MetadataValue.int(len(plan.instruments)),
        "fetched_range": MetadataValue.text("" if plan.empty else f"{plan.start}..{plan.end}"),
        "fetched_rows": MetadataValue.int(len(result.bars)),
        "off_calendar_rows_dropped": MetadataValue.int(off_calendar),
        "rows_outside_range": MetadataValue.int(outside),
        "unsettled_rows_dropped": MetadataValue.int(unsettled),
        "rows_outside_membership": MetadataValue.int(not_member),
        "unavailable_count": MetadataValue.int(len(gaps)),
        "unavailable_from_source": markdown_table(gaps.drop(columns=["recorded_at"])),
        "partitions_left_missing": MetadataValue.int(len(keys) - len(contents)),
        "quarantined_rows": MetadataValue.int(quarantine.rejected_rows),
        "quarantined": mapping_table(quarantine.reasons, "symbol", "reason"),
        "failed_count": MetadataValue.int(len(result.failures)),
        "stale_count": MetadataValue.int(len(stale)),
        "stale_symbols": markdown_table(stale),
        "failed_symbols": mapping_table(result.failure_messages(), "symbol", "error"),
        "partitions_written": MetadataValue.int(write.rewritten),
        "partitions_unchanged": MetadataValue.int(write.unchanged),
        "partitions_with_missing_symbols": MetadataValue.int(
            sum(m["missing_count"].value > 0 for m in per_partition.values())
        ),
    }
    return BarsIngest(result, write, run_metadata, duplicates, gaps)


def consolidated_content(
    existing: Mapping[str, pd.DataFrame],
    fresh: Mapping[str, pd.DataFrame],
    covered: set[str],
) -> dict[str, pd.DataFrame]:
    """A derived partition's new content when a run covers only `covered` symbols.

    Rows of the covered symbols are exactly what the sources say now; rows of every other
    symbol stay as they are. A subset run (``symbols: [AAPL]``) therefore never deletes the
    rest of the universe from the partition.
    """
    out: dict[str, pd.DataFrame] = {}
    for key, new in fresh.items():
        old = existing.get(key)
        kept = old[~old["symbol"].isin(covered)] if old is not None and len(old) else None
        parts = [p for p in (kept, new) if p is not None and len(p)]
        out[key] = pd.concat(parts, ignore_index=True) if parts else new
    return out
