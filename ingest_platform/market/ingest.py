"""The flow every per-source bar asset runs: plan, fetch, filter, quarantine, merge, write.

Plain functions that know no Dagster: `ingest_bars` takes the run's partition keys and a
standard logger, and returns a typed report (`BarsIngest`). The assets in `market.assets` choose
the source and the instruments; `market.reports` turns the report into Dagster metadata. Rules
live in `market.rules`; the validated write in `core.dataset`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from ingest_platform.core import calendars, settings
from ingest_platform.core.dataset import Dataset, DatasetWrite
from ingest_platform.core.lake import LakeError, ParquetLake
from ingest_platform.market import rules, unavailable
from ingest_platform.market.members import MemberDays
from ingest_platform.market.schema import DailyBars
from ingest_platform.market.sources.bars import BarsFetch, Instrument, empty_actions, empty_bars
from ingest_platform.reference import universe
from ingest_platform.reference.schema import INSTRUMENTS


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
    """What one run of a per-source asset did: the report `ingest_bars` returns.

    `market.reports` turns it into the partitions' and the run's metadata; nothing here knows
    how it is shown.
    """

    source: str
    #: The run's partition keys, sorted.
    keys: list[str]
    #: The symbols expected in each of `keys`.
    expected: dict[str, set[str]]
    plan: rules.FetchPlan
    fetch: BarsFetch
    write: DatasetWrite
    #: Whether the bars were stored (False: fetched only for their corporate actions).
    stored: bool
    #: The run's partitions given new content (the others are left missing: not yet settled).
    written_keys: set[str]
    #: Fetched rows dropped: outside the run's range (a widened request), on no session of the
    #: symbol's calendar, or of a session not yet closed and settled.
    rows_outside_range: int
    #: Rows of a ticker on days it was not an index member (point-in-time universe only).
    rows_outside_membership: int
    off_calendar_rows: int
    unsettled_rows: int
    #: The rows quarantined and why (its `valid` is left empty: those rows went to the write).
    quarantine: rules.Quarantine
    #: Symbols whose newest bar is older than a day they were expected (`rules.stale_symbols`).
    stale: pd.DataFrame
    #: Days the source sent more than once: symbol, date, copies, conflicting.
    duplicates: pd.DataFrame
    #: Former members the source has no history for (`market.unavailable.COLUMNS`).
    unavailable: pd.DataFrame

    @property
    def unstored_keys(self) -> list[str]:
        """The run's partitions this run left missing (nothing written for them)."""
        return sorted(set(self.keys) - self.written_keys) if self.stored else []


def ingest_bars(
    lake: ParquetLake,
    dataset: Dataset,
    source_name: str,
    instruments: list[Instrument],
    keys: list[str],
    fetch: Callable[[list[Instrument], dt.date, dt.date], BarsFetch],
    refresh: bool,
    log: logging.Logger,
    store: bool = True,
    cover_gaps: bool = False,
    members: MemberDays | None = None,
) -> BarsIngest:
    """Plan, fetch, quarantine invalid rows, merge and write a range of daily partitions.

    `keys` are the run's partitions; `refresh` re-fetches every expected symbol (else only what
    the lake is missing). What happens along the way is told to `log` (a standard logger: the
    asset passes its Dagster one); the figures come back in the report. With `store` False the
    bars are fetched (for their corporate actions) but not written. With `cover_gaps` (the
    split-adjusting source of corporate actions) each request reaches back over a gap before
    the range and forward to today (`reach_back`), so its answer's basis is known; rows outside
    the range are not stored.

    With `members` each partition expects the index members of its day, and stores each
    member's bars under the ticker in force that day (`market.members`); a former member the
    source has no history for is recorded as unavailable, not failed (`market.unavailable`).
    """
    keys = sorted(keys)
    expected = rules.expected_by_partition(instruments, keys)
    if members is not None:
        expected = members.expected(instruments, expected)
    # A refresh rewrites the range, so a corrupt partition in it is repaired, not fatal.
    existing = dataset.read_partitions(lake, keys, skip_corrupt=refresh)
    present = {k: set(frame["symbol"]) for k, frame in existing.items()}
    if members is not None:
        present = members.canonical(present)
    plan = rules.plan_fetch(instruments, expected, present, refresh)
    if cover_gaps:
        plan = reach_back(
            dataset, lake, plan, settings.now().tz_convert(dataset.scheme.timezone).date()
        )
    if plan.empty:
        log.info(
            "%s: every expected symbol is already in the lake for %s..%s",
            dataset.name,
            keys[0],
            keys[-1],
        )
        result = BarsFetch(source_name, plan.start, plan.end, empty_bars(), empty_actions())
    else:
        log.info(
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
            log.warning(
                "%s %s: unavailable from the source for its member days %s..%s: %s",
                source_name, gap.symbol, gap.first_date, gap.last_date, gap.reason,
            )  # fmt: skip
    for _, error in sorted(result.failures.items()):
        log.warning("%s", error)
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
        log.warning(
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
    # Each whole-range copy of the bars is let go as soon as the next exists: a year of 5,000
    # instruments is 1.25 M rows, ~100 MB a copy (the run's peak memory, issue 20).
    del by_fetch_symbol
    for row in stale.itertuples(index=False):
        log.warning(
            "%s %s: stale: newest bar %s, but %s was expected (the day stays missing)",
            source_name,
            row.symbol,
            row.last_date.date(),
            row.expected_date.date(),
        )
    fetched, duplicates = rules.resolve_duplicates(fetched.reset_index(drop=True))
    for row in duplicates.itertuples(index=False):
        log.warning(
            "%s %s %s: sent %d times%s",
            source_name,
            row.symbol,
            row.date.date(),
            row.copies,
            " with different values: dropped" if row.conflicting else "",
        )
    quarantine = rules.quarantine_invalid(fetched, DailyBars)
    del fetched
    for symbol, reason in quarantine.reasons.items():
        log.warning("%s %s: quarantined: %s", source_name, symbol, reason)
    by_key = dataset.split(quarantine.valid, keys)
    # The report keeps what was quarantined and why; the valid rows live on in `by_key`.
    quarantine = rules.Quarantine(
        quarantine.valid.iloc[0:0].copy(), quarantine.rejected_rows, quarantine.reasons
    )
    contents = {
        key: rules.merge_partition(existing.get(key), by_key.pop(key), refresh)
        for key in keys
        if key in writable or key in existing
    }
    del by_key
    write = dataset.write(lake, contents if store else {}, existing)
    return BarsIngest(
        source=source_name,
        keys=keys,
        # The symbols expected in each partition, as stored: under the ticker in force.
        expected=expected if members is None else members.in_force(expected),
        plan=plan,
        fetch=result,
        write=write,
        stored=store,
        written_keys=set(contents),
        rows_outside_range=outside,
        rows_outside_membership=not_member,
        off_calendar_rows=off_calendar,
        unsettled_rows=unsettled,
        quarantine=quarantine,
        stale=stale,
        duplicates=duplicates,
        unavailable=gaps,
    )


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
        # Nothing kept: the fresh rows themselves, not a copy (a backfill's whole range).
        out[key] = pd.concat(parts, ignore_index=True) if kept is not None and parts else new
    return out
