"""Alpha Vantage ``TIME_SERIES_DAILY``: a second opinion on US equity and ETF closes.

Alpha Vantage answers errors and throttling with HTTP 200: a ``Note`` (per-minute throttle),
an ``Information`` (daily quota or premium-only request) or an ``Error Message`` (bad call,
usually an unknown symbol). `interpret` turns each into a typed error so the shared HTTP layer
retries what is worth retrying. Prices are as traded (not split-adjusted) and there is no
adjusted close on this endpoint; `adj_close` stays empty rather than invented.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from ingest_platform.core.http import HttpClient
from ingest_platform.core.http.errors import (
    AuthenticationFailed,
    MalformedPayload,
    PremiumOnly,
    QuotaExhausted,
    RateLimited,
    SourceError,
    UnknownSymbol,
)
from ingest_platform.market.sources.bars import (
    BarSource,
    Instrument,
    SymbolAnswer,
    canonical_bars,
)

SOURCE = "alpha_vantage"
SERIES_KEY = "Time Series (Daily)"
#: The per-second burst notice asks for about a second between requests.
BURST_RETRY_AFTER = 1.0


def information_error(text: str, symbol: str | None) -> SourceError:
    """Alpha Vantage sends three different things under ``Information``; tell them apart.

    - the premium notice ("This is a premium endpoint", "… is a premium feature"): a
      configuration error, never retried;
    - the burst notice ("spreading out your free API requests … (1 request per second)"):
      retry after about a second;
    - the daily quota ("… rate limit is 25 requests per day"): stop for the UTC day and mark
      the budget exhausted, so no further request is sent.
    Anything else under ``Information`` is treated as the daily quota: the cautious reading.
    """
    lowered = text.lower()
    # The burst notice mentions "premium endpoints" too: test for it first.
    if "per second" in lowered or "sparingly" in lowered or "spreading out" in lowered:
        return RateLimited(SOURCE, f"burst limit: {text}", symbol, BURST_RETRY_AFTER)
    if "premium endpoint" in lowered or "premium feature" in lowered:
        return PremiumOnly(SOURCE, f"premium only: {text}", symbol)
    return QuotaExhausted(SOURCE, f"daily quota: {text}", symbol)


class AlphaVantageSource(BarSource):
    name = SOURCE

    def __init__(
        self,
        http: HttpClient,
        api_key: str,
        base_url: str = "https://www.alphavantage.co",
        outputsize: str = "compact",
        note_retry_after: float = 60.0,
        threads: int = 1,
    ) -> None:
        if outputsize not in ("compact", "full"):
            raise ValueError(
                f"alpha_vantage outputsize must be 'compact' or 'full', got {outputsize!r}"
            )
        if not api_key:
            raise AuthenticationFailed(SOURCE, "no API key configured (ALPHA_VANTAGE_API_KEY)")
        self.http = http
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.outputsize = outputsize
        self.note_retry_after = note_retry_after
        self.threads = threads

    @staticmethod
    def covers(instrument: Instrument) -> bool:
        """TIME_SERIES_DAILY serves listed securities: no FX pairs, indices or futures."""
        return instrument.asset_class in ("equity", "etf")

    @staticmethod
    def provider_symbol(instrument: Instrument) -> str:
        return instrument.yahoo_symbol  # BRK-B, like Yahoo

    # ---- stages ------------------------------------------------------------------------------

    def interpret(self, symbol: str):
        def interpret(status: int, payload: Any) -> dict:
            if not isinstance(payload, dict):
                raise MalformedPayload(
                    SOURCE, f"expected a JSON object, got {type(payload).__name__}", symbol
                )
            if "Note" in payload:
                raise RateLimited(
                    SOURCE, f"throttled: {payload['Note']}", symbol, self.note_retry_after
                )
            if "Information" in payload:
                raise information_error(str(payload["Information"]), symbol)
            if "Error Message" in payload:
                message = payload["Error Message"]
                if "apikey" in message.lower() or "api key" in message.lower():
                    raise AuthenticationFailed(SOURCE, message, symbol)
                raise UnknownSymbol(SOURCE, message, symbol)
            if status >= 400:
                raise MalformedPayload(SOURCE, f"unexpected HTTP {status}", symbol)
            if SERIES_KEY not in payload:
                raise MalformedPayload(
                    SOURCE, f"no {SERIES_KEY!r} in answer (keys: {sorted(payload)})", symbol
                )
            return payload

        return interpret

    def extract(self, instrument: Instrument) -> dict:
        params = {
            "function": "TIME_SERIES_DAILY",
            "symbol": self.provider_symbol(instrument),
            "outputsize": self.outputsize,
            "apikey": self.api_key,
        }
        return self.http.get_json(
            f"{self.base_url}/query", params, instrument.symbol, self.interpret(instrument.symbol)
        )

    def transform(
        self,
        payload: dict,
        instrument: Instrument,
        start: dt.date,
        end: dt.date,
        ingested_at: pd.Timestamp,
    ) -> pd.DataFrame:
        series = payload[SERIES_KEY]
        try:
            rows = [
                (
                    day,
                    float(v["1. open"]),
                    float(v["2. high"]),
                    float(v["3. low"]),
                    float(v["4. close"]),
                    int(float(v["5. volume"])),
                )
                for day, v in series.items()
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedPayload(
                SOURCE, f"unreadable daily row: {exc!r}", instrument.symbol
            ) from None
        frame = pd.DataFrame(rows, columns=["date", "open", "high", "low", "close", "volume"])
        frame["date"] = pd.to_datetime(frame["date"], format="%Y-%m-%d")
        return canonical_bars(frame, instrument.symbol, SOURCE, ingested_at, start, end)

    def fetch_symbol(
        self, instrument: Instrument, start: dt.date, end: dt.date, ingested_at: pd.Timestamp
    ) -> SymbolAnswer:
        payload = self.extract(instrument)
        bars = self.transform(payload, instrument, start, end, ingested_at)
        return SymbolAnswer(bars, stamp=last_refreshed(payload, instrument.symbol))


def last_refreshed(payload: dict, symbol: str) -> pd.Timestamp | None:
    """The instant ``Meta Data`` says the series was refreshed, when it gives a time of day.

    During a session Alpha Vantage's daily series says ``2020-05-08 14:07:03`` (in its
    ``Time Zone``, US/Eastern): the last bar is the session so far, whenever the answer arrives.
    After the close it gives the date alone, which says nothing the wall clock does not.
    """
    meta = payload.get("Meta Data")
    if not isinstance(meta, dict):
        return None
    refreshed = next((v for k, v in meta.items() if k.endswith("Last Refreshed")), None)
    zone = next((v for k, v in meta.items() if k.endswith("Time Zone")), "US/Eastern")
    if not isinstance(refreshed, str) or len(refreshed.strip()) <= 10:
        return None
    try:
        stamp = pd.Timestamp(refreshed.strip())
        return (stamp.tz_localize(str(zone)) if stamp.tzinfo is None else stamp).tz_convert("UTC")
    except (ValueError, TypeError) as exc:
        raise MalformedPayload(
            SOURCE, f"unreadable 'Last Refreshed' {refreshed!r} ({zone}): {exc}", symbol
        ) from None
