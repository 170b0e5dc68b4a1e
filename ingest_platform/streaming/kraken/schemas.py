"""Pandera models of the datasets compacted from the Kraken stream log.

Same pattern as every dataset: a `DatasetModel` (strict, coercing) described once by a
`Dataset`, whose Arrow schema every lake partition is written with and whose column schema the
Dagster UI shows.
"""

from __future__ import annotations

import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

from ingest_platform.core.dataset import Dataset
from ingest_platform.core.partitions import STREAM_DAYS
from ingest_platform.core.schema import UTC, DatasetModel

_RELATIVE_TOLERANCE = 1e-12  # mids are float means of exact decimals


class KrakenBookMinuteBars(DatasetModel):
    """One row per (symbol, UTC minute) in which the verified book changed.

    Built from the book log rows whose checksum matched: mid = (best bid + best ask) / 2 and
    spread = best ask - best bid after each applied message, summarised per minute of local
    receive time (the clock the log is partitioned by; the sandbox's exchange clock is
    simulated). Minutes without a verified book update have no row: a bar is never carried
    forward over a gap. Trade columns come from the trade log (snapshot replays of old trades
    are dropped, trades deduplicated by id).
    """

    symbol: Series[str] = pa.Field(description="Kraken v2 pair (BTC/USD).")
    minute: Series[pd.DatetimeTZDtype] = pa.Field(
        dtype_kwargs=UTC, description="Start of the UTC minute (local receive time)."
    )
    mid_open: Series[float] = pa.Field(gt=0, description="Mid after the minute's first update.")
    mid_high: Series[float] = pa.Field(gt=0, description="Highest mid in the minute.")
    mid_low: Series[float] = pa.Field(gt=0, description="Lowest mid in the minute.")
    mid_close: Series[float] = pa.Field(gt=0, description="Mid after the minute's last update.")
    spread_mean: Series[float] = pa.Field(
        description="Mean of best ask - best bid over the minute's updates (not time-weighted)."
    )
    spread_min: Series[float] = pa.Field(description="Smallest spread in the minute.")
    spread_max: Series[float] = pa.Field(description="Widest spread in the minute.")
    book_updates: Series[int] = pa.Field(
        gt=0, description="Verified book messages (snapshots included) in the minute."
    )
    trades: Series[int] = pa.Field(ge=0, description="Trades printed in the minute.")
    trade_volume: Series[float] = pa.Field(ge=0, description="Base-currency volume traded.")
    trade_vwap: Series[float] = pa.Field(
        nullable=True, gt=0, description="Volume-weighted trade price; null without trades."
    )
    gap: Series[bool] = pa.Field(
        description="True when a recorded gap (reconnect, resync, maintenance) overlaps the minute."
    )

    @pa.dataframe_check(description="(symbol, minute) is unique")
    def one_bar_per_symbol_minute(cls, df: pd.DataFrame) -> bool:
        return not df.duplicated(["symbol", "minute"]).any()

    @pa.dataframe_check(description="mid_high >= max(mid_open, mid_close)")
    def high_is_highest(cls, df: pd.DataFrame) -> Series[bool]:
        top = df[["mid_open", "mid_close"]].max(axis=1)
        return df["mid_high"] >= top * (1 - _RELATIVE_TOLERANCE)

    @pa.dataframe_check(description="mid_low <= min(mid_open, mid_close)")
    def low_is_lowest(cls, df: pd.DataFrame) -> Series[bool]:
        bottom = df[["mid_open", "mid_close"]].min(axis=1)
        return df["mid_low"] <= bottom * (1 + _RELATIVE_TOLERANCE)

    @pa.dataframe_check(description="spread_min <= spread_mean <= spread_max")
    def spread_ordered(cls, df: pd.DataFrame) -> Series[bool]:
        tol = df["spread_max"].abs() * _RELATIVE_TOLERANCE + 1e-12
        return (df["spread_min"] <= df["spread_mean"] + tol) & (
            df["spread_mean"] <= df["spread_max"] + tol
        )

    @pa.dataframe_check(description="minute is on a whole minute")
    def whole_minutes(cls, df: pd.DataFrame) -> Series[bool]:
        return df["minute"] == df["minute"].dt.floor("min")


KRAKEN_BOOK_MINUTE_BARS = Dataset(
    name="kraken_book_minute_bars",
    model=KrakenBookMinuteBars,
    group="kraken_stream",
    key=("symbol", "minute"),
    partitioning=STREAM_DAYS,
    description=(
        "One UTC day of the Kraken stream log, replayed and checksum-verified, compacted into "
        "1-minute mid-price (open/high/low/close) and spread (mean/min/max) bars per pair, with "
        "trade counts and volume, and a flag for minutes a recorded gap overlaps."
    ),
)
