"""One object per partitioning: which partition a value belongs to, and what a partition holds.

A partition key used to be rebuilt from dates in half a dozen places (the write path, the
split rebase, the checks' lookback, as-of reads, `variable_series`, the warehouse window), each
with its own idea of time zones, weekends and the first partition. A `PartitionScheme` says it
once: the partition column, its kind (a calendar date, or an instant), the grain (day or
month), the time zone in which a key's window is a calendar day or month, the first key, and
whether weekends are partitions. Every module maps values to keys and keys to windows through
it, and a property test holds it against Dagster's own partitions definition
(`core.partitions` builds that definition from the scheme).

Plain pandas, no Dagster: flows and checks use it without the orchestrator.

Conventions, the same for every scheme:

- a key is the ISO date its window starts on, in the scheme's zone (``2024-06-10``,
  ``2024-06-01`` for June);
- a window is half-open, ``[start, end)``, as timezone-aware timestamps in the scheme's zone;
- the first partition also holds every value before it (a dataset keyed by when things became
  known starts with what was already known);
- a date column holds calendar dates in the scheme's zone (a market session's date); an instant
  column holds UTC instants (naive values are read as UTC), converted to the scheme's zone
  before they are mapped.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

import pandas as pd

Grain = Literal["day", "month"]
ColumnKind = Literal["date", "instant"]

#: The lower bound of the first partition's values: it holds whatever came before it.
BEGINNING = pd.Timestamp("1900-01-01")


class PartitionSchemeError(ValueError):
    """A value or key that has no partition in a scheme; the message names both."""


@dataclass(frozen=True)
class PartitionScheme:
    """How one family of datasets is partitioned (see the module docstring)."""

    name: str
    column: str
    column_kind: ColumnKind
    grain: Grain
    timezone: str
    first_key: str
    #: Saturdays and Sundays are not partitions (market days).
    weekdays_only: bool = False
    #: How many partitions past the current one exist (1: today's exists from its first
    #: moment, so the evening run can fill the day that just ended... or is ending).
    end_offset: int = 0

    def __post_init__(self) -> None:
        first = self._parse_key(self.first_key)
        if self.grain == "month" and first.day != 1:
            raise PartitionSchemeError(f"{self.name}: a month key starts on day 1, not {first}")
        if self.weekdays_only and first.weekday() >= 5:
            raise PartitionSchemeError(f"{self.name}: first key {first} is not a weekday")

    # ---- keys ----------------------------------------------------------------------------------

    @cached_property
    def _first(self) -> pd.Timestamp:
        return pd.Timestamp(self.first_key)

    @property
    def _freq(self) -> str:
        if self.grain == "month":
            return "MS"
        return "B" if self.weekdays_only else "D"

    def _parse_key(self, key: str) -> dt.date:
        try:
            return dt.date.fromisoformat(key)
        except (TypeError, ValueError):
            raise PartitionSchemeError(f"{self.name}: {key!r} is not a YYYY-MM-DD key") from None

    def is_key(self, key: str) -> bool:
        """Whether `key` names a partition of this scheme (ignoring how far it lies ahead)."""
        try:
            day = self._parse_key(key)
        except PartitionSchemeError:
            return False
        if key != day.isoformat() or key < self.first_key:
            return False
        if self.grain == "month":
            return day.day == 1
        return not (self.weekdays_only and day.weekday() >= 5)

    def require_key(self, key: str) -> str:
        if not self.is_key(key):
            raise PartitionSchemeError(
                f"{self.name}: {key!r} is not a partition key (grain {self.grain}, first "
                f"{self.first_key}{', weekdays only' if self.weekdays_only else ''})"
            )
        return key

    def _local_dates(self, values: pd.Series) -> pd.Series:
        """The calendar date (naive midnight) each value falls on in the scheme's zone."""
        stamps = pd.to_datetime(values)
        if self.column_kind == "instant":
            if stamps.dt.tz is None:
                stamps = stamps.dt.tz_localize("UTC")
            stamps = stamps.dt.tz_convert(self.timezone).dt.tz_localize(None)
        elif stamps.dt.tz is not None:
            stamps = stamps.dt.tz_convert(self.timezone).dt.tz_localize(None)
        return stamps.dt.normalize()

    def keys_of(self, values: pd.Series) -> pd.Series:
        """The key of each value of the partition column (same index).

        Raises `PartitionSchemeError` naming the first value that has no partition: a null, or a
        weekend date in a weekdays-only scheme (a market bar dated on a Saturday is a bug
        upstream, never a new partition).
        """
        if len(values) == 0:
            return pd.Series([], index=values.index, dtype=object)
        days = self._local_dates(values)
        if days.isna().any():
            raise PartitionSchemeError(
                f"{self.name}: a null {self.column} has no partition "
                f"(row {days[days.isna()].index[0]!r})"
            )
        if self.grain == "month":
            days = days.dt.to_period("M").dt.to_timestamp()
        elif self.weekdays_only:
            weekend = days.dt.weekday >= 5
            if weekend.any():
                bad = values[weekend].iloc[0]
                raise PartitionSchemeError(
                    f"{self.name}: {self.column} {bad} falls on a weekend, which has no partition"
                )
        days = days.where(days >= self._first, self._first)
        return days.dt.strftime("%Y-%m-%d")

    def key_of(self, value: object) -> str:
        """The key of one value (a date, a timestamp, an ISO string)."""
        return str(self.keys_of(pd.Series([value])).iloc[0])

    def keys_between(self, start: object, end: object) -> list[str]:
        """Every key whose window meets [start, end] (dates or instants, inclusive), in order.

        Unlike `keys_of`, a weekend date is no error here: the range simply has no partition on
        it. Keys before the first are not returned.
        """
        lo, hi = self._local_dates(pd.Series([start, end]))
        if self.grain == "month":
            lo = lo.to_period("M").to_timestamp()
        lo = max(lo, self._first)
        if hi < lo:
            return []
        return [d.strftime("%Y-%m-%d") for d in pd.date_range(lo, hi, freq=self._freq)]

    def keys_overlapping(self, start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
        """The keys whose windows overlap the instants ``[start, end)`` (timezone-aware)."""
        lo = start.tz_convert(self.timezone).tz_localize(None).normalize()
        last = (end - pd.Timedelta(1, "ns")).tz_convert(self.timezone).tz_localize(None)
        if self.grain == "month":
            lo = lo.to_period("M").to_timestamp()
        lo = max(lo, self._first)
        hi = last.normalize()
        if hi < lo:
            return []
        return [d.strftime("%Y-%m-%d") for d in pd.date_range(lo, hi, freq=self._freq)]

    def runs(self, keys: Iterable[str]) -> list[tuple[str, str, int]]:
        """`keys` as runs of consecutive partitions: (first, last, how many). Three missing
        market days over a weekend are one run, ``2024-07-11...2024-07-15 (3)``."""
        ordered = sorted(set(keys))
        out: list[tuple[str, str, int]] = []
        for key in ordered:
            if out:
                first, last, count = out[-1]
                following = self.keys_between(last, key)
                if following == [last, key]:
                    out[-1] = (first, key, count + 1)
                    continue
            out.append((key, key, 1))
        return out

    def keys_in_range(self, first: str, last: str) -> list[str]:
        """Every key from `first` to `last` inclusive (both must be keys)."""
        self.require_key(first)
        self.require_key(last)
        if first > last:
            raise PartitionSchemeError(f"{self.name}: range {first}...{last} is backwards")
        return self.keys_between(first, last)

    # ---- windows -------------------------------------------------------------------------------

    def window(self, key: str) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The partition's time window ``[start, end)`` in the scheme's zone."""
        self.require_key(key)
        start = pd.Timestamp(key)
        end = start + (pd.offsets.MonthBegin(1) if self.grain == "month" else pd.Timedelta(days=1))
        return start.tz_localize(self.timezone), pd.Timestamp(end).tz_localize(self.timezone)

    def bounds(self, keys: Sequence[str]) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The span of partition-column values `keys` hold, inclusive at both ends, as naive
        values comparable with the column: dates for a date column, UTC for an instant one.
        The first partition's span reaches back to `BEGINNING` (it holds what came before)."""
        if not keys:
            raise PartitionSchemeError(f"{self.name}: no partition keys")
        first, last = min(keys), max(keys)
        start, _ = self.window(first)
        _, end = self.window(last)
        if self.column_kind == "date":
            lo = start.tz_localize(None)
            hi = end.tz_localize(None) - pd.Timedelta(days=1)
        else:
            lo = start.tz_convert("UTC").tz_localize(None)
            hi = end.tz_convert("UTC").tz_localize(None) - pd.Timedelta(1, "ns")
        if first == self.first_key:
            lo = BEGINNING
        return lo, hi

    # ---- keys in time --------------------------------------------------------------------------

    def _today(self, now: pd.Timestamp | dt.datetime) -> pd.Timestamp:
        stamp = pd.Timestamp(now)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        return stamp.tz_convert(self.timezone).tz_localize(None).normalize()

    def closed_keys(self, now: pd.Timestamp | dt.datetime) -> list[str]:
        """The keys whose whole window has ended by `now`: only these can be called missing."""
        today = self._today(now)
        if self.grain == "month":
            today = today.to_period("M").to_timestamp()
        last = today - pd.Timedelta(days=1)
        if last < self._first:
            return []
        return [d.strftime("%Y-%m-%d") for d in pd.date_range(self._first, last, freq=self._freq)]

    def current_keys(self, now: pd.Timestamp | dt.datetime) -> list[str]:
        """Every key that exists at `now`: the closed ones plus `end_offset` more (Dagster's
        ``get_partition_keys(current_time=now)``: on a Saturday, Monday's market day exists).
        The offset counts from the last closed window even before the first key, as Dagster's
        does: the first market day exists from the last weekday before it."""
        closed = self.closed_keys(now)
        if not self.end_offset:
            return closed
        today = self._today(now)
        if self.grain == "month":
            today = today.to_period("M").to_timestamp()
        # The last window that closed, keys before the first included (a virtual calendar).
        previous = pd.date_range(end=today - pd.Timedelta(days=1), periods=1, freq=self._freq)[0]
        ahead = pd.date_range(
            previous + pd.Timedelta(days=1), periods=self.end_offset, freq=self._freq
        )
        extra = [d.strftime("%Y-%m-%d") for d in ahead if d >= self._first]
        return closed + extra

    def last_closed_key(self, now: pd.Timestamp | dt.datetime) -> str | None:
        closed = self.closed_keys(now)
        return closed[-1] if closed else None


def map_keys(source: PartitionScheme, keys: Iterable[str], target: PartitionScheme) -> list[str]:
    """The keys of `target` whose windows overlap the windows of `source`'s `keys`.

    Dagster's time-window mapping refuses to cross time zones (New York days to UTC months);
    this is the same question answered with instants, so a rewrite of market days can name the
    UTC months it touches, and a month can name the market days it spans.
    """
    out: set[str] = set()
    for key in keys:
        start, end = source.window(key)
        out.update(target.keys_overlapping(start, end))
    return sorted(out)
