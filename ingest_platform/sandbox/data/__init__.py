"""Deterministic data behind the sandbox: market bars, corporate actions, FRED, World Bank, S&P 500.

Everything is a pure function of a seed and an ``as_of`` date, so two sandboxes built alike serve
byte-identical payloads, and tests ask `MarketSimulator` for the truth they compare ingested data
against (`MarketSimulator.daily_bars`, `fred_frame`, `worldbank_series`, `constituents`).

Where things live (each module's docstring says how its numbers are made, and why):

- `_helpers`: stable keyed random draws (``zlib.crc32``, per calendar year, by day of year) and
  date coercion, shared by every generator.
- `instruments`: `Instrument` and the universe tables the providers resolve tickers with.
- `market`: price series, real splits and dividends, and the drift between Yahoo and the
  secondary sources.
- `fred_catalogue`: the FRED series and releases simulated (metadata, schedules, revisions).
- `economic`: FRED values and their vintages, on the release schedules.
- `worldbank`: World Bank annual indicators.
- `constituents`: S&P 500 constituents and changes, as Wikipedia's table lists them.
- `simulator`: `MarketSimulator`, the cached facade over all of the above.

Import from this package (``from ingest_platform.sandbox.data import MarketSimulator``); the
modules are an internal layout.
"""

from __future__ import annotations

from ingest_platform.sandbox.data._helpers import as_date, daily_draws, stable_hash
from ingest_platform.sandbox.data.constituents import Constituent, ConstituentChange
from ingest_platform.sandbox.data.economic import (
    FRED_FAR_FUTURE,
    FredRow,
    FredVintages,
    build_fred_vintages,
    fred_rows,
    release_schedule,
)
from ingest_platform.sandbox.data.fred_catalogue import (
    FRED_RELEASES,
    FRED_SERIES,
    FredRelease,
    FredSeriesSpec,
)
from ingest_platform.sandbox.data.instruments import Instrument
from ingest_platform.sandbox.data.market import (
    DEFAULT_LARGE_DRIFTS,
    DIVIDENDS,
    FX_LEVELS,
    GENESIS,
    MARKET_PROVIDERS,
    SPLITS,
    CalendarIndex,
    LargeDrift,
    SymbolSeries,
    build_series,
)
from ingest_platform.sandbox.data.simulator import MarketSimulator
from ingest_platform.sandbox.data.worldbank import (
    WORLDBANK_COUNTRIES,
    WORLDBANK_INDICATORS,
    build_worldbank_values,
)

__all__ = [
    "DEFAULT_LARGE_DRIFTS",
    "DIVIDENDS",
    "FRED_FAR_FUTURE",
    "FRED_RELEASES",
    "FRED_SERIES",
    "FX_LEVELS",
    "GENESIS",
    "MARKET_PROVIDERS",
    "SPLITS",
    "WORLDBANK_COUNTRIES",
    "WORLDBANK_INDICATORS",
    "CalendarIndex",
    "Constituent",
    "ConstituentChange",
    "FredRelease",
    "FredRow",
    "FredSeriesSpec",
    "FredVintages",
    "Instrument",
    "LargeDrift",
    "MarketSimulator",
    "SymbolSeries",
    "as_date",
    "build_fred_vintages",
    "build_series",
    "build_worldbank_values",
    "daily_draws",
    "fred_rows",
    "release_schedule",
    "stable_hash",
]
