"""Yahoo Finance as yfinance calls it: cookie and crumb handshake, v8 chart, quote look-ups.

The routed session (`ingest_platform.market.sources.yahoo_session`) maps ``fc.yahoo.com`` to
``/fc``, ``guce.yahoo.com`` to ``/guce``, ``consent.yahoo.com`` to ``/consent`` and both query
hosts to the root, so the paths here are the real ones.

Cross-instance behaviour: yfinance keeps one process-wide `YfData` whose cookie and crumb
outlive a sandbox, so getcrumb accepts any ``A3`` cookie and the chart ignores the crumb (as
Yahoo's chart API does). The cookie and crumb are derived from the seed, never the clock.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ingest_platform.sandbox.data import Instrument, SymbolSeries, stable_hash
from ingest_platform.sandbox.providers import (
    Provider,
    Request,
    Response,
    Route,
    Shape,
    json_response,
    text_response,
)

VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]
#: A fixed expiry (not "now + 1 year"): before 2033-05-18, so yfinance's persistent cookie cache
#: reads it as seconds, as it does Yahoo's real one-year cookies.
COOKIE_EXPIRES = "Wed, 31 Dec 2031 23:59:59 GMT"
_RANGE_OFFSETS = {
    "1mo": pd.DateOffset(months=1),
    "3mo": pd.DateOffset(months=3),
    "6mo": pd.DateOffset(months=6),
    "1y": pd.DateOffset(years=1),
    "2y": pd.DateOffset(years=2),
    "5y": pd.DateOffset(years=5),
    "10y": pd.DateOffset(years=10),
}
_CHART = re.compile(r"/v8/finance/chart/([^/]+)")
_QUOTE_SUMMARY = re.compile(r"/v10/finance/quoteSummary/([^/]+)")
_NOT_FOUND = {"code": "Not Found", "description": "No data found, symbol may be delisted"}
#: Yahoo's instrumentType / quoteType per asset class.
QUOTE_TYPES = {
    "equity": "EQUITY",
    "etf": "ETF",
    "fx": "CURRENCY",
    "index": "INDEX",
    "commodity": "FUTURE",
}
#: Yahoo's exchange code and name for the indices and futures the universe lists.
_EXCHANGES = {
    "^GSPC": ("SNP", "SNP"),
    "^DJI": ("DJI", "DJI"),
    "^NDX": ("NIM", "Nasdaq GIDS"),
    "^RUT": ("WCB", "Cboe Indices"),
    "^VIX": ("CXI", "Cboe Indices"),
    "CL=F": ("NYM", "NY Mercantile"),
    "NG=F": ("NYM", "NY Mercantile"),
    "GC=F": ("CMX", "COMEX"),
    "SI=F": ("CMX", "COMEX"),
    "HG=F": ("CMX", "COMEX"),
}


def _token(seed: int, purpose: str, length: int) -> str:
    digest = hashlib.sha256(f"yahoo|{purpose}|{seed}".encode()).digest()
    return base64.b64encode(digest).decode().replace("+", ".").replace("/", "_")[:length]


def _chart_error(code: str, description: str, status: int) -> Response:
    error = {"code": code, "description": description}
    return json_response({"chart": {"result": None, "error": error}}, status)


def _finance_error(code: str, description: str, status: int) -> Response:
    error = {"code": code, "description": description}
    return json_response({"finance": {"result": None, "error": error}}, status)


class YahooProvider(Provider):
    name = "yahoo"
    root = "/yahoo"

    @property
    def cookie_value(self) -> str:
        seed = self.market.seed
        return f"d=AQABBA{_token(seed, 'd', 40)}&S=AQAAA{_token(seed, 's', 22)}"

    @property
    def crumb(self) -> str:
        return _token(self.market.seed, "crumb", 11)

    def _set_cookie(self) -> tuple[str, str]:
        return (
            "Set-Cookie",
            f"A3={self.cookie_value}; Expires={COOKIE_EXPIRES}; Max-Age=31557600; "
            "Domain=.yahoo.com; Path=/; Secure; HttpOnly; SameSite=None",
        )

    # -- routing -------------------------------------------------------------------------------

    def classify(self, request: Request) -> Route:
        path = request.path
        if path == "/fc" or path.startswith("/fc/"):
            return Route("yahoo.cookie")
        if path == "/v1/test/getcrumb":
            return Route("yahoo.crumb")
        if path.startswith(("/guce/", "/consent/")):
            return Route("yahoo.consent")
        if match := _CHART.fullmatch(path):
            return Route("yahoo.chart", match.group(1))
        if match := _QUOTE_SUMMARY.fullmatch(path):
            return Route("yahoo.quote", match.group(1))
        if path == "/v7/finance/quote":
            return Route("yahoo.quote", request.param("symbols"))
        return Route("yahoo.other")

    def respond(self, request: Request, route: Route, shape: Shape) -> Response:
        if route.endpoint == "yahoo.chart":
            return self._chart(request, route.symbol or "", shape)
        if route.endpoint == "yahoo.cookie":
            # fc.yahoo.com answers 404, but sets the A3 cookie on the way.
            response = text_response("Not Found", 404)
            response.headers.append(self._set_cookie())
            return response
        if route.endpoint == "yahoo.crumb":
            if "A3=" not in (request.header("Cookie") or ""):
                return _finance_error("Unauthorized", "Invalid Cookie", 401)
            return text_response("" if shape.empty else self.crumb)
        if route.endpoint == "yahoo.consent":
            return self._consent(request)
        if route.endpoint == "yahoo.quote":
            return self._quote(request, route.symbol or "")
        return _finance_error("Not Found", "HTTP 404 Not Found", 404)

    def rate_limited(self, request: Request) -> Response:
        return text_response("Edge: Too Many Requests", 429)

    def echo_key(
        self, request: Request, params: Mapping[str, Any] | None = None
    ) -> Response | None:
        crumb = request.param("crumb")
        return _chart_error("Unauthorized", f"Invalid Crumb: crumb={crumb} is not valid", 401)

    def server_error(self, request: Request, status: int) -> Response:
        return _finance_error("Internal Server Error", "Service temporarily unavailable", status)

    # -- consent (yfinance's csrf fallback) ----------------------------------------------------

    def _consent(self, request: Request) -> Response:
        session_id = _token(self.market.seed, "session", 16)
        if request.path == "/guce/consent":
            csrf = _token(self.market.seed, "csrf", 22)
            page = (
                "<!DOCTYPE html><html><head><title>Yahoo is part of the Yahoo family of brands"
                '</title></head><body><form method="post" action="https://consent.yahoo.com/'
                f'v2/collectConsent?sessionId={session_id}">'
                f'<input type="hidden" name="csrfToken" value="{csrf}">'
                f'<input type="hidden" name="sessionId" value="{session_id}">'
                '<input type="hidden" name="namespace" value="yahoo">'
                '<button type="submit" name="agree" value="agree">Accept all</button>'
                "</form></body></html>"
            )
            return text_response(page, 200, "text/html; charset=utf-8")
        response = text_response("OK", 200)
        if request.path == "/guce/copyConsent":
            response.headers.append(self._set_cookie())
        return response

    # -- chart ---------------------------------------------------------------------------------

    def _chart(self, request: Request, symbol: str, shape: Shape) -> Response:
        inst = self.market.resolve("yahoo", symbol)
        if inst is None or inst.delisted == "not_found":
            return json_response({"chart": {"result": None, "error": _NOT_FOUND}}, 404)
        if inst.delisted == "empty":
            return json_response({"chart": {"result": [_empty_chart(inst)], "error": None}})
        interval = request.param("interval", "1d")
        if interval != "1d":
            return _chart_error(
                "Bad Request",
                f"Invalid input - interval={interval} is not simulated (the sandbox serves 1d)",
                400,
            )
        series = self.market.series(inst.symbol)
        available = max(len(series) - shape.stale_sessions, 0)
        window, range_label, error = _chart_window(request, series, available)
        if error is not None:
            return _chart_error("Bad Request", error, 400)
        if shape.empty:
            window = slice(window.start, window.start)
        result: dict = {"meta": self._meta(inst, series, window, available, range_label, shape)}
        if window.stop > window.start:
            result.update(self._bars(request, series, window, shape))
        else:
            result["indicators"] = {"quote": [{}], "adjclose": [{}]}
        return json_response({"chart": {"result": [result], "error": None}})

    def _bars(self, request: Request, series: SymbolSeries, window: slice, shape: Shape) -> dict:
        view = self.market.yahoo_view(series, window)
        if shape.unadjusted and series.split_factor is not None:
            factor = series.split_factor[window]
            view = {
                k: (v * factor if k != "volume" else np.round(v / factor).astype(np.int64))
                for k, v in view.items()
            }
        stamps = series.calendar.yahoo_ts[window]
        keep = np.ones(len(stamps), dtype=bool)
        if shape.missing_days is not None:
            days = series.dates[window]
            start, end = (np.datetime64(d, "D") for d in shape.missing_days)
            keep = (days < start) | (days > end)

        def listed(values: np.ndarray) -> list:
            values = np.asarray(values)[keep]
            return (np.repeat(values, 2) if shape.duplicate_rows else values).tolist()

        out: dict = {"timestamp": listed(stamps)}
        requested = request.param("events") or ""
        if shape.unadjusted:
            requested = requested.replace("split", "")
        events = _events(requested, series, window)
        if events:
            out["events"] = events
        quote = {k: listed(view[k]) for k in ("open", "high", "low", "close", "volume")}
        out["indicators"] = {"quote": [quote], "adjclose": [{"adjclose": listed(view["adjclose"])}]}
        return out

    def _meta(
        self,
        inst: Instrument,
        series: SymbolSeries,
        window: slice,
        available: int,
        label: str,
        shape: Shape,
    ) -> dict:
        fx = inst.is_fx
        tz = "Europe/London" if fx else "America/New_York"
        ts = series.calendar.yahoo_ts
        last = available - 1
        last_day = series.dates[last] if last >= 0 else np.datetime64(self.market.today, "D")
        noon = pd.Timestamp(str(last_day)).replace(hour=12).tz_localize(tz)
        offset = int(noon.utcoffset().total_seconds())
        abbreviation = noon.tzname()
        midnight = int(pd.Timestamp(str(last_day)).tz_localize(tz).timestamp())

        def period(start_hours: float, end_hours: float) -> dict:
            return {
                "timezone": abbreviation,
                "start": midnight + int(start_hours * 3600),
                "end": midnight + int(end_hours * 3600),
                "gmtoffset": offset,
            }

        if fx:
            trading = {
                "pre": period(0, 0),
                "regular": period(0, 23 + 59 / 60),
                "post": period(24, 24),
            }
        else:
            trading = {"pre": period(4, 9.5), "regular": period(9.5, 16), "post": period(16, 20)}
        exchange, full_exchange = _exchange(inst)
        meta: dict = {
            "currency": inst.currency,
            "symbol": inst.yahoo_symbol,
            "exchangeName": exchange,
            "fullExchangeName": full_exchange,
            "instrumentType": QUOTE_TYPES[inst.asset_class],
            "firstTradeDate": int(ts[0]) if len(ts) else None,
            "regularMarketTime": midnight
            + (
                refreshed
                if (refreshed := shape.refreshed_seconds()) is not None
                else (86_340 if fx else 16 * 3600)
            ),
            "hasPrePostMarketData": inst.asset_class in ("equity", "etf"),
            "gmtoffset": offset,
            "timezone": abbreviation,
            "exchangeTimezoneName": tz,
        }
        if last >= 0:
            tail = self.market.yahoo_view(series, slice(max(available - 252, 0), available))
            meta.update(
                regularMarketPrice=float(tail["close"][-1]),
                fiftyTwoWeekHigh=float(tail["high"].max()),
                fiftyTwoWeekLow=float(tail["low"].min()),
                regularMarketDayHigh=float(tail["high"][-1]),
                regularMarketDayLow=float(tail["low"][-1]),
                regularMarketVolume=int(tail["volume"][-1]),
            )
            before = window.start - 1 if window.start > 0 else min(window.start, last)
            previous = self.market.yahoo_view(series, slice(before, before + 1))["close"]
            meta["chartPreviousClose"] = float(previous[0])
        meta.update(
            longName=inst.name,
            shortName=inst.name,
            priceHint=4 if fx else 2,
            currentTradingPeriod=trading,
            dataGranularity="1d",
            range=label,
            validRanges=VALID_RANGES,
        )
        return meta

    # -- quote look-ups (yfinance's `info`, used when a timezone is missing) -------------------

    def _quote(self, request: Request, symbol: str) -> Response:
        if request.path.startswith("/v10/"):
            inst = self.market.resolve("yahoo", symbol)
            if inst is None:
                error = {
                    "code": "Not Found",
                    "description": f"Quote not found for symbol: {symbol}",
                }
                return json_response({"quoteSummary": {"result": None, "error": error}}, 404)
            quote_type = {
                "exchange": _exchange(inst)[0],
                "quoteType": QUOTE_TYPES[inst.asset_class],
                "symbol": inst.yahoo_symbol,
                "shortName": inst.name,
                "longName": inst.name,
                "timeZoneFullName": "Europe/London" if inst.is_fx else "America/New_York",
            }
            result = [{"quoteType": quote_type}]
            return json_response({"quoteSummary": {"result": result, "error": None}})
        found = [self.market.resolve("yahoo", s) for s in symbol.split(",") if s]
        quotes = [
            {
                "symbol": i.yahoo_symbol,
                "quoteType": QUOTE_TYPES[i.asset_class],
                "currency": i.currency,
                "shortName": i.name,
                "longName": i.name,
                "exchange": _exchange(i)[0],
                "exchangeTimezoneName": "Europe/London" if i.is_fx else "America/New_York",
            }
            for i in found
            if i is not None
        ]
        return json_response({"quoteResponse": {"result": quotes, "error": None}})


def _empty_chart(inst: Instrument) -> dict:
    """What Yahoo answers (200) for some delisted tickers: metadata without a single bar, which
    yfinance reports as "possibly delisted; no price data found"."""
    meta = {
        "currency": inst.currency,
        "symbol": inst.yahoo_symbol,
        "exchangeName": "NYQ",
        "fullExchangeName": "NYSE",
        "instrumentType": QUOTE_TYPES[inst.asset_class],
        "firstTradeDate": None,
        "gmtoffset": -18000,
        "timezone": "EST",
        "exchangeTimezoneName": "America/New_York",
        "dataGranularity": "1d",
        "range": "",
        "validRanges": VALID_RANGES,
    }
    return {"meta": meta, "indicators": {"quote": [{}], "adjclose": [{}]}}


def _exchange(inst: Instrument) -> tuple[str, str]:
    """Yahoo's exchange code and name (the sandbox does not know listings: stable by symbol)."""
    if inst.is_fx:
        return "CCY", "CCY"
    if inst.yahoo_symbol in _EXCHANGES:
        return _EXCHANGES[inst.yahoo_symbol]
    if inst.asset_class == "etf":
        return "PCX", "NYSEArca"
    return ("NMS", "NasdaqGS") if stable_hash("listing", inst.symbol) % 2 else ("NYQ", "NYSE")


def _chart_window(
    request: Request, series: SymbolSeries, available: int
) -> tuple[slice, str, str | None]:
    """The sessions a chart request covers: (slice, Yahoo's ``range`` label, error or None).

    With period1/period2 a session is in when its local date is on or after period1's and its
    bar timestamp is before period2 (yfinance sends midnights in the exchange's timezone).
    """
    dates = series.dates[:available]
    stamps = series.calendar.yahoo_ts[:available]
    period1, period2 = request.param("period1"), request.param("period2")
    if period1 is not None or period2 is not None:
        try:
            start = (
                int(float(period1)) if period1 is not None else int(stamps[0]) if available else 0
            )
            end = int(float(period2)) if period2 is not None else 2**40
        except ValueError:
            return slice(0, 0), "", "Invalid input - period1 and period2 must be epoch seconds"
        if start > end:
            return slice(0, 0), "", "Invalid input - start date cannot be after end date"
        tz = "Europe/London" if series.instrument.is_fx else "America/New_York"
        local_start = pd.Timestamp(start, unit="s", tz="UTC").tz_convert(tz).date()
        lo = int(np.searchsorted(dates, np.datetime64(local_start, "D")))
        hi = int(np.searchsorted(stamps, end, "left"))
        return slice(lo, max(lo, hi)), "", None
    label = request.param("range") or "1mo"
    if label not in VALID_RANGES:
        return slice(0, 0), "", f"Invalid input - range={label} is not valid"
    if available == 0:
        return slice(0, 0), label, None
    if label in ("1d", "5d"):
        return slice(max(available - int(label[0]), 0), available), label, None
    if label == "max":
        return slice(0, available), label, None
    last_day = pd.Timestamp(str(dates[-1]))
    if label == "ytd":
        lo = int(np.searchsorted(dates, np.datetime64(f"{last_day.year}-01-01", "D")))
    else:
        first = (last_day - _RANGE_OFFSETS[label]).date()
        lo = int(np.searchsorted(dates, np.datetime64(first, "D"), "right"))
    return slice(lo, available), label, None


def _events(requested: str, series: SymbolSeries, window: slice) -> dict:
    """Dividends and splits inside the window, keyed by the ex-date's bar timestamp."""
    stamps = series.calendar.yahoo_ts
    events: dict = {}
    if "div" in requested:
        dividends = {
            str(int(stamps[i])): {
                "amount": amount / series.splits_factor_at(i),
                "date": int(stamps[i]),
            }
            for i, amount in series.dividends
            if window.start <= i < window.stop
        }
        if dividends:
            events["dividends"] = dividends
    if "split" in requested:
        splits = {
            str(int(stamps[i])): {
                "date": int(stamps[i]),
                "numerator": float(ratio),
                "denominator": 1.0,
                "splitRatio": f"{ratio:g}:1",
            }
            for i, ratio in series.splits
            if window.start <= i < window.stop
        }
        if splits:
            events["splits"] = splits
    return events


def expected_crumb(seed: int) -> str:
    """The crumb a sandbox with `seed` hands out (tests compare against it)."""
    return _token(seed, "crumb", 11)
