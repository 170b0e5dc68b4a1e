"""Polygon aggregates (``/v2/aggs/ticker/{T}/range/1/day/{from}/{to}``), following ``next_url``.

The key travels in an ``Authorization: Bearer`` header, never in a URL, and ``next_url`` is
only followed when it points at the configured host: a redirect elsewhere would otherwise be
handed our key. Polygon answers an unknown ticker with ``OK`` and zero results, so an empty
answer over a range with sessions is reported as an unknown symbol, not as a quiet nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from ingest_platform.core import calendars
from ingest_platform.core.http import HttpClient
from ingest_platform.core.http.errors import (
    AuthenticationFailed,
    MalformedPayload,
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

SOURCE = "polygon"
_MAX_PAGES = 100  # 100 pages of 50,000 bars: a loop, not a history
#: Polygon names an index ``I:`` plus the index's own ticker (Yahoo's ^GSPC is SPX there).
INDEX_TICKERS = {
    "^DJI": "I:DJI",
    "^GSPC": "I:SPX",
    "^NDX": "I:NDX",
    "^RUT": "I:RUT",
    "^VIX": "I:VIX",
}


class PolygonSource(BarSource):
    name = SOURCE

    def __init__(
        self,
        http: HttpClient,
        base_url: str = "https://api.polygon.io",
        adjusted: bool = True,
        page_limit: int = 50000,
        threads: int = 2,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.adjusted = adjusted
        self.page_limit = page_limit
        self.threads = threads

    @staticmethod
    def covers(instrument: Instrument) -> bool:
        """Stocks, ETFs, currencies and the indices Polygon publishes; no CME futures (they are
        not on the aggregates endpoint)."""
        if instrument.asset_class == "index":
            return instrument.symbol in INDEX_TICKERS
        return instrument.asset_class in ("equity", "etf", "fx")

    @staticmethod
    def provider_symbol(instrument: Instrument) -> str:
        if instrument.asset_class == "fx":
            return f"C:{instrument.symbol}"
        if instrument.asset_class == "index":
            return INDEX_TICKERS[instrument.symbol]
        return instrument.symbol

    # ---- stages ------------------------------------------------------------------------------

    def interpret(self, symbol: str):
        def interpret(status: int, payload: Any) -> dict:
            if not isinstance(payload, dict):
                raise MalformedPayload(
                    SOURCE, f"expected a JSON object, got {type(payload).__name__}", symbol
                )
            if status in (401, 403):
                raise AuthenticationFailed(
                    SOURCE, str(payload.get("error") or payload.get("message")), symbol
                )
            if payload.get("status") == "ERROR" or status >= 400:
                message = str(payload.get("error") or payload.get("message") or f"HTTP {status}")
                if "exceeded" in message.lower():
                    raise RateLimited(SOURCE, message, symbol)
                raise SourceError(SOURCE, message, symbol)
            if "results" in payload and not isinstance(payload["results"], list):
                raise MalformedPayload(SOURCE, "'results' is not a list", symbol)
            return payload

        return interpret

    def _follow(self, next_url: str, symbol: str) -> str:
        base, nxt = urlsplit(self.base_url), urlsplit(next_url)
        if (nxt.scheme, nxt.netloc) != (base.scheme, base.netloc):
            raise MalformedPayload(
                SOURCE,
                f"next_url points at {nxt.scheme}://{nxt.netloc}, not {self.base_url}",
                symbol,
            )
        return next_url

    def extract(self, instrument: Instrument, start: dt.date, end: dt.date) -> list[dict]:
        """Every aggregate of [start, end], across pages."""
        ticker = self.provider_symbol(instrument)
        url = f"{self.base_url}/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}"
        params: dict[str, Any] | None = {
            "adjusted": "true" if self.adjusted else "false",
            "sort": "asc",
            "limit": self.page_limit,
        }
        results: list[dict] = []
        for _ in range(_MAX_PAGES):
            page = self.http.get_json(
                url, params, instrument.symbol, self.interpret(instrument.symbol)
            )
            results.extend(page.get("results") or [])
            next_url = page.get("next_url")
            if not next_url:
                return results
            url, params = self._follow(next_url, instrument.symbol), None
        raise MalformedPayload(
            SOURCE, f"more than {_MAX_PAGES} pages of aggregates", instrument.symbol
        )

    def transform(
        self,
        results: list[dict],
        instrument: Instrument,
        start: dt.date,
        end: dt.date,
        ingested_at: pd.Timestamp,
    ) -> pd.DataFrame:
        if not results and calendars.sessions(start, end, instrument.calendar):
            raise UnknownSymbol(SOURCE, f"no aggregates for {start}..{end}", instrument.symbol)
        try:
            frame = pd.DataFrame(
                {
                    "t": [r["t"] for r in results],
                    "open": [float(r["o"]) for r in results],
                    "high": [float(r["h"]) for r in results],
                    "low": [float(r["l"]) for r in results],
                    "close": [float(r["c"]) for r in results],
                    "volume": [round(float(r.get("v") or 0)) for r in results],
                }
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedPayload(
                SOURCE, f"unreadable aggregate: {exc!r}", instrument.symbol
            ) from None
        # Daily bars start at midnight New York for stocks, midnight UTC for currencies.
        zone = "UTC" if instrument.asset_class == "fx" else "America/New_York"
        stamps = pd.to_datetime(frame.pop("t"), unit="ms", utc=True).dt.tz_convert(zone)
        frame.insert(0, "date", stamps.dt.tz_localize(None).dt.normalize())
        return canonical_bars(frame, instrument.symbol, SOURCE, ingested_at, start, end)

    def fetch_symbol(
        self, instrument: Instrument, start: dt.date, end: dt.date, ingested_at: pd.Timestamp
    ) -> SymbolAnswer:
        """No data stamp: Polygon's aggregates answer (``status``, ``queryCount``,
        ``resultsCount``, ``adjusted``, ``request_id``, bars stamped by window *start*) says
        nothing about when its data was current, so the wall clock alone settles its bars."""
        results = self.extract(instrument, start, end)
        return SymbolAnswer(self.transform(results, instrument, start, end, ingested_at))
