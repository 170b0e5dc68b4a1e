"""Market series: daily bars per instrument, real splits and dividends, secondary-source drift.

- Prices are an Ornstein-Uhlenbeck deviation around a drifting log-level from a fixed genesis
  (`GENESIS`), so levels stay realistic over a decade (equities 1.5-3 % daily vol, ETFs lower,
  FX about 0.5 % around its real level, indices and front-month futures around their typical
  levels with their own volatility). Sessions come from exchange-calendars (``XNYS`` for
  equities, ETFs and indices, ``24/5`` for FX, ``CMES`` for CME futures) through
  `ingest_platform.core.calendars`.
- Raw (as traded) prices include every scheduled split; adjusted views divide by the splits that
  happened up to ``as_of``, exactly as a provider re-adjusts history after a split. Yahoo's close
  is split-adjusted, its adjclose also dividend-adjusted (multiplicative back-adjustment);
  Alpha Vantage's TIME_SERIES_DAILY is raw; Polygon is split-adjusted or raw on request.
- Secondary sources (Alpha Vantage, Polygon) differ from Yahoo by a small per-day drift
  (``drift_bps``) plus a few injected large drifts (`LargeDrift`), which the drift checks must
  find. `MarketSimulator` applies them when it renders a provider's view of a `SymbolSeries`.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

import numpy as np
import pandas as pd

from ingest_platform.core import calendars
from ingest_platform.sandbox.data._helpers import _series_rng, as_date, daily_draws
from ingest_platform.sandbox.data.instruments import Instrument

#: First session of every simulated market series (a fixed origin: bars never depend on ranges).
GENESIS = dt.date(2015, 1, 2)
#: Market-data providers the simulator has a view for.
MARKET_PROVIDERS = ("yahoo", "alpha_vantage", "polygon")
_NY = "America/New_York"
_LONDON = "Europe/London"


# ---- drift between sources -------------------------------------------------------------------


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

#: Indices and front-month futures: (level at GENESIS, daily volatility, mean reversion phi,
#: typical daily volume; 0 where Yahoo reports none). Equity indices drift up 7 % a year from
#: their 2015 levels; the VIX and commodities mean-revert around theirs (the VIX within weeks).
LISTED_LEVELS: dict[str, tuple[float, float, float, float]] = {
    "^GSPC": (2050.0, 0.011, 1 - 1 / 500, 4.0e9),
    "^NDX": (4200.0, 0.014, 1 - 1 / 500, 5.0e9),
    "^DJI": (17800.0, 0.010, 1 - 1 / 500, 3.5e8),
    "^RUT": (1200.0, 0.015, 1 - 1 / 500, 1.5e9),
    "^VIX": (17.0, 0.065, 0.95, 0.0),
    "CL=F": (70.0, 0.022, 1 - 1 / 250, 3.0e5),
    "GC=F": (1900.0, 0.009, 1 - 1 / 500, 1.8e5),
    "HG=F": (3.9, 0.014, 1 - 1 / 500, 6.0e4),
    "NG=F": (3.2, 0.035, 1 - 1 / 150, 1.4e5),
    "SI=F": (23.0, 0.018, 1 - 1 / 500, 6.0e4),
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
    if inst.asset_class in ("index", "commodity"):
        level, sigma, phi, volume = LISTED_LEVELS.get(inst.symbol, (100.0, 0.015, 1 - 1 / 500, 1e5))
        mu = 0.07 / 252 if inst.asset_class == "index" and inst.symbol != "^VIX" else 0.0
        return _PriceParams(level, sigma, mu, phi, volume)
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
    if inst.is_fx or p.volume == 0:
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
