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
from ingest_platform.core.partitioning import PartitionScheme

MARKET_START_DATE = "2023-01-02"
ECONOMIC_START_DATE = "2023-01-01"
STREAM_START_DATE = "2026-11-01"
MARKET_TIMEZONE = "America/New_York"

#: Market days: one partition per weekday in New York, holding the bars dated that day. Today's
#: partition exists from midnight (``end_offset=1``), so the evening schedule can fill the
#: session that just closed; rows of a session that has not closed and settled yet are never
#: stored (see `core.settlement`).
MARKET_DAYS = PartitionScheme(
    name="market_days",
    column="date",
    column_kind="date",
    grain="day",
    timezone=MARKET_TIMEZONE,
    first_key=MARKET_START_DATE,
    weekdays_only=True,
    end_offset=1,
)

#: Months by when values became known (UTC), keyed by their first day (``2024-03-01``). The
#: current month exists from its first day, so what is published during it lands the same day.
KNOWN_MONTHS = PartitionScheme(
    name="known_months",
    column="known_at",
    column_kind="instant",
    grain="month",
    timezone="UTC",
    first_key=ECONOMIC_START_DATE,
    end_offset=1,
)

#: Crypto trades every day: one partition per UTC day of the Kraken stream's minutes.
STREAM_DAYS = PartitionScheme(
    name="stream_days",
    column="minute",
    column_kind="instant",
    grain="day",
    timezone="UTC",
    first_key=STREAM_START_DATE,
)


@cache
def definition(scheme: PartitionScheme) -> TimeWindowPartitionsDefinition:
    """Dagster's partitions definition of `scheme` (one object per scheme, so every asset of
    a family shares it). The property tests hold the two against each other."""
    if scheme.grain == "month":
        return MonthlyPartitionsDefinition(
            start_date=scheme.first_key, timezone=scheme.timezone, end_offset=scheme.end_offset
        )
    return DailyPartitionsDefinition(
        start_date=scheme.first_key,
        timezone=scheme.timezone,
        end_offset=scheme.end_offset,
        exclusions=["0 0 * * 6", "0 0 * * 0"] if scheme.weekdays_only else None,
    )


market_day_partitions = definition(MARKET_DAYS)
economic_month_partitions = definition(KNOWN_MONTHS)
stream_day_partitions = definition(STREAM_DAYS)


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
