"""FRED: every vintage of a series in one request, series metadata, releases and their dates.

Requests, per series (measured against the sandbox in the tests):
- observations: ONE ``series/observations`` request for the whole range, with the real-time
  period spanning it (``realtime_start`` = two days before the first observation date asked,
  ``realtime_end`` = 9999-12-31) and ``output_type=1``, ``limit=100000``; more only when FRED
  says so:
  - paging: ``offset`` pages while ``count`` exceeds the rows received (100,000 rows a page);
  - FRED's cap of 2,000 vintage dates per request: FRED refuses such a request with a 400
    ("There are N vintage dates ... exceeds the maximum ... (2000)"). Only then is the range
    split: one ``series/vintagedates`` request (10,000 dates a page) and one observations
    request per chunk of at most 2,000 vintage dates, so 1 + 1 + ceil(N / 2000) requests.
    A daily series over more than about eight years of real time crosses the cap; a monthly
    one never does. Splitting only after the refusal needs no clock and no guess, and costs
    nothing for the common case (a three-year backfill is one request).
- a series FRED keeps no vintages for (not in ALFRED) is fetched with ``vintages=False``:
  today's values only, one request; its knowledge comes from a publication lag instead.
- ``series`` (metadata), ``series/release`` (a series' release): one request each;
  ``release/dates``: one per release (10,000 dates a page), with
  ``include_release_dates_with_no_data=true`` so scheduled future dates come back.

``vintage_date`` (singular) is not a FRED parameter: FRED answers 200 and silently serves
today's revised values. Every request goes through `request_params`, which only lets through
the parameters each endpoint documents, so it cannot be sent.

The API key travels in the query string: the `HttpClient` must be built with
``secrets=[api_key]`` (checked here), and FRED's own ``error_message`` text goes through the
same redaction, because providers echo keys back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from ingest_platform.core.http import HttpClient, Redactor
from ingest_platform.core.http.errors import (
    AuthenticationFailed,
    MalformedPayload,
    RateLimited,
    SourceError,
    SourceUnavailable,
    UnknownSymbol,
)
from ingest_platform.economic.sources import fred_frames
from ingest_platform.economic.sources.fred_frames import SOURCE, SeriesInfo

MAX_VINTAGE_DATES = 2000
OBSERVATION_PAGE = 100_000
LIST_PAGE = 10_000
EARLIEST = "1776-07-04"
OPEN_END = fred_frames.OPEN_END
_MAX_REQUESTS = 1000  # pages or chunks for one series: a loop, not a history
#: FRED's "today" is US Central time: a run just after midnight UTC that asked for a real-time
#: period starting on its own date would be refused ("can not be after today's date"). No
#: vintage of an observation exists before the observation's date, so starting the period two
#: days earlier changes no row.
_CLOCK_MARGIN = dt.timedelta(days=2)

_COMMON = frozenset({"api_key", "file_type"})
#: The parameters each endpoint may be sent. ``vintage_date`` is in none of them.
ALLOWED_PARAMS: dict[str, frozenset[str]] = {
    "series/observations": _COMMON
    | {
        "series_id",
        "realtime_start",
        "realtime_end",
        "observation_start",
        "observation_end",
        "output_type",
        "limit",
        "offset",
        "sort_order",
    },
    "series": _COMMON | {"series_id", "realtime_start", "realtime_end"},
    "series/vintagedates": _COMMON
    | {"series_id", "realtime_start", "realtime_end", "limit", "offset", "sort_order"},
    "series/release": _COMMON | {"series_id", "realtime_start", "realtime_end"},
    "release/dates": _COMMON
    | {
        "release_id",
        "realtime_start",
        "realtime_end",
        "include_release_dates_with_no_data",
        "limit",
        "offset",
        "sort_order",
    },
}
_CAP = re.compile(r"maximum number of vintage dates allowed \((\d+)\)", re.IGNORECASE)


class TooManyVintages(SourceError):
    """FRED refused a real-time period holding more vintage dates than its cap."""

    def __init__(self, message: str, symbol: str | None, cap: int | None) -> None:
        super().__init__(SOURCE, message, symbol)
        self.cap = cap


class NoVintages(UnknownSymbol):
    """FRED keeps no vintages of the series (not in ALFRED): fetch it with ``vintages=False``."""


def request_params(endpoint: str, params: Mapping[str, Any]) -> dict[str, str]:
    """The query for `endpoint`, refusing any parameter FRED does not document for it.

    This is the guard that makes the singular ``vintage_date`` impossible to send: FRED would
    answer 200 and serve revised values as if they had been known back then.
    """
    allowed = ALLOWED_PARAMS.get(endpoint)
    if allowed is None:
        raise ValueError(f"unknown FRED endpoint {endpoint!r}")
    unknown = sorted(set(params) - allowed)
    if unknown:
        hint = " (FRED ignores 'vintage_date' and serves revised values)" * (
            "vintage_date" in unknown
        )
        raise ValueError(f"FRED {endpoint} does not take {unknown}{hint}")
    return {k: str(v) for k, v in params.items() if v is not None}


def _day(value: dt.date | str | None) -> str | None:
    return value.isoformat() if isinstance(value, dt.date) else value


class FredSource:
    """FRED over the shared HTTP layer: `observations`, `series_info`, `release`,
    `release_dates`, `vintage_dates`; each returns canonical frames or values, or raises a
    typed error naming the series."""

    name = SOURCE

    def __init__(
        self,
        http: HttpClient,
        api_key: str,
        base_url: str = "https://api.stlouisfed.org/fred",
        max_vintage_dates: int = MAX_VINTAGE_DATES,
        page_size: int = OBSERVATION_PAGE,
    ) -> None:
        if not api_key:
            raise AuthenticationFailed(SOURCE, "no API key configured (FRED_API_KEY)")
        if api_key in http.redact(api_key):
            raise ValueError("build the FRED HttpClient with secrets=[api_key], so it is redacted")
        if max_vintage_dates < 1 or page_size < 1:
            raise ValueError("max_vintage_dates and page_size must be >= 1")
        self.http = http
        self.api_key = api_key
        self.base_url = base_url.rstrip("/")
        self.max_vintage_dates = max_vintage_dates
        self.page_size = page_size
        self._redact = Redactor([api_key])

    # ---- the one way a request is made -------------------------------------------------------

    def interpret(self, symbol: str | None):
        """FRED's answer to data, or its error body to a typed error (key text redacted)."""

        def interpret(status: int, payload: Any) -> dict:
            if not isinstance(payload, dict):
                raise MalformedPayload(
                    SOURCE, f"expected a JSON object, got {type(payload).__name__}", symbol
                )
            if status < 400 and "error_code" not in payload:
                return payload
            code = int(payload.get("error_code") or status)
            message = self._redact(str(payload.get("error_message") or f"HTTP {status}"))
            lowered = message.lower()
            if "api_key" in lowered or "api key" in lowered:
                raise AuthenticationFailed(SOURCE, message, symbol)
            if "alfred" in lowered:
                raise NoVintages(SOURCE, message, symbol)
            if "does not exist" in lowered:
                raise UnknownSymbol(SOURCE, message, symbol)
            if "vintage dates" in lowered and "maximum" in lowered:
                cap = _CAP.search(message)
                raise TooManyVintages(message, symbol, int(cap.group(1)) if cap else None)
            if code == 429:
                raise RateLimited(SOURCE, message, symbol)
            if code >= 500:
                raise SourceUnavailable(SOURCE, f"HTTP {code}: {message}", symbol)
            raise SourceError(SOURCE, f"HTTP {code}: {message}", symbol)

        return interpret

    def _get(self, endpoint: str, params: Mapping[str, Any], symbol: str | None) -> dict:
        query = request_params(endpoint, {**params, "api_key": self.api_key, "file_type": "json"})
        return self.http.get_json(
            f"{self.base_url}/{endpoint}", query, symbol, self.interpret(symbol)
        )

    def _pages(
        self, endpoint: str, params: Mapping[str, Any], key: str, limit: int, symbol: str
    ) -> list[Any]:
        """Every item under `key`, following ``offset`` while ``count`` says more remain."""
        items: list[Any] = []
        for _ in range(_MAX_REQUESTS):
            page = self._get(endpoint, {**params, "limit": limit, "offset": len(items)}, symbol)
            chunk = page.get(key)
            if not isinstance(chunk, list):
                raise MalformedPayload(SOURCE, f"no {key!r} list in the answer", symbol)
            items.extend(chunk)
            try:
                count = int(page.get("count", len(items)))
            except (TypeError, ValueError):
                raise MalformedPayload(SOURCE, "unreadable 'count'", symbol) from None
            if len(items) >= count:
                return items
            if not chunk:
                raise MalformedPayload(
                    SOURCE, f"{endpoint} stopped at {len(items)} of {count} items", symbol
                )
        raise MalformedPayload(SOURCE, f"more than {_MAX_REQUESTS} pages of {endpoint}", symbol)

    # ---- observations ------------------------------------------------------------------------

    def extract_observations(
        self,
        series_id: str,
        start: dt.date | None,
        end: dt.date | None,
        vintages: bool = True,
        realtime_start: dt.date | None = None,
    ) -> list[dict]:
        """The raw observation rows of [start, end]: every vintage (by real-time period) from
        `realtime_start` (default: two days before `start`, see `_CLOCK_MARGIN`) on, or only
        today's values with ``vintages=False``."""
        params: dict[str, Any] = {
            "series_id": series_id,
            "observation_start": _day(start),
            "observation_end": _day(end),
            "output_type": 1,
            "sort_order": "asc",
        }
        if not vintages:
            return self._pages(
                "series/observations", params, "observations", self.page_size, series_id
            )
        if realtime_start is None and start is not None:
            realtime_start = start - _CLOCK_MARGIN
        period = (_day(realtime_start) or EARLIEST, OPEN_END)
        try:
            return self._chunk(series_id, params, period)
        except TooManyVintages as refused:
            cap = min(self.max_vintage_dates, refused.cap or self.max_vintage_dates)
            dates = self.vintage_dates(series_id, *period)
            rows: list[dict] = []
            for chunk in split_realtime(period, dates, cap):
                rows.extend(self._chunk(series_id, params, chunk))
            return rows

    def _chunk(self, series_id: str, params: dict[str, Any], period: tuple[str, str]) -> list[dict]:
        realtime = {"realtime_start": period[0], "realtime_end": period[1]}
        return self._pages(
            "series/observations", {**params, **realtime}, "observations", self.page_size, series_id
        )

    def observations(
        self,
        series_id: str,
        start: dt.date | None = None,
        end: dt.date | None = None,
        vintages: bool = True,
        realtime_start: dt.date | None = None,
    ) -> pd.DataFrame:
        """Canonical observations of [start, end] (see `fred_frames.observations_frame`)."""
        rows = self.extract_observations(series_id, start, end, vintages, realtime_start)
        return fred_frames.observations_frame(rows, series_id)

    def vintage_dates(
        self, series_id: str, realtime_start: str = EARLIEST, realtime_end: str = OPEN_END
    ) -> list[dt.date]:
        """The days on which values of the series were published or revised, ascending."""
        params = {
            "series_id": series_id,
            "realtime_start": realtime_start,
            "realtime_end": realtime_end,
            "sort_order": "asc",
        }
        raw = self._pages("series/vintagedates", params, "vintage_dates", LIST_PAGE, series_id)
        try:
            return sorted({dt.date.fromisoformat(d) for d in raw})
        except (TypeError, ValueError) as exc:
            raise MalformedPayload(SOURCE, f"unreadable vintage date: {exc}", series_id) from None

    # ---- metadata and releases ---------------------------------------------------------------

    def series_info(self, series_id: str) -> SeriesInfo:
        payload = self._get("series", {"series_id": series_id}, series_id)
        return fred_frames.series_info(payload, series_id)

    def release(self, series_id: str) -> tuple[int, str]:
        """(release id, release name) of the series."""
        payload = self._get("series/release", {"series_id": series_id}, series_id)
        return fred_frames.release_of(payload, series_id)

    def release_dates(
        self, release_id: int, realtime_start: str = EARLIEST, realtime_end: str = OPEN_END
    ) -> list[dt.date]:
        """Every date of the release in the real-time period, scheduled future dates included."""
        params = {
            "release_id": release_id,
            "realtime_start": realtime_start,
            "realtime_end": realtime_end,
            "include_release_dates_with_no_data": "true",
            "sort_order": "asc",
        }
        symbol = f"release {release_id}"
        raw = self._pages("release/dates", params, "release_dates", LIST_PAGE, symbol)
        try:
            return sorted({dt.date.fromisoformat(r["date"]) for r in raw})
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedPayload(SOURCE, f"unreadable release date: {exc!r}", symbol) from None

    def release_calendar(
        self, series_ids: Iterable[str], start: dt.date, today: dt.date
    ) -> pd.DataFrame:
        """The release calendar of `series_ids` from `start` (see
        `fred_frames.release_calendar`): one ``series/release`` request per series, one
        ``release/dates`` request per distinct release; dates after `today` are scheduled."""
        releases = {series_id: self.release(series_id) for series_id in series_ids}
        dates = {
            release_id: self.release_dates(release_id, start.isoformat())
            for release_id in sorted({r for r, _ in releases.values()})
        }
        return fred_frames.release_calendar(releases, dates, today)


def split_realtime(
    period: tuple[str, str], vintage_dates: list[dt.date], cap: int
) -> list[tuple[str, str]]:
    """Contiguous real-time chunks covering `period`, each holding at most `cap` vintage dates.

    Chunk k starts at vintage date k * cap (the first at the period's start) and ends the day
    before the next chunk starts (the last at the period's end), so no day is asked twice and
    none is skipped.
    """
    lo, hi = period
    inside = [d for d in vintage_dates if lo <= d.isoformat() <= hi]
    starts = [lo] + [inside[i].isoformat() for i in range(cap, len(inside), cap)]
    ends = [(dt.date.fromisoformat(s) - dt.timedelta(days=1)).isoformat() for s in starts[1:]]
    return list(zip(starts, [*ends, hi], strict=True))
