"""Alpha Vantage ``query?function=TIME_SERIES_DAILY``: raw daily bars, newest first, as strings.

As Alpha Vantage does, every answer is HTTP 200 and the body says what happened: ``"Meta Data"``
plus ``"Time Series (Daily)"`` on success, ``"Error Message"`` for a bad call (unknown symbol,
FX, missing key), ``"Note"`` for the classic per-minute throttle and ``"Information"`` for the
daily limit. ``compact`` is the latest 100 sessions, ``full`` everything since the genesis.
``datatype=csv`` is served too. Printed with a 4-space indent like the real API.

``duplicate_rows`` writes every date key twice in the JSON text: legal JSON syntax that most
parsers (Python's included) collapse to the last occurrence, which is the closest a JSON object
can come to a duplicated row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ingest_platform.sandbox.data import SymbolSeries
from ingest_platform.sandbox.providers import (
    Provider,
    Request,
    Response,
    Route,
    Shape,
    json_response,
    text_response,
)

NOTE = (
    "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute "
    "and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like "
    "to target a higher API call frequency."
)
#: The three notices Alpha Vantage sends under "Information", worded as the real service does.
INFORMATION = {
    "daily": (
        "We have detected your API key as {key} and our standard API rate limit is 25 "
        "requests per day. Please subscribe to any of the premium plans at "
        "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."
    ),
    "burst": (
        "Thank you for using Alpha Vantage! Please consider spreading out your free API "
        "requests more sparingly (1 request per second). You may subscribe to any of the "
        "premium plans at https://www.alphavantage.co/premium/ to lift the free key rate limit "
        "(25 requests per day) and instantly access all premium endpoints"
    ),
    "premium": (
        "Thank you for using Alpha Vantage! The **outputsize=full** parameter value is a "
        "premium feature for the TIME_SERIES_DAILY endpoint. You may subscribe to any of the "
        "premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium "
        "features"
    ),
}
INVALID_CALL = (
    "Invalid API call. Please retry or visit the documentation "
    "(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."
)
MISSING_KEY = (
    "the parameter apikey is invalid or missing. Please claim your free API key on "
    "(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
)
COMPACT_SESSIONS = 100


def _error(message: str) -> Response:
    return json_response({"Error Message": message}, indent=4)


class AlphaVantageProvider(Provider):
    name = "alpha_vantage"
    root = "/alphavantage"

    def classify(self, request: Request) -> Route:
        if (
            request.path.rstrip("/") == "/query"
            and request.param("function") == "TIME_SERIES_DAILY"
        ):
            return Route("alpha_vantage.daily", request.param("symbol"))
        return Route("alpha_vantage.other", request.param("symbol"))

    def rate_limited(self, request: Request) -> Response:
        response = json_response({"Note": NOTE}, 429, indent=4)
        return response

    def server_error(self, request: Request, status: int) -> Response:
        return text_response(
            "<html><body><h1>Service Unavailable</h1></body></html>", status, "text/html"
        )

    def throttled(
        self, request: Request, kind: str, params: Mapping[str, Any] | None = None
    ) -> Response | None:
        if kind == "throttle_note":
            return json_response({"Note": NOTE}, indent=4)
        variant = str((params or {}).get("variant", "daily"))
        text = INFORMATION.get(variant, INFORMATION["daily"])
        return json_response({"Information": text.format(key=request.param("apikey"))}, indent=4)

    def echo_key(
        self, request: Request, params: Mapping[str, Any] | None = None
    ) -> Response | None:
        key = request.param("apikey")
        return _error(f"Invalid API call. The apikey {key} is not valid for this request.")

    def respond(self, request: Request, route: Route, shape: Shape) -> Response:
        key = request.param("apikey")
        if not key or self.revoked(key):
            return _error(MISSING_KEY)
        function = request.param("function") or ""
        if request.path.rstrip("/") != "/query" or function != "TIME_SERIES_DAILY":
            return _error(f"This API function ({function}) does not exist.")
        inst = self.market.resolve("alpha_vantage", request.param("symbol") or "")
        if inst is None:
            return _error(INVALID_CALL)
        series = self.market.series(inst.symbol)
        available = max(len(series) - shape.stale_sessions, 0)
        full = (request.param("outputsize") or "compact").lower() == "full"
        start = 0 if full else max(available - COMPACT_SESSIONS, 0)
        window = slice(available, available) if shape.empty else slice(start, available)
        days = self._days(series, window, shape)
        if request.param("datatype") == "csv":
            return self._csv(days, shape.duplicate_rows)
        last = str(series.dates[available - 1]) if available else ""
        if shape.refreshed_at and last:
            last = f"{last} {shape.refreshed_at}"  # AV's intraday stamp, in US/Eastern
        meta = {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": request.param("symbol"),
            "3. Last Refreshed": last,
            "4. Output Size": "Full size" if full else "Compact",
            "5. Time Zone": "US/Eastern",
        }
        body = _render(meta, days, shape.duplicate_rows)
        return Response(200, body.encode(), "application/json")

    def _days(self, series: SymbolSeries, window: slice, shape: Shape) -> list[tuple]:
        """(date, open, high, low, close, volume) newest first, numbers as AV prints them."""
        view = self.market.secondary_view("alpha_vantage", series, window, adjusted=False)
        factor = shape.drift_factor(series.dates[window])
        columns = [
            (view[k] * factor if k != "volume" and shape.drift else view[k])[::-1].tolist()
            for k in ("open", "high", "low", "close", "volume")
        ]
        dates = series.dates[window][::-1].astype(str).tolist()
        return list(zip(dates, *columns, strict=True))

    @staticmethod
    def _csv(days: list[tuple], twice: bool) -> Response:
        lines = ["timestamp,open,high,low,close,volume"]
        for day in days:
            lines.extend(["%s,%.4f,%.4f,%.4f,%.4f,%d" % day] * (2 if twice else 1))  # noqa: UP031
        return text_response("\r\n".join(lines) + "\r\n", 200, "application/x-download")


#: One day of the indented JSON, formatted in a single step (full history is ~2,800 days).
_DAY = (
    '        "%s": {\n'
    '            "1. open": "%.4f",\n'
    '            "2. high": "%.4f",\n'
    '            "3. low": "%.4f",\n'
    '            "4. close": "%.4f",\n'
    '            "5. volume": "%d"\n'
    "        }"
)


def _render(meta: dict[str, str | None], days: list[tuple], twice: bool) -> str:
    """AV's indented JSON, written by hand so a date key can appear twice."""
    meta_lines = ",\n".join(f"        {json.dumps(k)}: {json.dumps(v)}" for k, v in meta.items())
    entries = [_DAY % day for day in days]
    if twice:
        entries = [e for e in entries for _ in (0, 1)]
    series = "{\n" + ",\n".join(entries) + "\n    }" if entries else "{}"
    return (
        f'{{\n    "Meta Data": {{\n{meta_lines}\n    }},\n    "Time Series (Daily)": {series}\n}}'
    )
