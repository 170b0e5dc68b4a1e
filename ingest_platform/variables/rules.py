"""How each kind of source becomes `variable_series` rows (plain functions)."""

from __future__ import annotations

import pandas as pd

from ingest_platform.variables.schema import VariableSeries

COLUMNS = list(VariableSeries.to_schema().columns)


def from_economic(rows: pd.DataFrame) -> pd.DataFrame:
    """`economic_indicators` rows as they are (they already carry the registry's names)."""
    return rows[COLUMNS].reset_index(drop=True)


def from_market(
    bars: pd.DataFrame, variable_of: dict[str, str], sessions: pd.DataFrame, key: str = "symbol"
) -> pd.DataFrame:
    """Each mapped instrument's close, known at its session's close (`sessions`: calendar,
    date, close_utc; `bars` carry the instrument's calendar in ``calendar``).

    `variable_of` maps `key` (``symbol``, or ``instrument_id`` so that a variable follows its
    instrument across ticker changes) to the variable; ``series_id`` is the ticker in force on
    each day."""
    chosen = bars[bars[key].isin(variable_of)]
    if chosen.empty:
        return pd.DataFrame(columns=COLUMNS)
    closes = chosen.merge(sessions, on=["calendar", "date"], how="inner")
    return pd.DataFrame(
        {
            "variable": closes[key].map(variable_of),
            "source": "market",
            "series_id": closes["symbol"],
            "date": closes["date"],
            "value": closes["close"].astype(float),
            "realtime_start": closes["date"],
            "realtime_end": pd.NaT,
            "known_at": closes["close_utc"],
            "knowledge_basis": "market_close",
        }
    )[COLUMNS]


def from_stream(minute_bars: pd.DataFrame, variable_of: dict[str, str]) -> pd.DataFrame:
    """Each mapped pair's last verified mid of a UTC day, known when the day ends."""
    chosen = minute_bars[minute_bars["symbol"].isin(variable_of)]
    if chosen.empty:
        return pd.DataFrame(columns=COLUMNS)
    minute = pd.to_datetime(chosen["minute"], utc=True)
    last = (
        chosen.assign(day=minute.dt.tz_localize(None).dt.normalize(), _minute=minute)
        .sort_values("_minute")
        .groupby(["symbol", "day"], as_index=False)
        .last()
    )
    return pd.DataFrame(
        {
            "variable": last["symbol"].map(variable_of),
            "source": "kraken",
            "series_id": last["symbol"],
            "date": last["day"],
            "value": last["mid_close"].astype(float),
            "realtime_start": last["day"],
            "realtime_end": pd.NaT,
            "known_at": (last["day"] + pd.Timedelta(days=1)).dt.tz_localize("UTC"),
            "knowledge_basis": "market_close",
        }
    )[COLUMNS]
