"""FRED (api.stlouisfed.org/fred): ``series/observations`` with real-time periods, and ``series``.

Served as FRED serves them: JSON only when ``file_type=json`` (the sandbox does not speak XML, so
anything else is a 400), values as strings with ``"."`` for a missing one, and FRED's error
bodies (``{"error_code": 400, "error_message": "Bad Request.  ..."}``). The real-time period
defaults to as_of, the sandbox's "today". ``units`` other than ``lin`` and ``frequency``
aggregation are not simulated and answer 400 saying so.
"""

from __future__ import annotations

import datetime as dt

from ingest_platform.sandbox.data import FRED_FAR_FUTURE, FRED_SERIES, FredRow
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


class FredProvider(Provider):
    name = "fred"
    root = "/fred"

    def classify(self, request: Request) -> Route:
        symbol = request.param("series_id")
        if request.path.rstrip("/") == "/series/observations":
            return Route("fred.observations", symbol)
        if request.path.rstrip("/") == "/series":
            return Route("fred.series", symbol)
        return Route("fred.other", symbol)

    def rate_limited(self, request: Request) -> Response:
        return fred_error(429, "Too Many Requests.  Exceeded Rate Limit")

    def server_error(self, request: Request, status: int) -> Response:
        return fred_error(status, "Internal Server Error")

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
        series_id = request.param("series_id")
        if not series_id:
            return _bad("Variable series_id is not set.")
        spec = FRED_SERIES.get(series_id.upper())
        if spec is None:
            return _bad("The series does not exist.")
        try:
            realtime_start = _date_param(request, "realtime_start") or self.market.today
            realtime_end = _date_param(request, "realtime_end") or self.market.today
            observation_start = _date_param(request, "observation_start")
            observation_end = _date_param(request, "observation_end")
        except ValueError as exc:
            return _bad(str(exc))
        if realtime_start > realtime_end:
            return _bad("The value for variable realtime_start is later than realtime_end.")
        if realtime_start > self.market.today:
            return _bad("Variable realtime_start can not be after today's date.")
        if route.endpoint == "fred.series":
            return self._series(spec.id, realtime_start, realtime_end, shape)
        return self._observations(
            request,
            spec.id,
            (realtime_start, realtime_end),
            (observation_start, observation_end),
            shape,
        )

    def _observations(
        self,
        request: Request,
        series_id: str,
        realtime: tuple[dt.date, dt.date],
        observations: tuple[dt.date | None, dt.date | None],
        shape: Shape,
    ) -> Response:
        spec = FRED_SERIES[series_id]
        units = request.param("units") or "lin"
        if units not in _UNITS:
            return _bad(f"Variable units is not one of the values: {', '.join(_UNITS)}.")
        if units != "lin":
            return _bad(f"units={units} is not simulated by the sandbox (lin only).")
        frequency = (request.param("frequency") or "").lower()
        if frequency and frequency != spec.frequency_short.lower():
            return _bad(f"frequency={frequency} is not simulated (the series is native only).")
        sort_order = request.param("sort_order") or "asc"
        if sort_order not in ("asc", "desc"):
            return _bad("Variable sort_order is not one of the values: asc, desc.")
        try:
            limit = int(request.param("limit") or 100000)
            offset = int(request.param("offset") or 0)
        except ValueError:
            return _bad("Variables limit and offset must be integers.")
        if not 1 <= limit <= 100000 or offset < 0:
            return _bad("Variable limit must be between 1 and 100000, offset non-negative.")

        rows = self.market.fred_rows(series_id, *realtime, *observations)
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
                "observation_start": (start or dt.date(1776, 7, 4)).isoformat(),
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

    def _series(
        self, series_id: str, realtime_start: dt.date, realtime_end: dt.date, shape: Shape
    ) -> Response:
        spec = FRED_SERIES[series_id]
        known = self.market.fred_rows(series_id, realtime_end, realtime_end)
        last_release = max(
            (start for versions in self.market.fred_vintages(series_id).vintages
             for start, _ in versions if start <= min(realtime_end, self.market.today)),
            default=self.market.today,
        )  # fmt: skip
        entry = {
            "id": spec.id,
            "realtime_start": realtime_start.isoformat(),
            "realtime_end": realtime_end.isoformat(),
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
                "realtime_start": realtime_start.isoformat(),
                "realtime_end": realtime_end.isoformat(),
                "seriess": [] if shape.empty else [entry],
            }
        )
