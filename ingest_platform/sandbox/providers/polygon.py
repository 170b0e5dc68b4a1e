"""Polygon ``/v2/aggs/ticker/{T}/range/1/day/{from}/{to}``: daily aggregates with pagination.

``t`` is the session date's midnight in New York, in epoch milliseconds. ``adjusted=true`` (the
default) is split-adjusted, ``false`` raw. A page holds at most ``min(limit, polygon_page_size)``
results; when more remain, ``next_url`` is an absolute URL on this sandbox's Polygon root that
carries a ``cursor`` but no API key, exactly like Polygon, so clients must re-append theirs.

Indices are served as ``I:SPX`` and friends, without volume, VWAP or trade count, as Polygon's
index aggregates are; CME futures are not served (Polygon has no aggregates for them).

An unknown ticker is *not* an error on Polygon: it answers 200 with ``resultsCount: 0`` and
``status: "OK"``; the sandbox does the same. ``request_id`` is a hash of the request (without
the key), so equal requests give equal bodies.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ingest_platform.sandbox.providers import (
    Provider,
    Request,
    Response,
    Route,
    Shape,
    json_bytes,
    json_response,
    request_id,
)

_PATH = re.compile(r"/v2/aggs/ticker/([^/]+)/range/([^/]+)/([^/]+)/([^/]+)/([^/]+)")
DEFAULT_LIMIT = 5_000
MAX_LIMIT = 50_000
RATE_LIMIT_MESSAGE = (
    "You've exceeded the maximum requests per minute, please wait or upgrade your subscription "
    "to continue. https://polygon.io/pricing"
)


def _error(request: Request, status: int, message: str, state: str = "ERROR") -> Response:
    return json_response(
        {"status": state, "request_id": request_id(request), "error": message}, status
    )


def _millis(raw: str) -> int:
    """A from/to bound in epoch ms: digits are ms already, a date is its New York midnight."""
    if raw.isdigit():
        return int(raw)
    return pd.Timestamp(raw).tz_localize("America/New_York").value // 10**6


def encode_cursor(options: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(options, sort_keys=True).encode()).decode()


def _decode_cursor(cursor: str) -> dict:
    try:
        options = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(options, dict):
        raise ValueError("invalid cursor")
    return options


class PolygonProvider(Provider):
    name = "polygon"
    root = "/polygon"

    def classify(self, request: Request) -> Route:
        match = _PATH.fullmatch(request.path.rstrip("/"))
        if match is None:
            return Route("polygon.other")
        return Route("polygon.aggs", match.group(1))

    def rate_limited(self, request: Request) -> Response:
        return _error(request, 429, RATE_LIMIT_MESSAGE)

    def server_error(self, request: Request, status: int) -> Response:
        return _error(request, status, "Internal server error, please try again.")

    def echo_key(
        self, request: Request, params: Mapping[str, Any] | None = None
    ) -> Response | None:
        key = self._api_key(request)
        if (params or {}).get("where") == "rows":
            row = {"t": 1720497600000, "o": key, "h": 1.0, "l": 1.0, "c": 1.0, "v": 1}
            return json_response(
                {"status": "OK", "request_id": request_id(request), "results": [row]}
            )
        return _error(request, 401, f"Unknown API Key '{key}'")

    def _api_key(self, request: Request) -> str | None:
        key = request.param("apiKey")
        auth = request.header("Authorization") or ""
        if not key and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        return key or None

    def respond(self, request: Request, route: Route, shape: Shape) -> Response:
        match = _PATH.fullmatch(request.path.rstrip("/"))
        if match is None:
            return _error(request, 404, "Not found", "NOT_FOUND")
        key = self._api_key(request)
        if key is None:
            return _error(request, 401, "API Key was not provided")
        if self.revoked(key):
            return _error(request, 401, "Unknown API Key")
        ticker, multiplier, timespan, raw_from, raw_to = match.groups()
        if multiplier != "1" or timespan != "day":
            return _error(request, 400, "The sandbox simulates 1/day aggregates only.")
        cursor = request.param("cursor")
        try:
            options = _decode_cursor(cursor) if cursor else {}
        except ValueError:
            return _error(request, 400, "Invalid cursor.")
        adjusted = (
            str(options.get("adjusted", request.param("adjusted", "true"))).lower() != "false"
        )
        sort = str(options.get("sort", request.param("sort", "asc")))
        try:
            limit = int(options.get("limit", request.param("limit", str(DEFAULT_LIMIT))))
        except ValueError:
            return _error(request, 400, "Could not parse the limit parameter.")
        if sort not in ("asc", "desc") or not 1 <= limit <= MAX_LIMIT:
            return _error(request, 400, "sort must be asc or desc, limit between 1 and 50000.")
        try:
            lo_ms, hi_ms = _millis(raw_from), _millis(raw_to)
        except ValueError:
            return _error(
                request, 400, "Could not parse the time parameter: use YYYY-MM-DD or Unix MS."
            )
        body = {
            "ticker": ticker,
            "queryCount": 0,
            "resultsCount": 0,
            "adjusted": adjusted,
        }
        inst = self.market.resolve("polygon", ticker)
        if inst is None or shape.empty:
            body.update(status="OK", request_id=request_id(request), count=0)
            return json_response(body)

        series = self.market.series(inst.symbol)
        available = max(len(series) - shape.stale_sessions, 0)
        stamps = series.calendar.polygon_ms[:available]
        lo = int(np.searchsorted(stamps, lo_ms, "left"))
        hi = max(lo, int(np.searchsorted(stamps, hi_ms, "right")))
        size = min(limit, self.market.polygon_page_size)
        order = range(lo, hi) if sort == "asc" else range(hi - 1, lo - 1, -1)
        page, rest = order[:size], order[size:]
        results = self._results(series, lo, hi, page, adjusted, shape)
        body.update(queryCount=len(results), resultsCount=len(results))
        tail = {"status": "OK", "request_id": request_id(request), "count": len(results)}
        if len(rest):
            cursor = encode_cursor({"adjusted": adjusted, "limit": limit, "sort": sort})
            nxt = int(stamps[rest[0]])
            bounds = f"{nxt}/{raw_to}" if sort == "asc" else f"{raw_from}/{nxt}"
            tail["next_url"] = (
                f"{request.server_url}{self.root}/v2/aggs/ticker/{ticker}/range/1/day/"
                f"{bounds}?cursor={cursor}"
            )
        return Response(200, _splice(body, results, tail), "application/json")

    def _results(
        self, series, lo: int, hi: int, page: range, adjusted: bool, shape: Shape
    ) -> list[str]:
        """Each result row as compact JSON text, in Polygon's key order."""
        if not len(page):
            return []
        twice = shape.duplicate_rows
        view = self.market.secondary_view("polygon", series, slice(lo, hi), adjusted=adjusted)
        if shape.drift is not None:
            factor = shape.drift_factor(series.dates[lo:hi])
            view = {
                k: (v * factor if k in ("open", "close", "high", "low", "vwap") else v)
                for k, v in view.items()
            }
        picks = np.asarray(page) - lo
        if series.instrument.asset_class == "index":
            # Index aggregates carry no volume, VWAP or trade count on Polygon.
            index_rows = zip(
                *(view[k][picks].tolist() for k in ("open", "close", "high", "low")),
                series.calendar.polygon_ms[lo:hi][picks].tolist(),
                strict=True,
            )
            out = [_INDEX_ROW % row for row in index_rows]
            return [r for r in out for _ in (0, 1)] if twice else out
        rows = zip(
            *(view[k][picks].tolist() for k in ("volume", "vwap", "open", "close", "high", "low")),
            series.calendar.polygon_ms[lo:hi][picks].tolist(),
            view["transactions"][picks].tolist(),
            strict=True,
        )
        out = [_ROW % row for row in rows]
        return [r for r in out for _ in (0, 1)] if twice else out


#: One result row; ``%r`` of a float is exactly what ``json.dumps`` writes for it.
_ROW = '{"v":%d,"vw":%r,"o":%r,"c":%r,"h":%r,"l":%r,"t":%d,"n":%d}'
_INDEX_ROW = '{"o":%r,"c":%r,"h":%r,"l":%r,"t":%d}'


def _splice(head: dict, results: list[str], tail: dict) -> bytes:
    """``{**head, "results": [...], **tail}`` as compact JSON, rows pre-rendered; no
    ``results`` key when there are none (as Polygon omits it)."""
    middle = ',"results":[' + ",".join(results) + "]," if results else ","
    return (json_bytes(head)[:-1].decode() + middle + json_bytes(tail)[1:].decode()).encode()
