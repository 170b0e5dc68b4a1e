"""Frames for the quality tests: crafted bars, and the sandbox simulator's real series."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ingest_platform.core import calendars
from ingest_platform.sandbox.data import MarketSimulator

#: The simulator every sandbox-based quality test reads (the benchmark's too).
SIM_AS_OF = "2026-11-20"


def make_bars(symbol: str, days, closes=None, **columns) -> pd.DataFrame:
    """Plausible bars for `symbol` on `days` (OHLC around the closes, volume 1e6)."""
    dates = pd.to_datetime(list(days))
    close = np.asarray(closes if closes is not None else np.full(len(dates), 100.0), dtype=float)
    frame = pd.DataFrame(
        {
            "symbol": symbol,
            "date": dates,
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": np.full(len(dates), 1_000_000, dtype=np.int64),
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def sessions(start: str, count: int, calendar: str = "XNYS") -> list[dt.date]:
    """The first `count` sessions of `calendar` from `start`."""
    found = calendars.sessions(
        start, pd.Timestamp(start) + pd.Timedelta(days=count * 2 + 10), calendar
    )
    assert len(found) >= count
    return found[:count]


@pytest.fixture(scope="session")
def simulator() -> MarketSimulator:
    return MarketSimulator(seed=7, as_of=SIM_AS_OF)


def sim_bars(sim: MarketSimulator, symbols, provider="yahoo", start="2023-01-02", end="2025-12-31"):
    """The provider's bars for `symbols` as one canonical frame (symbol, date, OHLCV)."""
    frames = []
    for symbol in symbols:
        frame = sim.daily_bars(symbol, start, end, provider=provider).reset_index()
        frame.insert(0, "symbol", symbol)
        frames.append(frame[["symbol", "date", "open", "high", "low", "close", "volume"]])
    return pd.concat(frames, ignore_index=True)


def sim_actions(sim: MarketSimulator, symbols) -> pd.DataFrame:
    """The recorded splits and dividends of `symbols`, in the CorporateActions shape."""
    frames = []
    for symbol in symbols:
        splits = sim.splits(symbol)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": splits["date"],
                    "action": "split",
                    "value": splits["ratio"],
                }
            )
        )
        dividends = sim.dividends(symbol)
        frames.append(
            pd.DataFrame(
                {
                    "symbol": symbol,
                    "date": dividends["date"],
                    "action": "dividend",
                    "value": dividends["amount"],
                }
            )
        )
    frame = pd.concat(frames, ignore_index=True)
    return frame.assign(source="yahoo")


@pytest.fixture(scope="session")
def helpers():
    """The module-level helpers, for tests (conftest modules are not importable by name)."""

    class Helpers:
        bars = staticmethod(make_bars)
        sessions = staticmethod(sessions)
        sim_bars = staticmethod(sim_bars)
        sim_actions = staticmethod(sim_actions)

    return Helpers
