"""Pandera models of the reference datasets: instruments, trading sessions, holidays."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pandera.pandas as pa
from dagster import FreshnessPolicy
from pandera.typing import Series

from ingest_platform.core.dataset import Dataset
from ingest_platform.core.schema import DATE, UTC, DatasetModel


class Instruments(DatasetModel):
    """The instrument universe: S&P 500 constituents, ETFs, FX pairs, indices and futures."""

    instrument_id: Series[str] = pa.Field(
        unique=True,
        str_matches=r"^[A-Z0-9^][A-Z0-9.=^-]*@\d{4}-\d{2}-\d{2}$",
        description="Stable id that survives ticker changes: SYMBOL@YYYY-MM-DD, the first ticker "
        "and first day known (FB@2018-01-01 is Meta Platforms).",
    )
    symbol: Series[str] = pa.Field(
        unique=True,
        description="Canonical symbol in force today, or at removal for a former member "
        "(BRK.B, SPY, EURUSD, ^GSPC, CL=F).",
    )
    yahoo_symbol: Series[str] = pa.Field(
        unique=True, description="Yahoo Finance ticker (BRK-B, EURUSD=X)."
    )
    name: Series[str] = pa.Field(description="Instrument or company name.")
    asset_class: Series[str] = pa.Field(
        isin=["equity", "etf", "fx", "index", "commodity"],
        description="equity, etf, fx, index or commodity (front-month future).",
    )
    gics_sector: Series[str] = pa.Field(nullable=True, description="GICS sector (equities only).")
    isin: Series[str] = pa.Field(nullable=True, description="ISIN where known.")
    currency: Series[str] = pa.Field(
        str_length={"min_value": 3, "max_value": 3}, description="Quote currency."
    )
    calendar: Series[str] = pa.Field(description="exchange-calendars name of the trading calendar.")
    index_member: Series[str] = pa.Field(
        nullable=True, description="Index the instrument belongs to today (S&P 500)."
    )
    active: Series[bool] = pa.Field(
        description="In today's market universe (current S&P 500 members, ETFs, FX, indices, "
        "futures); False for a former S&P 500 member kept for point-in-time history."
    )


class IndexMembership(DatasetModel):
    """Index membership as intervals: one row per instrument and ticker in force."""

    index: Series[str] = pa.Field(isin=["sp500"], description="Index (sp500: the S&P 500).")
    instrument_id: Series[str] = pa.Field(description="The instrument's stable id.")
    symbol: Series[str] = pa.Field(description="Ticker in force during the interval.")
    security: Series[str] = pa.Field(nullable=True, description="Company name, where known.")
    added: Series[pd.Timestamp] = pa.Field(
        metadata=DATE,
        description="First day of the interval (effective before the open); the history's "
        "start (2018-01-01) when already a member then (added_via before_history).",
    )
    removed: Series[pd.Timestamp] = pa.Field(
        nullable=True, metadata=DATE, description="First day no longer in force; null: current."
    )
    added_via: Series[str] = pa.Field(
        isin=["addition", "rename", "before_history"],
        description="addition (joined the index), rename (ticker change of a member) or "
        "before_history (a member on 2018-01-01).",
    )
    removed_via: Series[str] = pa.Field(
        nullable=True, isin=["removal", "rename"], description="removal, rename or null."
    )
    added_reason: Series[str] = pa.Field(
        nullable=True, description="Reason given for the change that began the interval."
    )
    removed_reason: Series[str] = pa.Field(
        nullable=True, description="Reason given for the change that ended it."
    )

    @pa.dataframe_check(description="removed is after added")
    def ends_after_start(cls, df: pd.DataFrame) -> Series[bool]:
        return df["removed"].isna() | (df["removed"] > df["added"])

    @pa.dataframe_check(description="(index, instrument_id, added) is unique")
    def one_row_per_interval(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["index", "instrument_id", "added"]).any()


class TradingSessions(DatasetModel):
    """One row per trading session of each calendar the platform uses."""

    calendar: Series[str] = pa.Field(
        description="exchange-calendars name (XNYS, XNAS, 24/5, CMES)."
    )
    date: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="Local session date.")
    open_utc: Series[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs=UTC, description="Session open, UTC."
    )
    close_utc: Series[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs=UTC, description="Session close, UTC."
    )
    early_close: Series[bool] = pa.Field(description="True on half days.")

    @pa.dataframe_check(description="(calendar, date) is unique")
    def one_row_per_session(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["calendar", "date"]).any()

    @pa.dataframe_check(description="close_utc > open_utc")
    def closes_after_open(cls, df: pd.DataFrame) -> Series[bool]:
        return df["close_utc"] > df["open_utc"]


class ExchangeHolidays(DatasetModel):
    """Weekdays on which a calendar does not trade."""

    calendar: Series[str] = pa.Field(description="exchange-calendars name.")
    date: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="Local date of the closure.")
    name: Series[str] = pa.Field(description="Holiday name, or 'ad hoc closure'.")
    kind: Series[str] = pa.Field(isin=["regular", "ad_hoc"], description="regular or ad_hoc.")

    @pa.dataframe_check(description="(calendar, date) is unique")
    def one_row_per_holiday(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["calendar", "date"]).any()


GROUP = "reference"

#: Reference data changes rarely; a week without a refresh is worth a look, two a failure.
REFERENCE_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=dt.timedelta(days=14), warn_window=dt.timedelta(days=8)
)

INSTRUMENTS = Dataset(
    name="instruments",
    model=Instruments,
    group=GROUP,
    freshness=REFERENCE_FRESHNESS,
    key=("symbol",),
    description="Every instrument the platform tracks: S&P 500 constituents (shipped snapshot), "
    "the ETF list, FX pairs, equity and volatility indices and front-month commodity futures, "
    "with Yahoo symbols, sector, currency and trading calendar; plus every former S&P 500 "
    "member since the first market partition (active false), each with its stable id.",
)

INDEX_MEMBERSHIP = Dataset(
    name="index_membership",
    model=IndexMembership,
    group=GROUP,
    freshness=REFERENCE_FRESHNESS,
    key=("index", "instrument_id", "added"),
    description="S&P 500 membership since 2018-01-01 as intervals per instrument and ticker "
    "(added inclusive, removed exclusive), replayed from the reviewed changes and symbol "
    "changes back from today's list: the members on any day, with stable ids.",
)

TRADING_SESSIONS = Dataset(
    name="trading_sessions",
    model=TradingSessions,
    group=GROUP,
    freshness=REFERENCE_FRESHNESS,
    key=("calendar", "date"),
    description="Trading sessions (open and close in UTC, early closes) of each calendar the "
    "universe trades on, from exchange-calendars, from the first market partition to next "
    "year's end.",
)

EXCHANGE_HOLIDAYS = Dataset(
    name="exchange_holidays",
    model=ExchangeHolidays,
    group=GROUP,
    freshness=REFERENCE_FRESHNESS,
    key=("calendar", "date"),
    description="Weekdays on which each calendar does not trade, named (regular holidays) or "
    "marked ad hoc (closures such as 2025-01-09), from exchange-calendars.",
)
