"""Partition definitions: NYSE weekdays for market data, calendar months for economic data.

Market partitions are *weekdays*, not sessions. The set of weekdays never changes, while the set
of sessions does: exchanges announce ad-hoc closures (2025-01-09) after the fact, and a
partition set that shifts under a finished backfill would orphan or invent partitions. So a
holiday is an ordinary partition that materializes with zero rows and ``market_closed=True``;
it is never a failure and never a gap in the partition set.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cache

from dagster import (
    DailyPartitionsDefinition,
    MonthlyPartitionsDefinition,
    PartitionsDefinition,
    TimeWindowPartitionsDefinition,
)

from ingest_platform.core import calendars

MARKET_START_DATE = "2023-01-02"
ECONOMIC_START_DATE = "2023-01-01"
STREAM_START_DATE = "2026-11-01"
MARKET_TIMEZONE = "America/New_York"

#: One partition per weekday in New York. Today's partition exists from midnight, so the
#: evening schedule can fill the session that just closed; rows of a session that has not
#: closed and settled yet are never stored (see `market.rules.settled`).
market_day_partitions = DailyPartitionsDefinition(
    start_date=MARKET_START_DATE,
    timezone=MARKET_TIMEZONE,
    end_offset=1,
    exclusions=["0 0 * * 6", "0 0 * * 0"],
)

#: One partition per calendar month, keyed by its first day (``2024-03-01``). The current month
#: exists from its first day, so what is published during it lands the same day.
economic_month_partitions = MonthlyPartitionsDefinition(
    start_date=ECONOMIC_START_DATE, timezone="UTC", end_offset=1
)

#: Crypto trades every day: one partition per UTC calendar day of the Kraken stream log.
stream_day_partitions = DailyPartitionsDefinition(start_date=STREAM_START_DATE, timezone="UTC")


@dataclass(frozen=True)
class MarketDay:
    """What a daily partition key means for the markets the platform covers."""

    date: dt.date
    open_calendars: tuple[str, ...]

    @property
    def market_closed(self) -> bool:
        """True when the primary (NYSE) calendar does not trade: a holiday partition."""
        return calendars.PRIMARY_CALENDAR not in self.open_calendars

    def is_open(self, calendar: str) -> bool:
        return calendar in self.open_calendars


@cache
def market_day(
    partition_key: str, calendar_names: tuple[str, ...] = calendars.CALENDARS
) -> MarketDay:
    """Resolve a daily partition key to the calendars that trade on that date (memoised)."""
    try:
        day = dt.date.fromisoformat(partition_key)
    except ValueError as exc:
        raise ValueError(f"daily partition key {partition_key!r} is not a YYYY-MM-DD date") from exc
    return MarketDay(
        date=day,
        open_calendars=tuple(c for c in calendar_names if calendars.is_session(day, c)),
    )


def closed_partition_keys(definition: PartitionsDefinition, now: dt.datetime) -> list[str]:
    """The keys of `definition` up to `now` whose whole window has ended by `now`.

    With ``end_offset=1`` today's partition (this month's) exists from its first moment so a
    run can fill it the same evening; until its window ends it cannot be called missing.
    Partitions without a time window are all closed.
    """
    keys = definition.get_partition_keys(current_time=now)
    if not isinstance(definition, TimeWindowPartitionsDefinition):
        return list(keys)
    return [k for k in keys if definition.time_window_for_partition_key(k).end <= now]
