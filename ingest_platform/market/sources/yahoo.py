"""Yahoo Finance daily bars through yfinance (>= 1.4).

Staged like every source: `extract` gets yfinance's frame for one symbol, `transform` turns it
into canonical bars and corporate actions, `fetch` runs both over the universe.

yfinance's habits this module contains:
- It swallows per-ticker failures and returns an empty or NaN frame. We switch its exceptions
  on for our calls *and* treat an empty or all-NaN answer as a failure, so every symbol ends
  up with data or with a named error.
- It looks up each ticker's exchange timezone with an extra chart request unless its tz cache
  knows it. The instruments table knows it, so we seed that cache: one request per symbol.
- It keeps process-wide caches: an LRU of chart responses (failures included) in memory and
  tz/cookie/ISIN databases on disk. They are pointed at our configured folder and the memory
  cache is cleared before each fetch and retry, so no run, retry or test sees another's data.
- On a failed chart answer it retries at once (ignoring Retry-After) and toggles its global
  cookie strategy. The session (`yahoo_session`) raises before yfinance sees such an answer,
  so our retry policy governs and the other symbols still cost one request each. Production
  uses yfinance's recommended curl_cffi session, guarded; the sandbox a routed requests one.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import requests
import yfinance as yf
from yfinance import cache as yf_cache
from yfinance import exceptions as yf_errors

from ingest_platform.core import calendars, settings
from ingest_platform.core.http import Redactor, RetryPolicy, retry_call
from ingest_platform.core.http.errors import (
    MalformedPayload,
    NoHistory,
    RateLimited,
    SourceError,
    SourceUnavailable,
    UnknownSymbol,
)
from ingest_platform.market.sources.bars import (
    BarsFetch,
    Instrument,
    SymbolAnswer,
    clip_to_range,
    empty_actions,
    fetch_bars,
)
from ingest_platform.market.sources.yahoo_session import ChartStatus, guarded_curl_session

SOURCE = "yahoo"
#: Yahoo's exchange timezone per calendar: FX bars are stamped at midnight London.
EXCHANGE_TIMEZONES = {
    calendars.PRIMARY_CALENDAR: "America/New_York",
    "XNAS": "America/New_York",
    calendars.FX_CALENDAR: "Europe/London",
    calendars.FUTURES_CALENDAR: "America/New_York",  # Yahoo lists NYMEX and COMEX in New York
}
_PRICE_COLUMNS = ["Open", "High", "Low", "Close", "Adj Close"]

_yfinance_lock = threading.Lock()
_yfinance_cache_dir: str | None = None


def use_cache_folder(cache_dir: str | Path) -> None:
    """Point every yfinance cache at `cache_dir` and drop what it held in memory.

    yfinance only honours a new location before its caches are first used, so the cache
    singletons are reset here too; without that a second folder would be silently ignored.
    """
    global _yfinance_cache_dir
    folder = str(Path(cache_dir).resolve())
    with _yfinance_lock:
        Path(folder).mkdir(parents=True, exist_ok=True)
        if folder != _yfinance_cache_dir:
            yf_cache.set_cache_location(folder)
            for manager, attribute in (
                (yf_cache._TzCacheManager, "_tz_cache"),
                (yf_cache._CookieCacheManager, "_Cookie_cache"),
                (yf_cache._ISINCacheManager, "_isin_cache"),
            ):
                setattr(manager, attribute, None)
            _yfinance_cache_dir = folder
    clear_memory_cache()


def clear_memory_cache() -> None:
    """Forget yfinance's in-process chart responses (it caches failures too)."""
    from yfinance.data import YfData

    YfData.cache_get.cache_clear()


def _classify(exc: Exception, symbol: str, redact: Redactor) -> SourceError:
    """Map what yfinance raises to our typed errors, with Yahoo's own reason kept."""
    message = redact(str(exc))
    if isinstance(exc, ChartStatus):
        detail = redact(exc.description)
        if exc.status == 429:
            return RateLimited(SOURCE, f"HTTP 429: {detail}", symbol, exc.retry_after)
        if exc.status == 404:
            return UnknownSymbol(SOURCE, detail, symbol)
        if exc.status >= 500:
            return SourceUnavailable(SOURCE, f"HTTP {exc.status}: {detail}", symbol)
        return SourceError(SOURCE, f"HTTP {exc.status}: {detail}", symbol)
    if isinstance(exc, yf_errors.YFRateLimitError):
        return RateLimited(SOURCE, f"Yahoo rate limit: {message}", symbol)
    if isinstance(exc, yf_errors.YFPricesMissingError) and not exc.yahoo_reason:
        # yfinance drops the HTTP status: a 5xx or an empty answer lands here too. Only an
        # explicit reason from Yahoo ("No data found, symbol may be delisted") is final.
        return SourceUnavailable(
            SOURCE, f"no price data in Yahoo's answer {redact(exc.debug_info.strip())}", symbol
        )
    if isinstance(exc, yf_errors.YFTickerMissingError):
        return UnknownSymbol(SOURCE, message.split(": ", 1)[-1], symbol)
    if isinstance(exc, requests.HTTPError) and getattr(exc.response, "status_code", None) == 404:
        return UnknownSymbol(SOURCE, f"not found: {message}", symbol)
    if isinstance(exc, ValueError):  # JSONDecodeError (also a RequestException): cut-off body
        return MalformedPayload(SOURCE, f"unreadable chart payload: {message}", symbol)
    if isinstance(exc, requests.Timeout):
        return SourceUnavailable(SOURCE, f"timed out: {message}", symbol)
    if isinstance(exc, requests.RequestException):
        return SourceUnavailable(SOURCE, f"{type(exc).__name__}: {message}", symbol)
    if isinstance(exc, yf_errors.YFException):
        return SourceUnavailable(SOURCE, message, symbol)
    return SourceUnavailable(SOURCE, f"{type(exc).__name__}: {message}", symbol)


def _answered_empty(exc: Exception, ticker: yf.Ticker) -> bool:
    """Whether Yahoo answered 200 with a chart that names the symbol but holds no prices (what
    it sends for some delisted tickers), as opposed to an unreadable or missing answer.

    yfinance reports both as a `YFPricesMissingError` without Yahoo's reason; the chart's
    metadata, which yfinance stores from the same answer before raising, tells them apart.
    (A failed status never gets here: the session raises `ChartStatus` first.)
    """
    if not isinstance(exc, yf_errors.YFPricesMissingError) or exc.yahoo_reason:
        return False
    meta = ticker.get_history_metadata()  # stored from this answer: no further request
    return bool(meta.get("symbol")) and bool(meta.get("exchangeTimezoneName"))


def _instant(value: object) -> pd.Timestamp | None:
    """A chart-metadata time (epoch seconds, or the timestamp yfinance made of it) in UTC."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return pd.Timestamp(int(value), unit="s", tz="UTC")
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def chart_stamp(meta: Any) -> pd.Timestamp | None:
    """When Yahoo's answer shows its session still trading: the time of its last regular trade.

    ``regularMarketTime`` is the last regular-session trade, not the time of the answer; after
    the close it equals the close (``currentTradingPeriod.regular.end``) and says nothing the
    wall clock does not (None). Before it, the answer was made mid-session, and so was its last
    bar, however late a cache hands it over: that instant is the stamp `core.settlement` holds
    the bar against.
    """
    try:
        last = _instant(meta["regularMarketTime"])
        end = _instant(meta["currentTradingPeriod"]["regular"]["end"])
    except (KeyError, TypeError):
        return None
    if last is None or end is None:
        return None
    return last if last < end else None


class YahooSource:
    """Daily bars, splits and dividends for many symbols, one chart request each."""

    name = SOURCE

    def __init__(
        self,
        cache_dir: str | Path,
        session: requests.Session | None = None,
        threads: int = 8,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], pd.Timestamp] = settings.now,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.session = session if session is not None else guarded_curl_session()
        self.threads = threads
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._clock = clock
        self._redact = Redactor()

    # ---- stages ------------------------------------------------------------------------------

    def extract(self, instrument: Instrument, start: dt.date, end: dt.date) -> pd.DataFrame:
        """yfinance's own frame for [start, end], raising a typed error instead of swallowing."""
        ticker = yf.Ticker(instrument.yahoo_symbol, session=self.session)
        try:
            raw = ticker.history(
                start=start.isoformat(),
                end=(end + dt.timedelta(days=1)).isoformat(),  # yfinance's end is exclusive
                interval="1d",
                auto_adjust=False,
                actions=True,
                repair=False,
                timeout=self.timeout,
            )
        except Exception as exc:  # yfinance raises anything from JSON to HTTP errors
            clear_memory_cache()  # or the retry is answered with this failure from cache
            if _answered_empty(exc, ticker):
                raise NoHistory(
                    SOURCE,
                    "possibly delisted; Yahoo answered with an empty chart (no price data)",
                    instrument.symbol,
                ) from None
            raise _classify(exc, instrument.symbol, self._redact) from None
        if raw is None or raw.empty:
            raise SourceUnavailable(SOURCE, "yfinance returned no rows", instrument.symbol)
        if raw[_PRICE_COLUMNS[:4]].isna().all().all():
            raise MalformedPayload(SOURCE, "yfinance returned only NaN prices", instrument.symbol)
        # The chart answer's metadata came with the same request (no further one is made).
        raw.attrs["stamp"] = chart_stamp(ticker.get_history_metadata())
        return raw

    def transform(
        self,
        raw: pd.DataFrame,
        instrument: Instrument,
        start: dt.date,
        end: dt.date,
        ingested_at: pd.Timestamp,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """yfinance frame -> (canonical bars, corporate actions), clipped to [start, end].

        Yahoo's Close is split-adjusted; Adj Close is also dividend-adjusted. Rows with a
        missing price are dropped here; the partition metadata then shows the symbol as
        missing on that day rather than carrying a NaN into the lake.
        """
        dates = pd.DatetimeIndex(raw.index).tz_localize(None).normalize()
        complete = raw[_PRICE_COLUMNS].notna().all(axis=1).to_numpy()
        bars = pd.DataFrame(
            {
                "symbol": instrument.symbol,
                "date": dates[complete],
                "open": raw["Open"].to_numpy()[complete],
                "high": raw["High"].to_numpy()[complete],
                "low": raw["Low"].to_numpy()[complete],
                "close": raw["Close"].to_numpy()[complete],
                "adj_close": raw["Adj Close"].to_numpy()[complete],
                "volume": raw["Volume"].fillna(0).round().astype("int64").to_numpy()[complete],
                "source": SOURCE,
                "ingested_at": ingested_at,
            }
        )
        # Duplicated days are passed on as the provider sent them: the ingest decides (and
        # reports) what a duplicate means, instead of a silent keep="last" here.
        bars = clip_to_range(bars, start, end)
        actions = []
        for column, action in (("Dividends", "dividend"), ("Stock Splits", "split")):
            if column in raw:
                events = raw[column].fillna(0).to_numpy() != 0
                actions.append(
                    pd.DataFrame(
                        {
                            "symbol": instrument.symbol,
                            "date": dates[events],
                            "action": action,
                            "value": raw[column].to_numpy()[events].astype(float),
                            "source": SOURCE,
                        }
                    )
                )
        frame = pd.concat(actions, ignore_index=True) if actions else empty_actions()
        return bars, clip_to_range(frame, start, end)

    # ---- the whole fetch ---------------------------------------------------------------------

    def fetch(self, instruments: Sequence[Instrument], start: dt.date, end: dt.date) -> BarsFetch:
        """One chart request per symbol for the whole range; failures collected per symbol."""
        use_cache_folder(self.cache_dir)
        tz_cache = yf_cache.get_tz_cache()
        for instrument in instruments:
            timezone = EXCHANGE_TIMEZONES.get(instrument.calendar)
            if timezone:
                tz_cache.store(instrument.yahoo_symbol, timezone)
        ingested_at = self._clock()

        def fetch_one(instrument: Instrument, start: dt.date, end: dt.date):
            raw = retry_call(
                lambda: self.extract(instrument, start, end),
                SOURCE,
                instrument.symbol,
                self.retry,
                sleep=self._sleep,
                rng=self._rng,
            )
            bars, actions = self.transform(raw, instrument, start, end, ingested_at)
            return SymbolAnswer(bars, actions, raw.attrs.get("stamp"))

        with _hidden_exceptions_off():
            return fetch_bars(
                SOURCE, instruments, start, end, fetch_one, self.threads, redact=self._redact
            )


class _hidden_exceptions_off:
    """Make yfinance raise instead of logging and returning an empty frame, for our calls."""

    def __enter__(self):
        self._previous = yf.config.debug.hide_exceptions
        yf.config.debug.hide_exceptions = False

    def __exit__(self, *exc):
        yf.config.debug.hide_exceptions = self._previous
