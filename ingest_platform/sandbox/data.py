"""Deterministic data behind the sandbox: market bars, corporate actions, FRED, World Bank, S&P 500.

Everything is a pure function of a seed and an ``as_of`` date, so two sandboxes built alike serve
byte-identical payloads, and tests ask `MarketSimulator` for the truth they compare ingested data
against (`MarketSimulator.daily_bars`, `fred_frame`, `worldbank_series`, `constituents`).

How the numbers are made, and why:

- Random draws are keyed by (seed, stream, symbol, calendar year) through ``zlib.crc32``, never
  Python's salted ``hash()``, and indexed by day of year. A given day's bar therefore depends
  neither on the requested range nor on ``as_of``: moving ``as_of`` forward only appends bars.
- Prices are an Ornstein-Uhlenbeck deviation around a drifting log-level from a fixed genesis
  (`GENESIS`), so levels stay realistic over a decade (equities 1.5-3 % daily vol, ETFs lower,
  FX about 0.5 % around its real level). Sessions come from exchange-calendars (``XNYS`` for
  equities and ETFs, ``24/5`` for FX) through `ingest_platform.calendars`.
- Raw (as traded) prices include every scheduled split; adjusted views divide by the splits that
  happened up to ``as_of``, exactly as a provider re-adjusts history after a split. Yahoo's close
  is split-adjusted, its adjclose also dividend-adjusted (multiplicative back-adjustment);
  Alpha Vantage's TIME_SERIES_DAILY is raw; Polygon is split-adjusted or raw on request.
- Secondary sources (Alpha Vantage, Polygon) differ from Yahoo by a small per-day drift
  (``drift_bps``) plus a few injected large drifts (`LargeDrift`), which the drift checks must
  find.
- A symbol's whole series is generated once and kept in an LRU cache, so serving a request is
  slicing and formatting.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from ingest_platform import calendars, settings, universe

#: First session of every simulated market series (a fixed origin: bars never depend on ranges).
GENESIS = dt.date(2015, 1, 2)
#: Market-data providers the simulator has a view for.
MARKET_PROVIDERS = ("yahoo", "alpha_vantage", "polygon")
#: Open-ended realtime period end, as FRED writes it.
FRED_FAR_FUTURE = dt.date(9999, 12, 31)
_NY = "America/New_York"
_LONDON = "Europe/London"


# ---- small deterministic helpers -------------------------------------------------------------


def stable_hash(*parts: object) -> int:
    """CRC32 of the parts joined by ``|``: stable across processes, unlike ``hash()``."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def as_date(value: dt.date | str | pd.Timestamp | None) -> dt.date | None:
    """A calendar date from a date, datetime, ISO string or Timestamp (None stays None)."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def daily_draws(
    seed: int, key: tuple[object, ...], dates: np.ndarray, columns: int, uniform: bool = False
) -> np.ndarray:
    """Random numbers per date, shape ``(len(dates), columns)``, that depend only on the date.

    One generator per calendar year (seeded from `seed`, `key` and the year) draws a 366-row
    block indexed by day of year, so the number for a day never depends on which other days are
    asked for.
    """
    out = np.empty((len(dates), columns))
    if len(dates) == 0:
        return out
    years = dates.astype("datetime64[Y]")
    day_of_year = (dates - years.astype("datetime64[D]")).astype(np.int64)
    year_numbers = years.astype(np.int64) + 1970
    stream = stable_hash(seed, *key)
    for year in np.unique(year_numbers):
        rng = np.random.default_rng([stream, int(year)])
        block = rng.random((366, columns)) if uniform else rng.standard_normal((366, columns))
        mask = year_numbers == year
        out[mask] = block[day_of_year[mask]]
    return out


def _series_rng(seed: int, *key: object) -> np.random.Generator:
    return np.random.default_rng(stable_hash(seed, *key))


# ---- configuration records -------------------------------------------------------------------


@dataclass(frozen=True)
class LargeDrift:
    """A secondary source's close differs from the truth by `relative` (0.05 = +5 %) on `day`."""

    provider: str  # "alpha_vantage" or "polygon"
    symbol: str  # canonical symbol (BRK.B, EURUSD)
    day: dt.date
    relative: float

    @classmethod
    def coerce(cls, value: LargeDrift | Sequence[Any]) -> LargeDrift:
        if isinstance(value, LargeDrift):
            return value
        provider, symbol, day, relative = value
        if provider not in MARKET_PROVIDERS[1:]:
            raise ValueError(f"large drift provider must be alpha_vantage or polygon: {provider}")
        return cls(str(provider), str(symbol), as_date(day), float(relative))


#: Injected large drifts unless configured otherwise: one per secondary source, plus one on FX.
DEFAULT_LARGE_DRIFTS: tuple[LargeDrift, ...] = (
    LargeDrift("alpha_vantage", "AAPL", dt.date(2024, 3, 15), 0.05),
    LargeDrift("polygon", "MSFT", dt.date(2024, 6, 3), -0.05),
    LargeDrift("polygon", "EURUSD", dt.date(2024, 9, 16), 0.03),
)


@dataclass(frozen=True)
class ConstituentChange:
    """An S&P 500 change effective on `effective`: a symbol added, removed, or both."""

    effective: dt.date
    added: str | None = None
    removed: str | None = None
    added_name: str | None = None
    added_sector: str | None = None
    reason: str = "Market capitalization change."

    @classmethod
    def coerce(cls, value: ConstituentChange | Sequence[Any]) -> ConstituentChange:
        """From the dataclass or a tuple ``(effective, added, removed[, name, sector, reason])``."""
        if isinstance(value, ConstituentChange):
            return value
        effective, added, removed, *rest = value
        if not added and not removed:
            raise ValueError(f"constituent change on {effective} adds and removes nothing")
        return cls(as_date(effective), added or None, removed or None, *rest)


@dataclass(frozen=True)
class Instrument:
    """One simulated instrument and how each provider names it."""

    symbol: str
    yahoo_symbol: str
    name: str
    asset_class: str  # equity | etf | fx
    calendar: str
    currency: str
    sector: str | None = None

    @property
    def is_fx(self) -> bool:
        return self.asset_class == "fx"

    @property
    def polygon_ticker(self) -> str:
        return f"C:{self.symbol}" if self.is_fx else self.symbol

    @property
    def decimals(self) -> int:
        """Price precision as traded: cents for US listings, pips for FX."""
        if not self.is_fx:
            return 2
        return 3 if self.currency == "JPY" else 4 if self.currency == "MXN" else 5


# ---- corporate actions (real ones, where they fall in range) ---------------------------------

#: Splits as (effective session, ratio) - the real ones since GENESIS for these symbols.
SPLITS: dict[str, tuple[tuple[dt.date, float], ...]] = {
    "AAPL": ((dt.date(2020, 8, 31), 4.0),),
    "TSLA": ((dt.date(2020, 8, 31), 5.0), (dt.date(2022, 8, 25), 3.0)),
    "AMZN": ((dt.date(2022, 6, 6), 20.0),),
    "GOOGL": ((dt.date(2022, 7, 18), 20.0),),
    "GOOG": ((dt.date(2022, 7, 18), 20.0),),
    "NVDA": ((dt.date(2021, 7, 20), 4.0), (dt.date(2024, 6, 10), 10.0)),
    "WMT": ((dt.date(2024, 2, 26), 3.0),),
    "CMG": ((dt.date(2024, 6, 26), 50.0),),
    "AVGO": ((dt.date(2024, 7, 15), 10.0),),
    "SMCI": ((dt.date(2024, 10, 1), 10.0),),
}

#: Quarterly dividends: annual yield, ex-date months, and the day of month the ex-date follows.
DIVIDENDS: dict[str, tuple[float, tuple[int, ...], int]] = {
    "AAPL": (0.006, (2, 5, 8, 11), 9),
    "MSFT": (0.009, (2, 5, 8, 11), 15),
    "JNJ": (0.029, (2, 5, 8, 11), 20),
    "KO": (0.031, (3, 6, 9, 11), 14),
    "XOM": (0.036, (2, 5, 8, 11), 12),
    "PG": (0.025, (1, 4, 7, 10), 19),
    "JPM": (0.024, (1, 4, 7, 10), 5),
    "WMT": (0.014, (3, 5, 8, 12), 7),
    "SPY": (0.014, (3, 6, 9, 12), 15),
}

#: Typical FX levels, so EURUSD looks like EURUSD.
FX_LEVELS = {
    "EURUSD": 1.08,
    "GBPUSD": 1.27,
    "USDJPY": 150.0,
    "AUDUSD": 0.66,
    "NZDUSD": 0.61,
    "USDCAD": 1.36,
    "USDCHF": 0.88,
    "EURGBP": 0.85,
    "EURJPY": 162.0,
    "USDCNH": 7.2,
    "USDMXN": 17.5,
}


# ---- market series ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CalendarIndex:
    """Sessions of one calendar from GENESIS to as_of, with the timestamps providers stamp them."""

    dates: np.ndarray  # datetime64[D]
    yahoo_ts: np.ndarray  # int64 epoch seconds: 09:30 New York (00:00 London for FX)
    polygon_ms: np.ndarray  # int64 epoch milliseconds: 00:00 New York

    @classmethod
    def build(cls, calendar: str, as_of: dt.date) -> CalendarIndex:
        days = pd.DatetimeIndex(calendars.sessions(GENESIS, as_of, calendar), dtype="M8[ns]")
        if calendar == calendars.FX_CALENDAR:
            yahoo = days.tz_localize(_LONDON)
        else:
            yahoo = (days + pd.Timedelta(hours=9, minutes=30)).tz_localize(_NY)
        polygon = days.tz_localize(_NY)
        return cls(
            dates=days.to_numpy().astype("datetime64[D]"),
            yahoo_ts=yahoo.asi8 // 10**9,
            polygon_ms=polygon.asi8 // 10**6,
        )


@dataclass(frozen=True)
class SymbolSeries:
    """One instrument's whole history up to as_of: raw prices plus the factors providers apply.

    `split_factor` divides raw prices into split-adjusted ones (splits up to as_of only);
    `dividend_factor` multiplies the split-adjusted close into Yahoo's adjclose. Either is None
    when the instrument has no such action.
    """

    instrument: Instrument
    calendar: CalendarIndex
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # int64, raw (as traded)
    split_factor: np.ndarray | None
    dividend_factor: np.ndarray | None
    splits: tuple[tuple[int, float], ...]  # (session index, ratio)
    dividends: tuple[tuple[int, float], ...]  # (session index, raw amount per share)

    @property
    def dates(self) -> np.ndarray:
        return self.calendar.dates

    def __len__(self) -> int:
        return len(self.calendar.dates)

    def window(self, start: dt.date | None = None, end: dt.date | None = None) -> slice:
        """Index slice of sessions in [start, end] (both inclusive, None = open)."""
        dates = self.calendar.dates
        lo = 0 if start is None else int(np.searchsorted(dates, np.datetime64(start, "D")))
        hi = (
            len(dates)
            if end is None
            else int(np.searchsorted(dates, np.datetime64(end, "D"), "right"))
        )
        return slice(lo, max(lo, hi))

    def splits_factor_at(self, index: int) -> float:
        return 1.0 if self.split_factor is None else float(self.split_factor[index])


@dataclass(frozen=True)
class _PriceParams:
    level: float
    sigma: float
    mu: float
    phi: float
    volume: float


def _price_params(seed: int, inst: Instrument) -> _PriceParams:
    rng = _series_rng(seed, "params", inst.symbol)
    if inst.is_fx:
        sigma = 0.007 if inst.symbol == "USDMXN" else rng.uniform(0.004, 0.006)
        return _PriceParams(FX_LEVELS.get(inst.symbol, 1.0), sigma, 0.0, 1 - 1 / 500, 0.0)
    if inst.asset_class == "etf":
        level, sigma, mu = rng.uniform(40, 450), rng.uniform(0.006, 0.015), 0.06 / 252
        volume = math.exp(rng.uniform(math.log(1e6), math.log(8e7)))
    else:
        level, mu = math.exp(rng.uniform(math.log(20), math.log(400))), 0.08 / 252
        sigma = rng.uniform(0.015, 0.03)
        volume = math.exp(rng.uniform(math.log(8e5), math.log(4e7)))
    # A heavy splitter trades high before its splits and lower after: split the difference.
    total_split = math.prod(r for _, r in SPLITS.get(inst.symbol, ()))
    return _PriceParams(level / math.sqrt(total_split), sigma, mu, 1 - 1 / 500, volume)


def _factor_after(dates: np.ndarray, schedule: Iterable[tuple[dt.date, float]]) -> np.ndarray:
    """Product of the ratios of the splits effective after each date."""
    factor = np.ones(len(dates))
    for day, ratio in schedule:
        factor[dates < np.datetime64(day, "D")] *= ratio
    return factor


def build_series(seed: int, inst: Instrument, cal: CalendarIndex, as_of: dt.date) -> SymbolSeries:
    """Generate `inst`'s bars for every session of `cal` (which ends at `as_of`)."""
    dates, n = cal.dates, len(cal.dates)
    p = _price_params(seed, inst)
    z = daily_draws(seed, ("bars", inst.symbol), dates, 5)
    deviation = np.fromiter(accumulate(p.sigma * z[:, 0], lambda x, e: p.phi * x + e), float, n)
    close = p.level * np.exp(p.mu * np.arange(n) + deviation)
    previous = np.concatenate((close[:1], close[:-1]))
    open_ = previous * np.exp(0.3 * p.sigma * z[:, 1])
    high = np.maximum(open_, close) * np.exp(0.5 * p.sigma * np.abs(z[:, 2]))
    low = np.minimum(open_, close) * np.exp(-0.5 * p.sigma * np.abs(z[:, 3]))

    # Raw prices carry every scheduled split, so they never depend on as_of; rounding is
    # monotonic, so high >= max(open, close) >= min(open, close) >= low survives it.
    schedule = SPLITS.get(inst.symbol, ())
    raw_factor = _factor_after(dates, schedule)
    tick = 10.0**-inst.decimals
    raw = {
        k: np.maximum(np.round(v * raw_factor, inst.decimals), tick)
        for k, v in (("open", open_), ("high", high), ("low", low), ("close", close))
    }
    if inst.is_fx:
        volume = np.zeros(n, dtype=np.int64)
    else:
        adjusted_volume = p.volume * np.exp(0.4 * z[:, 4])
        volume = np.maximum(np.round(adjusted_volume / raw_factor), 100).astype(np.int64)

    end = np.datetime64(as_of, "D")
    happened = tuple((d, r) for d, r in schedule if np.datetime64(d, "D") <= end)
    split_factor = _factor_after(dates, happened) if happened else None
    splits = tuple(
        (int(np.searchsorted(dates, np.datetime64(d, "D"))), r)
        for d, r in happened
        if np.datetime64(d, "D") > dates[0]
    )
    dividends = _dividends(inst, dates, close, raw_factor, as_of)
    dividend_factor = None
    if dividends:
        adjusted_close = raw["close"] / (split_factor if split_factor is not None else 1.0)
        dividend_factor = np.ones(n)
        for index, amount in dividends:
            adjusted_amount = amount / (split_factor[index] if split_factor is not None else 1.0)
            dividend_factor[:index] *= 1.0 - adjusted_amount / adjusted_close[index - 1]
    return SymbolSeries(
        inst, cal, raw["open"], raw["high"], raw["low"], raw["close"], volume,
        split_factor, dividend_factor, splits, dividends,
    )  # fmt: skip


def _dividends(
    inst: Instrument, dates: np.ndarray, close: np.ndarray, raw_factor: np.ndarray, as_of: dt.date
) -> tuple[tuple[int, float], ...]:
    """Quarterly ex-dates (first session on or after the anchor day) and raw amounts.

    The amount is set once a year from the split-adjusted price, then expressed per share as
    traded on the ex-date, so a split mid-year cuts the per-share amount as it does in reality.
    """
    spec = DIVIDENDS.get(inst.symbol)
    if spec is None or len(dates) < 2:
        return ()
    annual_yield, months, anchor = spec
    out: list[tuple[int, float]] = []
    for year in range(GENESIS.year, as_of.year + 1):
        first = int(np.searchsorted(dates, np.datetime64(dt.date(year, 1, 1), "D")))
        if first >= len(dates):
            break
        yearly = annual_yield / 4 * close[first]
        for month in months:
            index = int(np.searchsorted(dates, np.datetime64(dt.date(year, month, anchor), "D")))
            if 0 < index < len(dates):
                out.append((index, max(round(yearly * raw_factor[index], 2), 0.01)))
    return tuple(out)


# ---- FRED ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FredSeriesSpec:
    """A FRED series' metadata and how the sandbox generates and releases it."""

    id: str
    title: str
    frequency: str
    frequency_short: str
    units: str
    units_short: str
    seasonal_adjustment: str
    seasonal_adjustment_short: str
    decimals: int
    popularity: int
    notes: str
    release_lag: tuple[int, int]  # (months, days) from the observation date to first release
    revisions: tuple[int, ...]  # days after the first release at which each revision appears
    revision_scale: float  # size of the first-release error, in units of the series


_SA, _NSA = ("Seasonally Adjusted", "SA"), ("Not Seasonally Adjusted", "NSA")
_SAAR = ("Seasonally Adjusted Annual Rate", "SAAR")

FRED_SERIES: dict[str, FredSeriesSpec] = {
    s.id: s
    for s in (
        FredSeriesSpec(
            "DGS10", "Market Yield on U.S. Treasury Securities at 10-Year Constant Maturity, "
            "Quoted on an Investment Basis", "Daily", "D", "Percent", "%", *_NSA, 2, 97,
            "Missing values ('.') fall on U.S. bond-market holidays.", (0, 1), (30,), 0.02,
        ),
        FredSeriesSpec(
            "DFF", "Federal Funds Effective Rate", "Daily, 7-Day", "D", "Percent", "%", *_NSA,
            2, 95, "Published for every calendar day.", (0, 1), (30,), 0.01,
        ),
        FredSeriesSpec(
            "ICSA", "Initial Claims", "Weekly, Ending Saturday", "W", "Number", "Number", *_SA,
            0, 90, "Weekly initial claims for unemployment insurance.", (0, 5), (7,), 4000.0,
        ),
        FredSeriesSpec(
            "WALCL", "Assets: Total Assets: Total Assets (Less Eliminations from Consolidation): "
            "Wednesday Level", "Weekly, As of Wednesday", "W", "Millions of U.S. Dollars",
            "Mil. of U.S. $", *_NSA, 0, 88, "Federal Reserve balance sheet.", (0, 1), (7,),
            2500.0,
        ),
        FredSeriesSpec(
            "CPIAUCSL", "Consumer Price Index for All Urban Consumers: All Items in U.S. City "
            "Average", "Monthly", "M", "Index 1982-1984=100", "Index 1982-1984=100", *_SA, 3,
            95, "CPI-U, all items.", (1, 12), (30,), 0.08,
        ),
        FredSeriesSpec(
            "UNRATE", "Unemployment Rate", "Monthly", "M", "Percent", "%", *_SA, 1, 96,
            "Civilian unemployment rate.", (1, 6), (30,), 0.1,
        ),
        FredSeriesSpec(
            "PAYEMS", "All Employees, Total Nonfarm", "Monthly", "M", "Thousands of Persons",
            "Thous. of Persons", *_SA, 0, 92, "Nonfarm payrolls.", (1, 6), (30,), 60.0,
        ),
        FredSeriesSpec(
            "INDPRO", "Industrial Production: Total Index", "Monthly", "M", "Index 2017=100",
            "Index 2017=100", *_SA, 4, 85, "Industrial production index.", (1, 16), (30,), 0.3,
        ),
        FredSeriesSpec(
            "FEDFUNDS", "Federal Funds Effective Rate", "Monthly", "M", "Percent", "%", *_NSA,
            2, 93, "Monthly average of DFF.", (1, 1), (30,), 0.01,
        ),
        FredSeriesSpec(
            "GDP", "Gross Domestic Product", "Quarterly", "Q", "Billions of Dollars",
            "Bil. of $", *_SAAR, 3, 98, "Advance, second and third estimates.", (3, 29),
            (30, 60), 60.0,
        ),
        FredSeriesSpec(
            "GDPC1", "Real Gross Domestic Product", "Quarterly", "Q",
            "Billions of Chained 2017 Dollars", "Bil. of Chn. 2017 $", *_SAAR, 3, 94,
            "Advance, second and third estimates.", (3, 29), (30, 60), 50.0,
        ),
    )
}  # fmt: skip

#: Observations are generated on a fixed grid so a value never depends on as_of.
_FRED_START, _FRED_END = dt.date(2015, 1, 1), dt.date(2035, 12, 31)


@dataclass(frozen=True)
class FredVintages:
    """Every observation of a series with its vintages: (first day valid, value or None)."""

    spec: FredSeriesSpec
    dates: tuple[dt.date, ...]
    vintages: tuple[tuple[tuple[dt.date, float | None], ...], ...]


@dataclass(frozen=True)
class FredRow:
    """One observation row as FRED returns it: value None is FRED's ``"."``."""

    date: dt.date
    realtime_start: dt.date
    realtime_end: dt.date
    value: float | None


def _ou(rng: np.random.Generator, n: int, mean: float, sd: float, phi: float, start: float):
    shocks = rng.standard_normal(n) * sd
    return np.fromiter(
        accumulate(shocks, lambda x, e: mean + phi * (x - mean) + e, initial=start), float, n + 1
    )[1:]


def _dff_path(rng: np.random.Generator, n: int) -> np.ndarray:
    """A policy-rate-like step path: moves of 25 bp, about eight meetings a year, plus noise."""
    level, out = 0.12, np.empty(n)
    moves = rng.random(n)
    direction = rng.standard_normal(n)
    for i in range(n):
        if moves[i] < 8 / 365 / 2:
            level = min(max(level + (0.25 if direction[i] > -0.2 else -0.25), 0.08), 5.33)
        out[i] = level
    return out + np.round(rng.standard_normal(n) * 0.01, 2)


def _fred_grid(spec: FredSeriesSpec) -> pd.DatetimeIndex:
    freq = {"DGS10": "B", "DFF": "D", "ICSA": "W-SAT", "WALCL": "W-WED"}.get(spec.id)
    freq = freq or {"M": "MS", "Q": "QS"}[spec.frequency_short]
    return pd.date_range(_FRED_START, _FRED_END, freq=freq)


def _fred_final_values(seed: int, spec: FredSeriesSpec, grid: pd.DatetimeIndex) -> np.ndarray:
    """Final (fully revised) values on the grid; NaN where FRED prints ``"."``."""
    n = len(grid)
    rng = _series_rng(seed, "fred", spec.id)
    if spec.id == "DGS10":
        values = np.maximum(_ou(rng, n, 3.0, 0.05, 0.999, 2.1), 0.4)
        holidays = USFederalHolidayCalendar().holidays(_FRED_START, _FRED_END)
        values[grid.isin(holidays)] = np.nan
        return values
    if spec.id in ("DFF", "FEDFUNDS"):
        days = pd.date_range(_FRED_START, _FRED_END, freq="D")
        dff = pd.Series(_dff_path(_series_rng(seed, "fred", "DFF"), len(days)), index=days)
        if spec.id == "DFF":
            return dff.to_numpy()
        return dff.resample("MS").mean().reindex(grid).to_numpy()
    if spec.id == "ICSA":
        return np.round(220_000 * np.exp(_ou(rng, n, 0.0, 0.04, 0.97, 0.0)), -3)
    if spec.id == "WALCL":
        return np.round(4_500_000 * np.exp(np.cumsum(0.0008 + 0.006 * rng.standard_normal(n))))
    if spec.id == "CPIAUCSL":
        return 234.0 * np.exp(np.cumsum(0.0022 + 0.002 * rng.standard_normal(n)))
    if spec.id == "UNRATE":
        return np.maximum(_ou(rng, n, 4.6, 0.15, 0.97, 5.7), 3.2)
    if spec.id == "PAYEMS":
        return np.round(140_600 + np.cumsum(150 + 120 * rng.standard_normal(n)))
    if spec.id == "INDPRO":
        return _ou(rng, n, 101.0, 0.5, 0.95, 101.5)
    growth = {"GDP": (0.012, 0.006, 17_900.0), "GDPC1": (0.006, 0.005, 18_200.0)}[spec.id]
    return growth[2] * np.exp(np.cumsum(growth[0] + growth[1] * rng.standard_normal(n)))


def build_fred_vintages(seed: int, spec: FredSeriesSpec) -> FredVintages:
    """Each observation's first release and revisions; the first release misses the final value."""
    grid = _fred_grid(spec)
    final = _fred_final_values(seed, spec, grid)
    rng = _series_rng(seed, "fred-revisions", spec.id)
    errors = rng.standard_normal((len(grid), len(spec.revisions))) * spec.revision_scale
    unit = 10.0**-spec.decimals
    months, days = spec.release_lag
    first_releases = grid + pd.DateOffset(months=months, days=days)
    dates, vintages = [], []
    for i, (stamp, released) in enumerate(zip(grid, first_releases, strict=True)):
        day, first = stamp.date(), released.date()
        starts = [first] + [first + dt.timedelta(days=d) for d in spec.revisions]
        value = final[i]
        values: list[float | None] = []
        if np.isnan(value):
            values = [None] * len(starts)
        else:
            final_value = round(float(value), spec.decimals)
            for k in range(len(spec.revisions)):
                # Earlier vintages miss by more; a miss is never zero after rounding.
                miss = round(float(errors[i, k]) * (len(spec.revisions) - k), spec.decimals)
                values.append(round(final_value + (miss or unit), spec.decimals))
            values.append(final_value)
        dates.append(day)
        vintages.append(tuple(zip(starts, values, strict=True)))
    return FredVintages(spec, tuple(dates), tuple(vintages))


def fred_rows(
    vintages: FredVintages,
    as_of: dt.date,
    realtime_start: dt.date,
    realtime_end: dt.date,
    observation_start: dt.date | None = None,
    observation_end: dt.date | None = None,
) -> list[FredRow]:
    """FRED's observation rows: one per (date, vintage) overlapping the realtime period.

    Vintages published after `as_of` do not exist yet; the current vintage runs to 9999-12-31.
    Each row's realtime period is the vintage's validity clipped to the requested period.
    """
    rows: list[FredRow] = []
    lo = observation_start or dt.date.min
    hi = observation_end or dt.date.max
    for day, versions in zip(vintages.dates, vintages.vintages, strict=True):
        if day < lo or day > hi:
            continue
        known = [(start, value) for start, value in versions if start <= as_of]
        for k, (start, value) in enumerate(known):
            end = known[k + 1][0] - dt.timedelta(days=1) if k + 1 < len(known) else FRED_FAR_FUTURE
            if start <= realtime_end and end >= realtime_start:
                rows.append(FredRow(day, max(start, realtime_start), min(end, realtime_end), value))
    return rows


# ---- World Bank ------------------------------------------------------------------------------

#: ISO3 -> (ISO2, name, GDP in current US$ for 2023 used to scale the simulated level).
WORLDBANK_COUNTRIES: dict[str, tuple[str, str, float]] = {
    "CAN": ("CA", "Canada", 2.14e12),
    "CHN": ("CN", "China", 1.78e13),
    "DEU": ("DE", "Germany", 4.53e12),
    "FRA": ("FR", "France", 3.03e12),
    "GBR": ("GB", "United Kingdom", 3.34e12),
    "ITA": ("IT", "Italy", 2.25e12),
    "JPN": ("JP", "Japan", 4.21e12),
    "USA": ("US", "United States", 2.77e13),
}
#: Indicator id -> (name, decimal, first year with data).
WORLDBANK_INDICATORS: dict[str, tuple[str, int, int]] = {
    "NY.GDP.MKTP.CD": ("GDP (current US$)", 0, 1960),
    "NY.GDP.MKTP.KD.ZG": ("GDP growth (annual %)", 1, 1961),
    "FP.CPI.TOTL.ZG": ("Inflation, consumer prices (annual %)", 1, 1960),
    "SL.UEM.TOTL.ZS": (
        "Unemployment, total (% of total labor force) (modeled ILO estimate)",
        1,
        1991,
    ),
}
_WB_FIRST_YEAR = 1960
_WB_GRID_END = 2040


def build_worldbank_values(seed: int, indicator: str, iso3: str) -> np.ndarray:
    """Annual values for 1960..2040 on a fixed grid (NaN before the indicator's first year)."""
    _, _, first = WORLDBANK_INDICATORS[indicator]
    years = np.arange(_WB_FIRST_YEAR, _WB_GRID_END + 1)
    rng = _series_rng(seed, "worldbank", indicator, iso3)
    n = len(years)
    if indicator == "NY.GDP.MKTP.CD":
        growth = (0.09 if iso3 == "CHN" else 0.05) + 0.05 * rng.standard_normal(n)
        level = np.exp(np.cumsum(growth))
        values = np.round(level / level[2023 - _WB_FIRST_YEAR] * WORLDBANK_COUNTRIES[iso3][2])
    elif indicator == "NY.GDP.MKTP.KD.ZG":
        values = (6.5 if iso3 == "CHN" else 1.9) + 2.0 * rng.standard_normal(n)
    elif indicator == "FP.CPI.TOTL.ZG":
        values = np.maximum((0.6 if iso3 == "JPN" else 2.6) + 1.6 * rng.standard_normal(n), -1.5)
    else:
        mean = {"USA": 5.6, "GBR": 5.8, "DEU": 6.5, "JPN": 3.4, "CHN": 4.6, "FRA": 9.0}
        values = np.maximum(_ou(rng, n, mean.get(iso3, 7.5), 0.5, 0.8, mean.get(iso3, 7.5)), 2.0)
    values = np.where(years >= first, values, np.nan)
    return values if indicator == "NY.GDP.MKTP.CD" else np.round(values, 9)


# ---- S&P 500 constituents (Wikipedia's table) ------------------------------------------------

_SUB_INDUSTRIES = {
    "Communication Services": ("Interactive Media & Services", "Movies & Entertainment"),
    "Consumer Discretionary": ("Broadline Retail", "Restaurants", "Automobile Manufacturers"),
    "Consumer Staples": ("Packaged Foods & Meats", "Soft Drinks & Non-alcoholic Beverages"),
    "Energy": ("Integrated Oil & Gas", "Oil & Gas Exploration & Production"),
    "Financials": ("Diversified Banks", "Asset Management & Custody Banks", "Insurance Brokers"),
    "Health Care": ("Pharmaceuticals", "Health Care Equipment", "Biotechnology"),
    "Industrials": ("Aerospace & Defense", "Industrial Machinery & Supplies & Components"),
    "Information Technology": ("Semiconductors", "Systems Software", "Application Software"),
    "Materials": ("Specialty Chemicals", "Construction Materials"),
    "Real Estate": ("Retail REITs", "Data Center REITs", "Multi-Family Residential REITs"),
    "Utilities": ("Electric Utilities", "Multi-Utilities"),
}
_HEADQUARTERS = (
    "New York City, New York", "San Francisco, California", "Chicago, Illinois",
    "Houston, Texas", "Atlanta, Georgia", "Boston, Massachusetts", "Seattle, Washington",
    "Dallas, Texas", "Santa Clara, California", "Charlotte, North Carolina",
    "Minneapolis, Minnesota", "Denver, Colorado", "Cincinnati, Ohio", "Miami, Florida",
)  # fmt: skip


@dataclass(frozen=True)
class Constituent:
    """One row of Wikipedia's constituents table.

    Symbol, security and sector come from the shipped snapshot; sub-industry, headquarters,
    date added, CIK and founding year are not in it, so they are plausible values derived
    deterministically from the symbol (the CIK is not the real one).
    """

    symbol: str
    security: str
    sector: str
    sub_industry: str
    headquarters: str
    date_added: dt.date
    cik: str
    founded: int


def _constituent(symbol: str, name: str, sector: str, added: dt.date | None) -> Constituent:
    h = stable_hash("constituent", symbol)
    subs = _SUB_INDUSTRIES.get(sector, ("Diversified",))
    date_added = added or dt.date(1957, 3, 4) + dt.timedelta(days=h % 24_000)
    founded = min(1850 + (h >> 8) % 160, date_added.year)
    return Constituent(
        symbol=symbol,
        security=name,
        sector=sector,
        sub_industry=subs[(h >> 4) % len(subs)],
        headquarters=_HEADQUARTERS[(h >> 12) % len(_HEADQUARTERS)],
        date_added=date_added,
        cik=f"{(h >> 3) % 2_000_000:010d}",
        founded=founded,
    )


@dataclass(frozen=True)
class _Universe:
    """The simulated instruments and each provider's lookup table, loaded together."""

    instruments: dict[str, Instrument]
    by_yahoo: dict[str, Instrument]
    by_polygon: dict[str, Instrument]
    snapshot: frozenset[str]  # equities in the shipped S&P 500 snapshot

    @classmethod
    def load(cls, directory: Path, changes: Iterable[ConstituentChange]) -> _Universe:
        frame = universe.load_instruments(directory)
        found = {
            r.symbol: Instrument(
                r.symbol, r.yahoo_symbol, r.name, r.asset_class, r.calendar, r.currency,
                r.gics_sector if isinstance(r.gics_sector, str) else None,
            )
            for r in frame.itertuples(index=False)
        }  # fmt: skip
        for change in changes:
            if change.added and change.added not in found:
                found[change.added] = Instrument(
                    change.added,
                    change.added.replace(".", "-"),
                    change.added_name or change.added,
                    "equity",
                    calendars.PRIMARY_CALENDAR,
                    "USD",
                    change.added_sector,
                )
        return cls(
            instruments=found,
            by_yahoo={i.yahoo_symbol.upper(): i for i in found.values()},
            by_polygon={i.polygon_ticker.upper(): i for i in found.values()},
            snapshot=frozenset(frame.loc[frame["asset_class"] == "equity", "symbol"]),
        )


# ---- the simulator ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class MarketSimulator:
    """Deterministic sources of every provider, from one seed, with data up to `as_of`.

    Args:
        seed: everything random derives from it.
        as_of: the last date with data (default: today). Providers know nothing after it.
        drift_bps: size of the daily drift between Yahoo and the secondary sources.
        large_drifts: injected big differences (`LargeDrift` or tuples).
        polygon_page_size: the most results Polygon returns per page before ``next_url``.
        reference_dir: where the universe CSVs live (default: `settings.reference_dir()`).
        constituent_changes: S&P 500 changes effective up to as_of (`ConstituentChange`).
        revoked_keys: API keys the providers reject as invalid.
    """

    seed: int = 7
    as_of: dt.date | str | None = None
    drift_bps: float = 2.0
    large_drifts: tuple[LargeDrift | Sequence[Any], ...] = DEFAULT_LARGE_DRIFTS
    polygon_page_size: int = 5000
    reference_dir: Path | str | None = None
    constituent_changes: tuple[ConstituentChange | Sequence[Any], ...] = ()
    revoked_keys: tuple[str, ...] = ()
    series_cache_size: int = 1024
    _caches: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        as_of = as_date(self.as_of) or dt.date.today()
        if as_of <= GENESIS:
            raise ValueError(f"as_of {as_of} must be after the simulation genesis {GENESIS}")
        if self.polygon_page_size < 1:
            raise ValueError(f"polygon_page_size must be >= 1, got {self.polygon_page_size}")
        object.__setattr__(self, "as_of", as_of)
        object.__setattr__(
            self, "large_drifts", tuple(LargeDrift.coerce(d) for d in self.large_drifts)
        )
        changes = sorted(
            (ConstituentChange.coerce(c) for c in self.constituent_changes),
            key=lambda c: c.effective,
        )
        object.__setattr__(self, "constituent_changes", tuple(changes))
        object.__setattr__(self, "revoked_keys", tuple(self.revoked_keys))
        self._caches["lock"] = threading.Lock()
        self._caches["series"] = lru_cache(maxsize=self.series_cache_size)(self._build_series)
        self._caches["calendar"] = lru_cache(maxsize=4)(self._build_calendar)
        self._caches["fred"] = lru_cache(maxsize=32)(self._build_fred)

    # -- instruments ---------------------------------------------------------------------------

    @property
    def today(self) -> dt.date:
        """`as_of` as a date (the field accepts strings; after construction it is a date)."""
        return self.as_of  # type: ignore[return-value]

    @property
    def instruments(self) -> dict[str, Instrument]:
        """Every simulated instrument by canonical symbol: the universe plus added constituents."""
        return self._universe().instruments

    def _universe(self) -> _Universe:
        """The instrument tables, built once (under a lock: handler threads race to it)."""
        universe_ = self._caches.get("universe")
        if universe_ is None:
            with self._caches["lock"]:
                universe_ = self._caches.get("universe")
                if universe_ is None:
                    universe_ = _Universe.load(
                        Path(self.reference_dir or settings.reference_dir()),
                        self.constituent_changes,
                    )
                    self._caches["universe"] = universe_
        return universe_

    def instrument(self, symbol: str) -> Instrument:
        """The instrument with canonical `symbol` (KeyError names it when unknown)."""
        try:
            return self.instruments[symbol]
        except KeyError:
            raise KeyError(f"{symbol!r} is not a simulated instrument") from None

    def resolve(self, provider: str, ticker: str) -> Instrument | None:
        """The instrument a provider's ticker names, or None (Yahoo BRK-B, Polygon C:EURUSD)."""
        tables = self._universe()
        key = ticker.strip().upper()
        if provider == "yahoo":
            return tables.by_yahoo.get(key)
        if provider == "polygon":
            return tables.by_polygon.get(key)
        if provider == "alpha_vantage":
            inst = tables.instruments.get(key) or tables.by_yahoo.get(key)
            return None if inst is None or inst.is_fx else inst
        raise ValueError(f"unknown market provider {provider!r}; expected {MARKET_PROVIDERS}")

    def warm(self, symbols: Iterable[str] | None = None) -> int:
        """Generate series ahead of the first request (default: every instrument); returns the
        count. A long-running sandbox can call it so the first backfill pass is not the one
        paying for generation (about 3 ms per symbol)."""
        chosen = list(self.instruments if symbols is None else symbols)
        for symbol in chosen:
            self.series(symbol)
        return len(chosen)

    # -- market series -------------------------------------------------------------------------

    def _build_calendar(self, calendar: str) -> CalendarIndex:
        return CalendarIndex.build(calendar, self.today)

    def _build_series(self, symbol: str) -> SymbolSeries:
        inst = self.instrument(symbol)
        return build_series(self.seed, inst, self._caches["calendar"](inst.calendar), self.today)

    def series(self, symbol: str) -> SymbolSeries:
        """`symbol`'s whole generated history (cached)."""
        return self._caches["series"](symbol)

    def drift_multiplier(self, provider: str, series: SymbolSeries, window: slice) -> np.ndarray:
        """1 + the relative difference of `provider`'s prices from the truth, per session."""
        dates = series.dates[window]
        symbol = series.instrument.symbol
        uniform = daily_draws(self.seed, ("drift", provider, symbol), dates, 1, uniform=True)
        drift = self.drift_bps / 1e4 * (2 * uniform[:, 0] - 1)
        for large in self.large_drifts:
            if large.provider == provider and large.symbol == symbol:
                drift[dates == np.datetime64(large.day, "D")] += large.relative
        return 1.0 + drift

    def yahoo_view(self, series: SymbolSeries, window: slice) -> dict[str, np.ndarray]:
        """Yahoo's arrays: split-adjusted OHLC and volume, adjclose also dividend-adjusted."""
        factor = 1.0 if series.split_factor is None else series.split_factor[window]
        close = series.close[window] / factor
        adjclose = (
            close if series.dividend_factor is None else close * series.dividend_factor[window]
        )
        return {
            "open": series.open[window] / factor,
            "high": series.high[window] / factor,
            "low": series.low[window] / factor,
            "close": close,
            "adjclose": adjclose,
            "volume": np.round(series.volume[window] * factor).astype(np.int64),
        }

    def secondary_view(
        self, provider: str, series: SymbolSeries, window: slice, adjusted: bool
    ) -> dict[str, np.ndarray]:
        """Alpha Vantage's or Polygon's arrays: drifted from the truth, split-adjusted or raw."""
        factor = (
            series.split_factor[window]
            if adjusted and series.split_factor is not None
            else np.ones(window.stop - window.start)
        )
        drift = self.drift_multiplier(provider, series, window)
        decimals = max(4, series.instrument.decimals)
        out = {
            k: np.round(getattr(series, k)[window] / factor * drift, decimals)
            for k in ("open", "high", "low", "close")
        }
        out["volume"] = np.round(series.volume[window] * factor).astype(np.int64)
        out["vwap"] = np.round((out["high"] + out["low"] + out["close"]) / 3, decimals)
        if series.instrument.is_fx:
            ticks = daily_draws(
                self.seed, ("ticks", series.instrument.symbol), series.dates[window], 1
            )
            out["transactions"] = (150_000 + np.abs(ticks[:, 0]) * 40_000).astype(np.int64)
            out["volume"] = out["transactions"].copy()
        else:
            out["transactions"] = np.maximum(out["volume"] // 160, 1)
        return out

    def daily_bars(
        self,
        symbol: str,
        start: dt.date | str | None = None,
        end: dt.date | str | None = None,
        provider: str = "yahoo",
        adjusted: bool | None = None,
    ) -> pd.DataFrame:
        """The bars `provider` serves for canonical `symbol` in [start, end], indexed by date.

        Yahoo: open/high/low/close/volume split-adjusted, ``adj_close`` split- and
        dividend-adjusted (`adjusted` must be None or True). Alpha Vantage: raw prices as traded
        (`adjusted` must be None or False). Polygon: split-adjusted unless ``adjusted=False``;
        also ``vwap`` and ``transactions``. Values are exactly what the sandbox serves.
        """
        inst = self.instrument(symbol)
        series = self.series(inst.symbol)
        window = series.window(as_date(start), as_date(end))
        index = pd.DatetimeIndex(series.dates[window].astype("M8[ns]"), name="date")
        if provider == "yahoo":
            if adjusted is False:
                raise ValueError("Yahoo serves split-adjusted bars only (adjusted=None or True)")
            view = self.yahoo_view(series, window)
            view["adj_close"] = view.pop("adjclose")
            columns = ["open", "high", "low", "close", "adj_close", "volume"]
        elif provider == "alpha_vantage":
            if inst.is_fx:
                raise ValueError("Alpha Vantage TIME_SERIES_DAILY serves equities and ETFs only")
            if adjusted:
                raise ValueError("Alpha Vantage TIME_SERIES_DAILY is raw (adjusted=None or False)")
            view = self.secondary_view(provider, series, window, adjusted=False)
            columns = ["open", "high", "low", "close", "volume"]
        elif provider == "polygon":
            view = self.secondary_view(provider, series, window, adjusted=adjusted is not False)
            columns = ["open", "high", "low", "close", "volume", "vwap", "transactions"]
        else:
            raise ValueError(f"unknown market provider {provider!r}; expected {MARKET_PROVIDERS}")
        return pd.DataFrame({c: view[c] for c in columns}, index=index)

    def splits(self, symbol: str) -> pd.DataFrame:
        """Splits effective up to as_of: ``date`` and ``ratio`` (10.0 = 10-for-1)."""
        series = self.series(self.instrument(symbol).symbol)
        return pd.DataFrame(
            {
                "date": pd.DatetimeIndex(
                    [series.dates[i] for i, _ in series.splits], dtype="M8[ns]"
                ),
                "ratio": [r for _, r in series.splits],
            }
        )

    def dividends(self, symbol: str, adjusted: bool = True) -> pd.DataFrame:
        """Dividends by ex-date up to as_of: ``amount`` split-adjusted (as Yahoo) or raw."""
        series = self.series(self.instrument(symbol).symbol)
        amounts = [a / series.splits_factor_at(i) if adjusted else a for i, a in series.dividends]
        return pd.DataFrame(
            {
                "date": pd.DatetimeIndex(
                    [series.dates[i] for i, _ in series.dividends], dtype="M8[ns]"
                ),
                "amount": amounts,
            }
        )

    # -- economic series -----------------------------------------------------------------------

    def _build_fred(self, series_id: str) -> FredVintages:
        return build_fred_vintages(self.seed, FRED_SERIES[series_id])

    def fred_vintages(self, series_id: str) -> FredVintages:
        """All vintages of a FRED series (KeyError when the series is not simulated)."""
        if series_id not in FRED_SERIES:
            raise KeyError(f"FRED series {series_id!r} is not simulated")
        return self._caches["fred"](series_id)

    def fred_rows(
        self,
        series_id: str,
        realtime_start: dt.date | str | None = None,
        realtime_end: dt.date | str | None = None,
        observation_start: dt.date | str | None = None,
        observation_end: dt.date | str | None = None,
    ) -> list[FredRow]:
        """FRED's observation rows for a realtime period (default: as_of to as_of)."""
        return fred_rows(
            self.fred_vintages(series_id),
            self.today,
            as_date(realtime_start) or self.today,
            as_date(realtime_end) or self.today,
            as_date(observation_start),
            as_date(observation_end),
        )

    def fred_frame(self, series_id: str, realtime: dt.date | str | None = None) -> pd.DataFrame:
        """A series as known on `realtime` (default as_of): ``date`` and ``value`` (NaN = ".")."""
        day = as_date(realtime) or self.today
        rows = self.fred_rows(series_id, day, day)
        return pd.DataFrame(
            {
                "date": pd.DatetimeIndex([r.date for r in rows], dtype="M8[ns]"),
                "value": [np.nan if r.value is None else r.value for r in rows],
            }
        )

    @property
    def worldbank_last_year(self) -> int:
        """The newest year the World Bank lists (the year before as_of's)."""
        return self.today.year - 1

    def worldbank_series(self, indicator: str, iso3: str) -> list[tuple[int, float | None]]:
        """(year, value or None) from 1960 to the last year, ascending.

        The last year is null for half of the countries (which half depends on the seed), as
        the World Bank lists a year before every country has reported it.
        """
        if indicator not in WORLDBANK_INDICATORS or iso3 not in WORLDBANK_COUNTRIES:
            raise KeyError(f"World Bank series {indicator}/{iso3} is not simulated")
        values = build_worldbank_values(self.seed, indicator, iso3)
        last = self.worldbank_last_year
        position = sorted(WORLDBANK_COUNTRIES).index(iso3)
        out = []
        for year in range(_WB_FIRST_YEAR, last + 1):
            value = values[year - _WB_FIRST_YEAR]
            missing = np.isnan(value) or (year == last and (position + self.seed) % 2 == 1)
            out.append((year, None if missing else float(value)))
        return out

    # -- constituents --------------------------------------------------------------------------

    def applied_changes(self, skip_latest: int = 0) -> list[ConstituentChange]:
        """Constituent changes effective up to as_of, oldest first, minus the latest few."""
        effective = [c for c in self.constituent_changes if c.effective <= self.today]
        return effective[: max(len(effective) - skip_latest, 0)]

    def constituents(self, skip_latest_changes: int = 0) -> list[Constituent]:
        """Wikipedia's constituents table: the snapshot with the applied changes, by symbol."""
        snapshot = self._universe().snapshot
        rows = {
            s: _constituent(s, self.instruments[s].name, self.instruments[s].sector or "", None)
            for s in snapshot
        }
        for change in self.applied_changes(skip_latest_changes):
            if change.removed:
                rows.pop(change.removed, None)
            if change.added:
                inst = self.instrument(change.added)
                rows[change.added] = _constituent(
                    inst.symbol, inst.name, inst.sector or "", change.effective
                )
        return [rows[s] for s in sorted(rows)]

    # -- description ---------------------------------------------------------------------------

    def config(self) -> dict[str, Any]:
        """The settings, JSON-ready (revoked keys are counted, never shown)."""
        return {
            "seed": self.seed,
            "as_of": self.today.isoformat(),
            "genesis": GENESIS.isoformat(),
            "drift_bps": self.drift_bps,
            "large_drifts": [
                {"provider": d.provider, "symbol": d.symbol, "date": d.day.isoformat(),
                 "relative": d.relative}
                for d in self.large_drifts
            ],
            "polygon_page_size": self.polygon_page_size,
            "constituent_changes": [
                {"effective": c.effective.isoformat(), "added": c.added, "removed": c.removed,
                 "reason": c.reason}
                for c in self.constituent_changes
            ],
            "revoked_keys": len(self.revoked_keys),
        }  # fmt: skip
