"""Trading sessions and holidays, from exchange-calendars.

Every rule that asks "was the market open that day?" goes through here, so the answer is the
same for the partition definitions, the market-bar assets, the coverage checks and the
sandbox. exchange-calendars is the maintained source of truth (it knows ad-hoc closures such as
the 2025-01-09 national day of mourning); nothing here hand-codes a holiday.
"""

from __future__ import annotations

import datetime as dt
import os
import pickle
import re
from functools import lru_cache
from pathlib import Path

import exchange_calendars as xcals
import pandas as pd

from ingest_platform.core import settings

#: The calendar that decides whether "the market" is closed: US equities and ETFs trade on it.
PRIMARY_CALENDAR = "XNYS"
#: FX trades around the clock on weekdays.
FX_CALENDAR = "24/5"
#: CME Group futures (NYMEX, COMEX; exchange-calendars aliases them all to CMES).
FUTURES_CALENDAR = "CMES"
#: Calendars the reference data publishes sessions and holidays for.
CALENDARS: tuple[str, ...] = (PRIMARY_CALENDAR, "XNAS", FX_CALENDAR, FUTURES_CALENDAR)

# Calendars are built once per process for a fixed, generous window: building one costs
# 0.1-0.9 s and every asset, check and sandbox request asks for the same few. Built ones are
# also kept on disk (`_on_disk`): a short command (`ingest-platform check`) paid up to a second
# per calendar, every time, for the same object.
_CALENDAR_START = "2000-01-03"
_CALENDAR_YEARS_AHEAD = 2


def _as_date(day: dt.date | str | pd.Timestamp) -> dt.date:
    if isinstance(day, str):
        return dt.date.fromisoformat(day)
    if isinstance(day, pd.Timestamp):
        return day.date()
    if isinstance(day, dt.datetime):
        return day.date()
    return day


@lru_cache(maxsize=8)
def exchange_calendar(name: str) -> xcals.ExchangeCalendar:
    """The named exchange-calendars calendar, covering 2000 to two years from today."""
    if name not in xcals.get_calendar_names(include_aliases=True):
        raise ValueError(f"unknown exchange calendar {name!r}; expected one of {CALENDARS}")
    end = pd.Timestamp.today().normalize() + pd.DateOffset(years=_CALENDAR_YEARS_AHEAD)
    return _on_disk(name, _CALENDAR_START, end.strftime("%Y-%m-%d"))


def calendar_cache_dir() -> Path:
    """Where built calendars are kept: <data dir>/cache/calendars."""
    return settings.data_dir() / "cache" / "calendars"


def _on_disk(name: str, start: str, end: str) -> xcals.ExchangeCalendar:
    """The calendar from the cache when a file for exactly this calendar, window and
    exchange-calendars release is there; else built, and written for the next process.

    The file is named by everything the built object depends on, so a new release (new
    holidays) or a new day (a new end) is a new file, never a stale answer; older files of the
    same calendar are removed. Pickle is safe here as the files are only ever written by this
    function, in the platform's own data folder. A file that does not load is rebuilt over; a
    folder that cannot be written only costs the next process the build.
    """
    folder = calendar_cache_dir()
    stem = re.sub(r"[^A-Za-z0-9]+", "_", name)
    path = folder / f"{stem}__{start}__{end}__xcals-{xcals.__version__}.pickle"
    try:
        with path.open("rb") as handle:
            cached = pickle.load(handle)
        if isinstance(cached, xcals.ExchangeCalendar):
            return cached
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
        pass
    built = xcals.get_calendar(name, start=start, end=end)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with temp.open("wb") as handle:
            pickle.dump(built, handle, protocol=pickle.HIGHEST_PROTOCOL)
        temp.replace(path)  # atomic: a concurrent reader sees the old file or the whole new one
        for old in folder.glob(f"{stem}__*.pickle"):
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass
    return built


def _clip(cal: xcals.ExchangeCalendar, start: dt.date, end: dt.date) -> tuple[str, str] | None:
    """Clip [start, end] to the calendar's bounds; None when they do not overlap."""
    lo = max(pd.Timestamp(start), cal.first_session)
    hi = min(pd.Timestamp(end), cal.last_session)
    if lo > hi:
        return None
    return lo.strftime("%Y-%m-%d"), hi.strftime("%Y-%m-%d")


def is_session(day: dt.date | str, calendar: str = PRIMARY_CALENDAR) -> bool:
    """Whether `calendar` trades on `day` (a local calendar date)."""
    cal = exchange_calendar(calendar)
    ts = pd.Timestamp(_as_date(day))
    if ts < cal.first_session or ts > cal.last_session:
        raise ValueError(
            f"{ts.date()} is outside the {calendar} calendar's range "
            f"{cal.first_session.date()}..{cal.last_session.date()}"
        )
    return bool(cal.is_session(ts))


def sessions(
    start: dt.date | str, end: dt.date | str, calendar: str = PRIMARY_CALENDAR
) -> list[dt.date]:
    """The session dates of `calendar` in [start, end], ascending."""
    cal = exchange_calendar(calendar)
    window = _clip(cal, _as_date(start), _as_date(end))
    if window is None:
        return []
    return [ts.date() for ts in cal.sessions_in_range(*window)]


def session_open(day: dt.date | str | pd.Timestamp, calendar: str) -> pd.Timestamp | None:
    """When `calendar`'s session on `day` opens (UTC), or None if it does not trade then."""
    cal = exchange_calendar(calendar)
    ts = pd.Timestamp(_as_date(day))
    if ts < cal.first_session or ts > cal.last_session or not cal.is_session(ts):
        return None
    return pd.Timestamp(cal.session_open(ts)).tz_convert("UTC")


def session_close(day: dt.date | str, calendar: str) -> pd.Timestamp | None:
    """When `calendar`'s session on `day` closes (UTC), or None if it does not trade then."""
    cal = exchange_calendar(calendar)
    ts = pd.Timestamp(_as_date(day))
    if ts < cal.first_session or ts > cal.last_session or not cal.is_session(ts):
        return None
    return pd.Timestamp(cal.session_close(ts)).tz_convert("UTC")


def sessions_frame(start: dt.date | str, end: dt.date | str, calendar: str) -> pd.DataFrame:
    """One row per session: its date, open and close in UTC, and whether it closes early."""
    cal = exchange_calendar(calendar)
    window = _clip(cal, _as_date(start), _as_date(end))
    columns = ["calendar", "date", "open_utc", "close_utc", "early_close"]
    if window is None:
        return pd.DataFrame(columns=columns)
    schedule = cal.schedule.loc[window[0] : window[1]]
    early = set(cal.early_closes) if len(cal.early_closes) else set()
    frame = pd.DataFrame(
        {
            "calendar": calendar,
            "date": pd.DatetimeIndex(schedule.index).tz_localize(None).normalize(),
            "open_utc": schedule["open"].dt.tz_convert("UTC").to_numpy(),
            "close_utc": schedule["close"].dt.tz_convert("UTC").to_numpy(),
        }
    )
    frame["open_utc"] = pd.to_datetime(frame["open_utc"], utc=True)
    frame["close_utc"] = pd.to_datetime(frame["close_utc"], utc=True)
    frame["early_close"] = [ts in early for ts in schedule.index]
    return frame.reset_index(drop=True)


def holidays_frame(start: dt.date | str, end: dt.date | str, calendar: str) -> pd.DataFrame:
    """Weekdays in [start, end] on which `calendar` does not trade, named where known.

    A holiday is defined as "a weekday that is not a session", so ad-hoc closures are
    included even when the calendar has no name for them (they are named "ad hoc closure").
    """
    start_d, end_d = _as_date(start), _as_date(end)
    cal = exchange_calendar(calendar)
    weekdays = pd.bdate_range(start_d, end_d)
    window = _clip(cal, start_d, end_d)
    open_days = set(cal.sessions_in_range(*window)) if window else set()
    in_range = [
        d for d in weekdays if cal.first_session <= d <= cal.last_session and d not in open_days
    ]
    names: dict[pd.Timestamp, str] = {}
    if cal.regular_holidays is not None and in_range:
        named = cal.regular_holidays.holidays(in_range[0], in_range[-1], return_name=True)
        names = {pd.Timestamp(k).normalize(): str(v) for k, v in named.items()}
    return pd.DataFrame(
        {
            "calendar": calendar,
            "date": pd.DatetimeIndex(in_range, dtype="datetime64[ns]"),
            "name": [names.get(d, "ad hoc closure") for d in in_range],
            "kind": ["regular" if d in names else "ad_hoc" for d in in_range],
        }
    )
