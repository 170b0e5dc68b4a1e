"""Pandera models: one per dataset, the single definition of each dataset's shape.

The same model gives three things, so they cannot drift apart:
- validation of every frame before it reaches the lake (`validate`);
- the Parquet (Arrow) schema every partition is written with (`arrow_schema`), so partitions
  written months apart, or with zero rows on a holiday, read back as one table;
- the column schema shown in the Dagster UI (`column_schema`, via dagster-pandera).
"""

from __future__ import annotations

import warnings
from functools import cache

import pandas as pd
import pandera.pandas as pa
import pyarrow
from dagster import BetaWarning, TableSchema
from dagster_pandera import pandera_schema_to_dagster_type
from pandera.typing import Series

#: Columns marked with this metadata hold a local calendar date: midnight-naive datetime64 in
#: pandas, Parquet DATE on disk.
DATE = {"logical_type": "date"}
UTC = {"tz": "UTC"}

_RELATIVE_TOLERANCE = 1e-9  # float rounding in a source's payload is not a broken bar


class _Base(pa.DataFrameModel):
    class Config:
        strict = True  # an unexpected column is a bug upstream, not something to carry along
        coerce = True


class Instruments(_Base):
    """The instrument universe: S&P 500 constituents, ETFs and FX pairs."""

    symbol: Series[str] = pa.Field(
        unique=True, description="Canonical symbol (BRK.B, SPY, EURUSD)."
    )
    yahoo_symbol: Series[str] = pa.Field(
        unique=True, description="Yahoo Finance ticker (BRK-B, EURUSD=X)."
    )
    name: Series[str] = pa.Field(description="Instrument or company name.")
    asset_class: Series[str] = pa.Field(
        isin=["equity", "etf", "fx"], description="equity, etf or fx."
    )
    gics_sector: Series[str] = pa.Field(nullable=True, description="GICS sector (equities only).")
    isin: Series[str] = pa.Field(nullable=True, description="ISIN where known.")
    currency: Series[str] = pa.Field(
        str_length={"min_value": 3, "max_value": 3}, description="Quote currency."
    )
    calendar: Series[str] = pa.Field(description="exchange-calendars name of the trading calendar.")
    index_member: Series[str] = pa.Field(
        nullable=True, description="Index the instrument belongs to (S&P 500)."
    )


class TradingSessions(_Base):
    """One row per trading session of each calendar the platform uses."""

    calendar: Series[str] = pa.Field(description="exchange-calendars name (XNYS, XNAS, 24/5).")
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


class ExchangeHolidays(_Base):
    """Weekdays on which a calendar does not trade."""

    calendar: Series[str] = pa.Field(description="exchange-calendars name.")
    date: Series[pd.Timestamp] = pa.Field(metadata=DATE, description="Local date of the closure.")
    name: Series[str] = pa.Field(description="Holiday name, or 'ad hoc closure'.")
    kind: Series[str] = pa.Field(isin=["regular", "ad_hoc"], description="regular or ad_hoc.")

    @pa.dataframe_check(description="(calendar, date) is unique")
    def one_row_per_holiday(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["calendar", "date"]).any()


class DailyBars(_Base):
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


class CorporateActions(_Base):
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


def validate(model: type[pa.DataFrameModel], frame: pd.DataFrame) -> pd.DataFrame:
    """Validate (and coerce) `frame` against `model`, collecting every failure before raising."""
    return model.validate(frame, lazy=True)


def empty_frame(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    """A zero-row frame with the model's columns and dtypes (a holiday partition)."""
    return _empty_frame(model).copy()


@cache
def _empty_frame(model: type[pa.DataFrameModel]) -> pd.DataFrame:
    # Coercing through pandera costs ~5 ms; a backfill asks for hundreds of these.
    schema = model.to_schema()
    return schema.coerce_dtype(pd.DataFrame({name: [] for name in schema.columns}))


@cache
def arrow_schema(model: type[pa.DataFrameModel]) -> pyarrow.Schema:
    """The Arrow schema every Parquet partition of `model` is written with."""
    fields = []
    for name, column in model.to_schema().columns.items():
        fields.append(pyarrow.field(name, _arrow_type(column), nullable=column.nullable))
    return pyarrow.schema(fields)


def _arrow_type(column: pa.Column) -> pyarrow.DataType:
    if (column.metadata or {}).get("logical_type") == "date":
        return pyarrow.date32()
    dtype = column.dtype.type
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pyarrow.timestamp("ns", tz=str(dtype.tz))
    if pd.api.types.is_datetime64_dtype(dtype):
        return pyarrow.timestamp("ns")
    if pd.api.types.is_bool_dtype(dtype):
        return pyarrow.bool_()
    if pd.api.types.is_integer_dtype(dtype):
        return pyarrow.int64()
    if pd.api.types.is_float_dtype(dtype):
        return pyarrow.float64()
    if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype):
        return pyarrow.string()
    raise TypeError(f"no Parquet mapping for column {column.name!r} of dtype {dtype}")


@cache
def column_schema(model: type[pa.DataFrameModel]) -> TableSchema:
    """The model's column schema as Dagster shows it (names, types, descriptions, checks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)  # the helper is beta; its output is stable
        return pandera_schema_to_dagster_type(model).metadata["schema"].value
