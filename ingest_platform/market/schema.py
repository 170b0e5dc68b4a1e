"""Pandera models of the market datasets: daily bars (per source and conformed), corporate
actions."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pandera.pandas as pa
from dagster import FreshnessPolicy
from pandera.typing import Series

from ingest_platform.core.dataset import Dataset
from ingest_platform.core.partitions import MARKET_DAYS
from ingest_platform.core.schema import DATE, UTC, DatasetModel

_RELATIVE_TOLERANCE = 1e-9  # float rounding in a source's payload is not a broken bar


class DailyBars(DatasetModel):
    """Daily OHLCV bars, one row per (symbol, session date), from one source or consolidated."""

    symbol: Series[str] = pa.Field(description="Canonical symbol.")
    date: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="Exchange-local session date.")
    open: Series[float] = pa.Field(gt=0, description="Open, split-adjusted as of ingested_at.")
    high: Series[float] = pa.Field(gt=0, description="High, split-adjusted.")
    low: Series[float] = pa.Field(gt=0, description="Low, split-adjusted.")
    close: Series[float] = pa.Field(gt=0, description="Close, split-adjusted (not for dividends).")
    adj_close: Series[float] = pa.Field(
        gt=0,
        nullable=True,
        description="Close adjusted for splits and dividends; null where the source has none.",
    )
    volume: Series[int] = pa.Field(ge=0, description="Shares (0 for FX).")
    source: Series[str] = pa.Field(
        description="Source the row came from (yahoo, alpha_vantage, polygon)."
    )
    ingested_at: Series[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs=UTC, description="When the row was fetched, UTC."
    )

    @pa.dataframe_check(description="(symbol, date) is unique")
    def one_bar_per_symbol_day(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["symbol", "date"]).any()

    @pa.dataframe_check(description="high >= max(open, close)")
    def high_is_highest(cls, df: pd.DataFrame) -> Series[bool]:
        top = df[["open", "close"]].max(axis=1)
        return df["high"] >= top * (1 - _RELATIVE_TOLERANCE)

    @pa.dataframe_check(description="low <= min(open, close)")
    def low_is_lowest(cls, df: pd.DataFrame) -> Series[bool]:
        bottom = df[["open", "close"]].min(axis=1)
        return df["low"] <= bottom * (1 + _RELATIVE_TOLERANCE)


class MarketBars(DailyBars):
    """The conformed bars: `DailyBars` with the instrument each bar belongs to."""

    instrument_id: Series[str] = pa.Field(
        description="Stable instrument id (SYMBOL@YYYY-MM-DD, see reference.membership): the "
        "same across a ticker change, different for a ticker reused by another company."
    )


class CorporateActions(DatasetModel):
    """Splits and dividends as reported by a source, one row per (symbol, date, action)."""

    symbol: Series[str] = pa.Field(description="Canonical symbol.")
    date: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="Ex-date, exchange-local.")
    action: Series[str] = pa.Field(isin=["dividend", "split"], description="dividend or split.")
    value: Series[float] = pa.Field(
        gt=0, description="Cash per share, or the split ratio (2.0 = 2-for-1)."
    )
    source: Series[str] = pa.Field(description="Source that reported it.")

    @pa.dataframe_check(description="(symbol, date, action) is unique")
    def one_action_per_day(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["symbol", "date", "action"]).any()


GROUP = "market"


#: Every weekday's bars are expected by 22:15 New York (the schedule runs at 20:45), from a
#: materialization no older than that day's session.
DAILY_FRESHNESS = FreshnessPolicy.cron(
    deadline_cron="15 22 * * 1-5",
    lower_bound_delta=dt.timedelta(hours=6),
    timezone="America/New_York",
)


def _daily(name: str, model: type[DatasetModel], key: tuple[str, ...], description: str) -> Dataset:
    return Dataset(
        freshness=DAILY_FRESHNESS,
        name=name,
        model=model,
        group=GROUP,
        key=key,
        partitioning=MARKET_DAYS,
        description=description,
    )


YAHOO_DAILY_BARS = _daily(
    "yahoo_daily_bars",
    DailyBars,
    ("symbol", "date"),
    "Daily OHLCV for the whole universe from Yahoo (yfinance): split-adjusted close and "
    "split+dividend adjusted close, one partition per NYSE weekday.",
)
CORPORATE_ACTIONS = _daily(
    "corporate_actions",
    CorporateActions,
    ("symbol", "date", "action"),
    "Splits and dividends reported by Yahoo, partitioned by ex-date.",
)
ALPHA_VANTAGE_DAILY_BARS = _daily(
    "alpha_vantage_daily_bars",
    DailyBars,
    ("symbol", "date"),
    "Alpha Vantage TIME_SERIES_DAILY closes (as traded) for a rotating sample of equities and "
    "ETFs within the daily call budget, for cross-source reconciliation.",
)
POLYGON_DAILY_BARS = _daily(
    "polygon_daily_bars",
    DailyBars,
    ("symbol", "date"),
    "Polygon daily aggregates (split-adjusted) for a rotating sample of the universe within the "
    "rate limit, for cross-source reconciliation.",
)
MARKET_BARS = _daily(
    "market_bars",
    MarketBars,
    ("symbol", "date"),
    "The conformed daily bars: one row per symbol and session, taken from the first source "
    "that has it in priority order yahoo > polygon > alpha_vantage (Alpha Vantage's as-traded "
    "prices split-adjusted first), with the source named on each row. Each partition holds the "
    "S&P 500 members as of its date (under the ticker in force that day, with a stable "
    "instrument_id), plus the ETFs, FX pairs, indices and futures.",
)

#: The per-source bar datasets, by source name.
SOURCE_DATASETS = {
    "yahoo": YAHOO_DAILY_BARS,
    "polygon": POLYGON_DAILY_BARS,
    "alpha_vantage": ALPHA_VANTAGE_DAILY_BARS,
}
