"""`MarketSimulator`: the one facade providers and tests ask for every source's data.

A symbol's whole series is generated once and kept in an LRU cache, so serving a request is
slicing and formatting.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ingest_platform.core import settings
from ingest_platform.reference import membership_files
from ingest_platform.sandbox.data._helpers import as_date, daily_draws
from ingest_platform.sandbox.data.constituents import (
    Constituent,
    ConstituentChange,
    _constituent,
)
from ingest_platform.sandbox.data.economic import (
    FredRow,
    FredVintages,
    build_fred_vintages,
    fred_rows,
    release_schedule,
)
from ingest_platform.sandbox.data.fred_catalogue import FRED_RELEASES, FRED_SERIES
from ingest_platform.sandbox.data.instruments import Instrument, _Universe
from ingest_platform.sandbox.data.market import (
    DEFAULT_LARGE_DRIFTS,
    GENESIS,
    MARKET_PROVIDERS,
    CalendarIndex,
    LargeDrift,
    SymbolSeries,
    build_series,
)
from ingest_platform.sandbox.data.worldbank import (
    _WB_FIRST_YEAR,
    WORLDBANK_COUNTRIES,
    WORLDBANK_INDICATORS,
    build_worldbank_values,
)


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
        fred_max_vintage_dates: the most vintage dates one FRED observations request may span
            (FRED's cap is 2,000; tests lower it to exercise splitting).
    """

    seed: int = 7
    as_of: dt.date | str | None = None
    drift_bps: float = 2.0
    large_drifts: tuple[LargeDrift | Sequence[Any], ...] = DEFAULT_LARGE_DRIFTS
    polygon_page_size: int = 5000
    reference_dir: Path | str | None = None
    constituent_changes: tuple[ConstituentChange | Sequence[Any], ...] = ()
    revoked_keys: tuple[str, ...] = ()
    fred_max_vintage_dates: int = 2000
    series_cache_size: int = 1024
    _caches: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        as_of = as_date(self.as_of) or dt.date.today()
        if as_of <= GENESIS:
            raise ValueError(f"as_of {as_of} must be after the simulation genesis {GENESIS}")
        if self.fred_max_vintage_dates < 1:
            raise ValueError(
                f"fred_max_vintage_dates must be >= 1, got {self.fred_max_vintage_dates}"
            )
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
        self._caches["fred"] = lru_cache(maxsize=64)(self._build_fred)

    # -- instruments ---------------------------------------------------------------------------

    @property
    def today(self) -> dt.date:
        """`as_of` as a date (the field accepts strings; after construction it is a date)."""
        return self.as_of  # type: ignore[return-value]

    @property
    def drifts(self) -> tuple[LargeDrift, ...]:
        """`large_drifts` as `LargeDrift`s (the field also accepts tuples; construction coerces
        them, so this only narrows the type)."""
        return tuple(LargeDrift.coerce(d) for d in self.large_drifts)

    @property
    def changes(self) -> tuple[ConstituentChange, ...]:
        """`constituent_changes` as `ConstituentChange`s, oldest first (the field also accepts
        tuples; construction coerces and sorts them, so this only narrows the type)."""
        return tuple(ConstituentChange.coerce(c) for c in self.constituent_changes)

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
                        self.changes,
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
            return inst if inst is not None and inst.asset_class in ("equity", "etf") else None
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
        for large in self.drifts:
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
            if inst.asset_class not in ("equity", "etf"):
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

    def fred_vintage_dates(self, series_id: str) -> list[dt.date]:
        """The days up to as_of on which a value of the series appeared or was revised."""
        return self.fred_vintages(series_id).vintage_dates(self.today)

    def fred_release_dates(self, release_id: int, include_no_data: bool = False) -> list[dt.date]:
        """A release's dates: the days its series got data (up to as_of), plus, with
        `include_no_data`, every other scheduled date up to the end of next year, as FRED's
        ``include_release_dates_with_no_data`` adds future release dates."""
        if release_id not in FRED_RELEASES:
            raise KeyError(f"FRED release {release_id} is not simulated")
        with_data: set[dt.date] = set()
        for spec in FRED_SERIES.values():
            if spec.release_id == release_id:
                with_data.update(self.fred_vintage_dates(spec.id))
        if not include_no_data:
            return sorted(with_data)
        horizon = np.datetime64(dt.date(self.today.year + 1, 12, 31), "D")
        schedule = release_schedule(FRED_RELEASES[release_id])
        scheduled = {d.item() for d in schedule[schedule <= horizon]}
        return sorted(with_data | scheduled)

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
        effective = [c for c in self.changes if c.effective <= self.today]
        return effective[: max(len(effective) - skip_latest, 0)]

    def history_changes(self) -> list[membership_files.MembershipChange]:
        """The shipped S&P 500 history (``sp500_membership_changes.csv``), oldest first: what the
        page's changes table lists below the simulated changes."""
        cached = self._caches.get("history")
        if cached is None:
            directory = Path(self.reference_dir or settings.reference_dir())
            cached = membership_files.load_changes(directory / membership_files.CHANGES_FILE)
            self._caches["history"] = cached
        return list(cached)

    def constituents_symbols(self) -> frozenset[str]:
        """The shipped snapshot's S&P 500 members (before any simulated change)."""
        return self._universe().snapshot

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
                for d in self.drifts
            ],
            "polygon_page_size": self.polygon_page_size,
            "fred_max_vintage_dates": self.fred_max_vintage_dates,
            "constituent_changes": [
                {"effective": c.effective.isoformat(), "added": c.added, "removed": c.removed,
                 "reason": c.reason}
                for c in self.changes
            ],
            "revoked_keys": len(self.revoked_keys),
        }  # fmt: skip
