"""Rules for daily market bars, as plain functions the assets call and the tests call directly.

- which symbols a partition should contain (by each instrument's trading calendar);
- what a run still has to fetch (incremental runs fetch only what is missing);
- how fetched rows merge into a partition so that re-running changes nothing;
- which invalid rows are quarantined (and named) instead of failing the whole range;
- which symbols a small-budget secondary source covers today (a rotating sample);
- how sources are stitched into `market_bars` in priority order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.errors as pandera_errors
import pandera.pandas as pa

from ingest_platform.core import calendars, schema, settlement
from ingest_platform.core.partitions import MarketDay, market_day
from ingest_platform.market.schema import DailyBars
from ingest_platform.market.sources.bars import Instrument

#: Order in which sources win when several have the same (symbol, date).
SOURCE_PRIORITY = ("yahoo", "polygon", "alpha_vantage")
#: The columns whose change counts as a change of a bar (ingested_at does not).
VALUE_COLUMNS = ["open", "high", "low", "close", "adj_close", "volume", "source"]


#: How long after a session's close its daily bar counts as final (`core.settlement`, the one
#: rule the checks use too).
SETTLE = settlement.SETTLE


def settled_calendars(
    partition_key: str, calendar_names: Iterable[str], now: pd.Timestamp, settle: pd.Timedelta
) -> set[str]:
    """The calendars whose session on that day closed at least `settle` before `now`. A
    calendar that does not trade that day has nothing to wait for and counts as settled."""
    out = set()
    for name in calendar_names:
        close = calendars.session_close(partition_key, name)
        if close is None or close + settle <= now:
            out.add(name)
    return out


def settled(
    frame: pd.DataFrame,
    instruments: Sequence[Instrument],
    now: pd.Timestamp,
    stamps: Mapping[str, pd.Timestamp] | None = None,
) -> pd.Series:
    """Which bars belong to a session that has closed and settled by `now`, and by the
    provider's own stamp where it gave one (`core.settlement`).

    An answer fetched during a session carries that session's bar so far (Yahoo's and
    Polygon's live bar, Alpha Vantage's intraday "Last Refreshed"): it is not the day's bar and
    must never be stored as one. `stamps` maps a symbol to the instant its answer was current
    as of; a stale cached answer that arrives after the close is caught by it.
    """
    calendar_of = {i.symbol: i.calendar for i in instruments}
    rows = frame["symbol"].map(calendar_of)
    per_row = settlement.stamp_per_row(frame["symbol"], stamps) if stamps else None
    done = settlement.settled_mask(frame["date"], rows, now, per_row)
    return pd.Series(done, index=frame.index, dtype=bool)


def key_date(partition_key: str) -> dt.date:
    return dt.date.fromisoformat(partition_key)


def expected_symbols(instruments: Sequence[Instrument], day: MarketDay) -> set[str]:
    """Symbols that trade on `day`: an instrument is expected when its calendar is open."""
    return {i.symbol for i in instruments if day.is_open(i.calendar)}


def expected_by_partition(
    instruments: Sequence[Instrument], partition_keys: Iterable[str]
) -> dict[str, set[str]]:
    """`expected_symbols` of each partition. Days on which the same calendars are open share
    one set (read-only): a year of 5,000 instruments would otherwise hold 261 copies of it."""
    calendar_names = tuple(sorted({i.calendar for i in instruments}))
    by_open: dict[tuple[str, ...], set[str]] = {}
    out = {}
    for key in partition_keys:
        day = market_day(key, calendar_names)
        open_calendars = tuple(c for c in calendar_names if day.is_open(c))
        if open_calendars not in by_open:
            by_open[open_calendars] = expected_symbols(instruments, day)
        out[key] = by_open[open_calendars]
    return out


@dataclass(frozen=True)
class FetchPlan:
    """What to ask a source for: these instruments over [start, end] (one request each)."""

    instruments: list[Instrument]
    start: dt.date
    end: dt.date

    @property
    def empty(self) -> bool:
        return not self.instruments


def plan_fetch(
    instruments: Sequence[Instrument],
    expected: Mapping[str, set[str]],
    present: Mapping[str, set[str]],
    refresh: bool,
) -> FetchPlan:
    """The symbols to fetch and the one date range that covers what they lack.

    `refresh` fetches every expected symbol over the whole range. Otherwise only symbols
    missing from at least one partition are fetched, over the span of their missing dates,
    so a daily run after a complete backfill asks for one day, not three years.
    """
    keys = sorted(expected)
    if not keys:
        raise ValueError("plan_fetch needs at least one partition key")
    wanted: dict[str, list[str]] = {}
    for key in keys:
        lacking = expected[key] if refresh else expected[key] - present.get(key, set())
        for symbol in lacking:
            wanted.setdefault(symbol, []).append(key)
    if not wanted:
        return FetchPlan([], key_date(keys[0]), key_date(keys[-1]))
    span = sorted(k for ks in wanted.values() for k in ks)
    chosen = [i for i in instruments if i.symbol in wanted]
    return FetchPlan(chosen, key_date(span[0]), key_date(span[-1]))


def on_calendar(
    frame: pd.DataFrame, instruments: Sequence[Instrument], partition_keys: Iterable[str]
) -> pd.Series:
    """Which rows fall on a session of their instrument's calendar within the partitions.

    A bar dated on a day its exchange was closed (some sources echo the previous close on
    holidays) is not data, and a row outside the run's partitions is not this run's business.
    """
    keys = list(partition_keys)
    calendar_of = {i.symbol: i.calendar for i in instruments}
    row_calendars = frame["symbol"].map(calendar_of).to_numpy()
    dates = frame["date"]
    mask = np.zeros(len(frame), dtype=bool)
    for calendar in set(calendar_of.values()):
        open_days = pd.DatetimeIndex(
            [pd.Timestamp(k) for k in keys if market_day(k).is_open(calendar)]
        )
        mask |= (row_calendars == calendar) & dates.isin(open_days).to_numpy()
    return pd.Series(mask, index=frame.index)


def resolve_duplicates(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Bars with one row per (symbol, date), and a report of the days a source sent twice.

    Identical copies collapse to one row (harmless, but reported). Copies that disagree are
    all dropped: which one is right is unknowable, and a wrong number is worse than a missing
    one. The report has one row per duplicated day: symbol, date, copies, conflicting.
    """
    columns = ["symbol", "date", "copies", "conflicting"]
    if frame.empty:
        return frame, pd.DataFrame(columns=columns)
    keyed = frame.duplicated(["symbol", "date"], keep=False)
    if not keyed.any():
        return frame, pd.DataFrame(columns=columns)
    values = [c for c in VALUE_COLUMNS if c in frame.columns]
    dupes = frame[keyed]
    distinct = (
        dupes.drop_duplicates(["symbol", "date", *values])
        .groupby(["symbol", "date"], sort=True)
        .size()
    )
    copies = dupes.groupby(["symbol", "date"], sort=True).size()
    report = pd.DataFrame(
        {"copies": copies, "conflicting": distinct.reindex(copies.index) > 1}
    ).reset_index()[columns]
    conflicting = report.loc[report["conflicting"], ["symbol", "date"]]
    kept = frame.drop_duplicates(["symbol", "date", *values])
    if len(conflicting):
        drop = kept.set_index(["symbol", "date"]).index.isin(
            conflicting.set_index(["symbol", "date"]).index
        )
        kept = kept[~drop]
    return kept.reset_index(drop=True), report


@dataclass
class Quarantine:
    """Rows that failed the schema, removed before writing, with the reasons per symbol."""

    valid: pd.DataFrame
    rejected_rows: int = 0
    reasons: dict[str, str] = field(default_factory=dict)


def quarantine_invalid(frame: pd.DataFrame, model: type[pa.DataFrameModel]) -> Quarantine:
    """Validate `frame`; drop the rows that fail (keeping the rest) and name why per symbol.

    A frame-wide failure that cannot be pinned on rows (a wrong column set, say) is a bug
    upstream and is raised, not quarantined.
    """
    try:
        return Quarantine(schema.validate(model, frame))
    except pandera_errors.SchemaErrors as errors:
        cases = errors.failure_cases
        row_cases = cases[cases["index"].notna()]
        if row_cases.empty:
            raise
        bad_index = pd.Index(row_cases["index"].unique())
        bad_rows = frame.loc[frame.index.intersection(bad_index)]
        reasons: dict[str, str] = {}
        for symbol, rows in bad_rows.groupby("symbol"):
            checks = sorted(
                set(row_cases[row_cases["index"].isin(rows.index)]["check"].astype(str))
            )
            days = rows["date"].dt.strftime("%Y-%m-%d").tolist() if "date" in rows else []
            shown = ", ".join(days[:3]) + (" …" if len(days) > 3 else "")
            reasons[str(symbol)] = f"{len(rows)} row(s) failed {'; '.join(checks)} ({shown})"
        kept = frame.drop(index=bad_rows.index)
        return Quarantine(schema.validate(model, kept), len(bad_rows), reasons)


def merge_partition(
    existing: pd.DataFrame | None, fetched: pd.DataFrame, refresh: bool
) -> pd.DataFrame:
    """The partition's new content: fetched rows merged into what the lake already holds.

    In refresh mode fetched rows replace existing rows of the same (symbol, date); otherwise
    they only fill gaps. A row whose values did not change keeps its original `ingested_at`,
    which is what makes re-running a range leave the lake byte-for-byte unchanged.
    """
    if existing is None or existing.empty:
        if fetched["symbol"].is_monotonic_increasing:  # Dataset.split's order: no re-sort
            return fetched.reset_index(drop=True)
        return fetched.sort_values(["symbol", "date"], ignore_index=True)
    if fetched.empty:
        merged = existing
    else:
        first, second = (fetched, existing) if refresh else (existing, fetched)
        merged = pd.concat([first, second], ignore_index=True).drop_duplicates(
            ["symbol", "date"], keep="first"
        )
        merged = _keep_unchanged_ingested_at(merged, existing)
    return merged.sort_values(["symbol", "date"], ignore_index=True)


def _keep_unchanged_ingested_at(merged: pd.DataFrame, existing: pd.DataFrame) -> pd.DataFrame:
    old = existing.set_index(["symbol", "date"])
    new = merged.set_index(["symbol", "date"])
    common = new.index.intersection(old.index)
    if common.empty:
        return merged
    same = (
        new.loc[common, VALUE_COLUMNS].fillna(-1) == old.loc[common, VALUE_COLUMNS].fillna(-1)
    ).all(axis=1)
    unchanged = same[same].index
    new.loc[unchanged, "ingested_at"] = old.loc[unchanged, "ingested_at"]
    return new.reset_index()


def rotating_sample(instruments: Sequence[Instrument], size: int, day: dt.date) -> list[Instrument]:
    """`size` instruments, a different slice each day, cycling through the whole list.

    A free tier of 25 calls a day cannot cover 534 symbols, but 20 a day reconciles every one
    of them within a month, which is what the drift checks need.
    """
    ordered = sorted(instruments, key=lambda i: i.symbol)
    if size <= 0 or not ordered:
        return []
    if size >= len(ordered):
        return ordered
    start = (day.toordinal() * size) % len(ordered)
    return [ordered[(start + i) % len(ordered)] for i in range(size)]


def split_adjust(bars: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """Bring as-traded prices onto the split-adjusted basis Yahoo and Polygon use.

    Each bar is divided by the product of the split ratios with an ex-date after it (volume
    multiplied), so a 10-for-1 split makes a 1,200 close before it read 120.
    """
    if bars.empty or splits.empty:
        return bars
    adjusted = bars.copy()
    by_symbol = splits[splits["action"] == "split"].groupby("symbol")
    for symbol, events in by_symbol:
        rows = adjusted["symbol"] == symbol
        if not rows.any():
            continue
        factor = pd.Series(1.0, index=adjusted.index[rows])
        for ex_date, ratio in zip(events["date"], events["value"], strict=True):
            factor[adjusted.loc[rows, "date"] < ex_date] *= ratio
        for column in ("open", "high", "low", "close"):
            adjusted.loc[rows, column] = adjusted.loc[rows, column] / factor
        adjusted.loc[rows, "volume"] = (
            (adjusted.loc[rows, "volume"] * factor).round().astype("int64")
        )
    return adjusted


def consolidate(
    frames: Mapping[str, pd.DataFrame], priority: Sequence[str] = SOURCE_PRIORITY
) -> pd.DataFrame:
    """One row per (symbol, date): the highest-priority source that has it, named in `source`."""
    ordered = [frames[s] for s in priority if s in frames and not frames[s].empty]
    if not ordered:
        return schema.empty_frame(DailyBars)
    stacked = pd.concat(ordered, ignore_index=True)
    return stacked.drop_duplicates(["symbol", "date"], keep="first").sort_values(
        ["symbol", "date"], ignore_index=True
    )


def stale_symbols(
    bars: pd.DataFrame,
    requested: Sequence[str],
    expected: Mapping[str, set[str]],
    failed: Iterable[str] = (),
) -> pd.DataFrame:
    """Symbols a source answered for, but whose newest bar is older than the newest partition
    that expects them: a stale source. Without this, a multi-day run leaves the last day
    missing with no word said. Columns: symbol, last_date, expected_date."""
    newest_expected: dict[str, str] = {}
    for key in sorted(expected):
        for symbol in expected[key]:
            newest_expected[symbol] = key
    last = bars.groupby("symbol")["date"].max() if len(bars) else pd.Series(dtype="datetime64[ns]")
    rows = []
    skip = set(failed)
    for symbol in sorted(set(requested) - skip):
        due = newest_expected.get(symbol)
        seen = last.get(symbol)
        if due is not None and seen is not None and seen < pd.Timestamp(due):
            rows.append({"symbol": symbol, "last_date": seen, "expected_date": pd.Timestamp(due)})
    return pd.DataFrame(rows, columns=["symbol", "last_date", "expected_date"])
