"""FRED (api.stlouisfed.org/fred): observations with real-time periods, series metadata, vintage
dates, a series' release and a release's dates.

Served as FRED serves them: JSON only when ``file_type=json`` (the sandbox does not speak XML, so
anything else is a 400), values as strings with ``"."`` for a missing one, and FRED's error
bodies (``{"error_code": 400, "error_message": "Bad Request.  ..."}``). The real-time period
defaults to as_of, the sandbox's "today" (``series/vintagedates``: all of history; ``release/
dates``: this year to 9999-12-31, as FRED documents).

FRED's traps are kept, because the sources must cope with them:
- an observations request whose real-time period holds more than
  `MarketSimulator.fred_max_vintage_dates` vintage dates (2,000) is refused with FRED's message;
- ``vintage_date`` (singular) is not a parameter and is silently ignored, as on FRED, so a
  client that sends it gets today's revised values;
- a series FRED keeps no vintages for (``alfred=False``) answers only for today's real-time
  period, and a 400 naming ALFRED otherwise.

``units`` other than ``lin``, ``frequency`` aggregation, ``output_type`` other than 1 and
``vintage_dates`` lists are not simulated and answer 400 saying so.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from ingest_platform.sandbox.data import (
    FRED_FAR_FUTURE,
    FRED_RELEASES,
    FRED_SERIES,
    FredRow,
    FredSeriesSpec,
)
from ingest_platform.sandbox.providers import (
    Provider,
    Request,
    Response,
    Route,
    Shape,
    json_response,
)

_KEY_DOCS = "Read https://fred.stlouisfed.org/docs/api/api_key.html for more information."
_UNITS = ("lin", "chg", "ch1", "pch", "pc1", "pca", "cch", "cca", "log")
_ENDPOINTS = {
    "/series/observations": "fred.observations",
    "/series": "fred.series",
    "/series/vintagedates": "fred.vintagedates",
    "/series/release": "fred.series_release",
    "/release/dates": "fred.release_dates",
}
_EARLIEST = dt.date(1776, 7, 4)
NOT_IN_ALFRED = "The series does not exist in ALFRED but may exist in FRED."


def fred_error(status: int, message: str) -> Response:
    return json_response({"error_code": status, "error_message": message}, status)


def _bad(message: str) -> Response:
    return fred_error(400, f"Bad Request.  {message}")


def _date_param(request: Request, name: str) -> dt.date | None:
    """A YYYY-MM-DD parameter; ValueError carries FRED's message."""
    raw = request.param(name)
    if raw in (None, ""):
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        raise ValueError(
            f'Variable {name} can not be "{raw}".  Variable {name} must be a date in '
            "YYYY-MM-DD format."
        ) from None


def _paging(request: Request, default_limit: int, max_limit: int) -> tuple[int, int, str]:
    """(limit, offset, sort_order); ValueError carries FRED's message."""
    try:
        limit = int(request.param("limit") or default_limit)
        offset = int(request.param("offset") or 0)
    except ValueError:
        raise ValueError("Variables limit and offset must be integers.") from None
    if not 1 <= limit <= max_limit or offset < 0:
        raise ValueError(f"Variable limit must be between 1 and {max_limit}, offset non-negative.")
    sort_order = request.param("sort_order") or "asc"
    if sort_order not in ("asc", "desc"):
        raise ValueError("Variable sort_order is not one of the values: asc, desc.")
    return limit, offset, sort_order


class FredProvider(Provider):
    name = "fred"
    root = "/fred"

    def classify(self, request: Request) -> Route:
        endpoint = _ENDPOINTS.get(request.path.rstrip("/"), "fred.other")
        if endpoint == "fred.release_dates":
            return Route(endpoint, request.param("release_id"))
        return Route(endpoint, request.param("series_id"))

    def rate_limited(self, request: Request) -> Response:
        return fred_error(429, "Too Many Requests.  Exceeded Rate Limit")

    def server_error(self, request: Request, status: int) -> Response:
        return fred_error(status, "Internal Server Error")

    def echo_key(
        self, request: Request, params: Mapping[str, Any] | None = None
    ) -> Response | None:
        key = request.param("api_key")
        observations = self.classify(request).endpoint == "fred.observations"
        if (params or {}).get("where") == "rows" and observations:
            row = {"date": "2024-01-01", "value": key}
            row.update(realtime_start="2024-01-01", realtime_end="9999-12-31")
            return json_response({"count": 1, "offset": 0, "limit": 100000, "observations": [row]})
        return _bad(f"The value for variable api_key ({key}) is not registered.  {_KEY_DOCS}")

    def respond(self, request: Request, route: Route, shape: Shape) -> Response:
        if route.endpoint == "fred.other":
            return fred_error(404, "Not Found.  The requested resource does not exist.")
        key = request.param("api_key")
        if not key:
            return _bad(f"Variable api_key is not set.  {_KEY_DOCS}")
        if self.revoked(key):
            return _bad(f"The value for variable api_key is not registered.  {_KEY_DOCS}")
        if request.param("file_type") != "json":
            return _bad("The sandbox serves file_type=json only.")
        try:
            if route.endpoint == "fred.release_dates":
                return self._release_dates(request, shape)
            return self._series_endpoint(request, route, shape)
        except ValueError as exc:
            return _bad(str(exc))

    def _series_endpoint(self, request: Request, route: Route, shape: Shape) -> Response:
        series_id = request.param("series_id")
        if not series_id:
            return _bad("Variable series_id is not set.")
        spec = FRED_SERIES.get(series_id.upper())
        if spec is None:
            return _bad("The series does not exist.")
        today = self.market.today
        history = route.endpoint == "fred.vintagedates"
        realtime_start = _date_param(request, "realtime_start") or (_EARLIEST if history else today)
        realtime_end = _date_param(request, "realtime_end") or (
            FRED_FAR_FUTURE if history else today
        )
        if realtime_start > realtime_end:
            return _bad("The value for variable realtime_start is later than realtime_end.")
        if realtime_start > today:
            return _bad("Variable realtime_start can not be after today's date.")
        realtime = (realtime_start, realtime_end)
        vintaged = route.endpoint in ("fred.observations", "fred.vintagedates")
        if vintaged and not spec.alfred and realtime != (today, today):
            return _bad(NOT_IN_ALFRED)
        if route.endpoint == "fred.series":
            return self._series(spec, realtime, shape)
        if route.endpoint == "fred.series_release":
            return self._series_release(spec, realtime)
        if route.endpoint == "fred.vintagedates":
            return self._vintagedates(request, spec, realtime, shape)
        observations = (
            _date_param(request, "observation_start"),
            _date_param(request, "observation_end"),
        )
        return self._observations(request, spec, realtime, observations, shape)

    # -- series/observations -------------------------------------------------------------------

    def _observations(
        self,
        request: Request,
        spec: FredSeriesSpec,
        realtime: tuple[dt.date, dt.date],
        observations: tuple[dt.date | None, dt.date | None],
        shape: Shape,
    ) -> Response:
        units = request.param("units") or "lin"
        if units not in _UNITS:
            return _bad(f"Variable units is not one of the values: {', '.join(_UNITS)}.")
        if units != "lin":
            return _bad(f"units={units} is not simulated by the sandbox (lin only).")
        frequency = (request.param("frequency") or "").lower()
        if frequency and frequency != spec.frequency_short.lower():
            return _bad(f"frequency={frequency} is not simulated (the series is native only).")
        if (request.param("output_type") or "1") != "1":
            return _bad("output_type other than 1 is not simulated by the sandbox.")
        if request.param("vintage_dates"):
            return _bad("vintage_dates is not simulated (ask by realtime_start/realtime_end).")
        limit, offset, sort_order = _paging(request, 100000, 100000)
        cap = self.market.fred_max_vintage_dates
        inside = [d for d in self.market.fred_vintage_dates(spec.id) if realtime[0] <= d]
        inside = [d for d in inside if d <= realtime[1]]
        if len(inside) > cap:
            return _bad(
                f"There are {len(inside)} vintage dates in the specified real-time period: "
                f"{realtime[0]} to {realtime[1]}.  This exceeds the maximum number of vintage "
                f"dates allowed ({cap})."
            )

        rows = self.market.fred_rows(spec.id, *realtime, *observations)
        if shape.stale_sessions:
            # The most recent observation dates are missing, as if the source lagged.
            dates = sorted({r.date for r in rows})
            cutoff = dates[-shape.stale_sessions] if len(dates) >= shape.stale_sessions else None
            rows = [r for r in rows if cutoff is None or r.date < cutoff] if dates else rows
        if shape.empty:
            rows = []
        if shape.duplicate_rows:
            rows = [r for r in rows for _ in (0, 1)]
        if sort_order == "desc":
            rows = sorted(rows, key=lambda r: r.date, reverse=True)
        page = rows[offset : offset + limit]
        start, end = observations
        return json_response(
            {
                "realtime_start": realtime[0].isoformat(),
                "realtime_end": realtime[1].isoformat(),
                "observation_start": (start or _EARLIEST).isoformat(),
                "observation_end": (end or FRED_FAR_FUTURE).isoformat(),
                "units": units,
                "output_type": 1,
                "file_type": "json",
                "order_by": "observation_date",
                "sort_order": sort_order,
                "count": len(rows),
                "offset": offset,
                "limit": limit,
                "observations": [self._row(r, spec.decimals) for r in page],
            }
        )

    @staticmethod
    def _row(row: FredRow, decimals: int) -> dict[str, str]:
        value = "." if row.value is None else f"{row.value:.{decimals}f}"
        return {
            "realtime_start": row.realtime_start.isoformat(),
            "realtime_end": row.realtime_end.isoformat(),
            "date": row.date.isoformat(),
            "value": value,
        }

    # -- series, series/vintagedates, series/release -------------------------------------------

    def _series(
        self, spec: FredSeriesSpec, realtime: tuple[dt.date, dt.date], shape: Shape
    ) -> Response:
        known = self.market.fred_rows(spec.id, realtime[1], realtime[1])
        last_release = max(
            (d for d in self.market.fred_vintage_dates(spec.id) if d <= realtime[1]),
            default=self.market.today,
        )
        entry = {
            "id": spec.id,
            "realtime_start": realtime[0].isoformat(),
            "realtime_end": realtime[1].isoformat(),
            "title": spec.title,
            "observation_start": known[0].date.isoformat() if known else "",
            "observation_end": known[-1].date.isoformat() if known else "",
            "frequency": spec.frequency,
            "frequency_short": spec.frequency_short,
            "units": spec.units,
            "units_short": spec.units_short,
            "seasonal_adjustment": spec.seasonal_adjustment,
            "seasonal_adjustment_short": spec.seasonal_adjustment_short,
            "last_updated": f"{last_release.isoformat()} 07:38:02-05",
            "popularity": spec.popularity,
            "notes": spec.notes,
        }
        return json_response(
            {
                "realtime_start": realtime[0].isoformat(),
                "realtime_end": realtime[1].isoformat(),
                "seriess": [] if shape.empty else [entry],
            }
        )

    def _vintagedates(
        self,
        request: Request,
        spec: FredSeriesSpec,
        realtime: tuple[dt.date, dt.date],
        shape: Shape,
    ) -> Response:
        limit, offset, sort_order = _paging(request, 10000, 10000)
        dates = [
            d.isoformat()
            for d in self.market.fred_vintage_dates(spec.id)
            if realtime[0] <= d <= realtime[1]
        ]
        if shape.empty:
            dates = []
        if sort_order == "desc":
            dates.reverse()
        return json_response(
            {
                "realtime_start": realtime[0].isoformat(),
                "realtime_end": realtime[1].isoformat(),
                "order_by": "vintage_date",
                "sort_order": sort_order,
                "count": len(dates),
                "offset": offset,
                "limit": limit,
                "vintage_dates": dates[offset : offset + limit],
            }
        )

    @staticmethod
    def _series_release(spec: FredSeriesSpec, realtime: tuple[dt.date, dt.date]) -> Response:
        release = spec.release
        period = {
            "realtime_start": realtime[0].isoformat(),
            "realtime_end": realtime[1].isoformat(),
        }
        entry = {
            "id": release.id,
            **period,
            "name": release.name,
            "press_release": release.press_release,
            "link": release.link,
        }
        return json_response({**period, "releases": [entry]})

    # -- release/dates -------------------------------------------------------------------------

    def _release_dates(self, request: Request, shape: Shape) -> Response:
        raw = request.param("release_id")
        if not raw:
            return _bad("Variable release_id is not set.")
        try:
            release_id = int(raw)
        except ValueError:
            return _bad(f'Variable release_id can not be "{raw}".  It must be an integer.')
        if release_id not in FRED_RELEASES:
            return _bad("The release does not exist.")
        realtime_start = _date_param(request, "realtime_start") or dt.date(
            self.market.today.year, 1, 1
        )
        realtime_end = _date_param(request, "realtime_end") or FRED_FAR_FUTURE
        if realtime_start > realtime_end:
            return _bad("The value for variable realtime_start is later than realtime_end.")
        flag = (request.param("include_release_dates_with_no_data") or "false").lower()
        if flag not in ("true", "false"):
            return _bad("Variable include_release_dates_with_no_data must be true or false.")
        limit, offset, sort_order = _paging(request, 10000, 10000)
        dates = [
            d
            for d in self.market.fred_release_dates(release_id, include_no_data=flag == "true")
            if realtime_start <= d <= realtime_end
        ]
        if shape.empty:
            dates = []
        if sort_order == "desc":
            dates.reverse()
        return json_response(
            {
                "realtime_start": realtime_start.isoformat(),
                "realtime_end": realtime_end.isoformat(),
                "order_by": "release_date",
                "sort_order": sort_order,
                "count": len(dates),
                "offset": offset,
                "limit": limit,
                "release_dates": [
                    {"release_id": release_id, "date": d.isoformat()}
                    for d in dates[offset : offset + limit]
                ],
            }
        )
