"""World Bank API v2: ``country/{codes}/indicator/{id}?format=json&date=Y1:Y2&per_page&page``.

The answer is WB's two-element array: a paging header, then rows newest year first, grouped by
country (countries in the order of their names, as the API lists them). A missing value is
``null``. An unknown indicator or country gets WB's ``message`` array (HTTP 200), and so does a
``format`` other than json (the sandbox does not speak XML, except through the ``xml_answer``
fault, which answers a JSON request with the XML rendering, as the real API sometimes does).
"""

from __future__ import annotations

import math
import re

from ingest_platform.sandbox.data import WORLDBANK_COUNTRIES, WORLDBANK_INDICATORS
from ingest_platform.sandbox.providers import (
    Provider,
    Request,
    Response,
    Route,
    Shape,
    json_response,
)

_PATH = re.compile(r"/country/([^/]+)/indicator/([^/]+)")
_INVALID = [
    {
        "message": [
            {
                "id": "120",
                "key": "Invalid value",
                "value": "The provided parameter value is not valid",
            }
        ]
    }
]
_ISO2 = {iso2: iso3 for iso3, (iso2, _, _) in WORLDBANK_COUNTRIES.items()}


def _invalid() -> Response:
    return json_response(_INVALID)


class WorldBankProvider(Provider):
    name = "worldbank"
    root = "/worldbank/v2"

    def classify(self, request: Request) -> Route:
        match = _PATH.fullmatch(request.path.rstrip("/"))
        if match is None:
            return Route("worldbank.other")
        return Route("worldbank.indicator", match.group(2))

    def rate_limited(self, request: Request) -> Response:
        message = {"id": "429", "key": "Too Many Requests", "value": "Rate limit exceeded"}
        return json_response([{"message": [message]}], 429)

    def xml_answer(self, request: Request) -> Response:
        """The API's XML rendering, which it sometimes sends to a ``format=json`` request."""
        body = (
            '<?xml version="1.0" encoding="utf-8"?>\r\n'
            f'<wb:data page="1" pages="1" per_page="50" total="1" sourceid="2" '
            f'lastupdated="{self.market.today.isoformat()}" xmlns:wb="http://www.worldbank.org">'
            f'<wb:data><wb:indicator id="{request.path.rsplit("/", 1)[-1]}" /></wb:data>'
            "</wb:data>"
        )
        return Response(200, body.encode(), "application/xml; charset=utf-8")

    def respond(self, request: Request, route: Route, shape: Shape) -> Response:
        match = _PATH.fullmatch(request.path.rstrip("/"))
        if match is None or (request.param("format") or "").lower() != "json":
            return _invalid()
        countries = self._countries(match.group(1))
        indicator = match.group(2).upper()
        if countries is None or indicator not in WORLDBANK_INDICATORS:
            return _invalid()
        years = self._years(request.param("date"))
        try:
            per_page = int(request.param("per_page") or 50)
            page = int(request.param("page") or 1)
        except ValueError:
            return _invalid()
        if years is None or per_page < 1 or page < 1:
            return _invalid()

        name, decimal, _ = WORLDBANK_INDICATORS[indicator]
        rows: list[dict] = []
        for iso3 in sorted(countries, key=lambda c: WORLDBANK_COUNTRIES[c][1]):
            series = self.market.worldbank_series(indicator, iso3)
            if shape.stale_sessions:
                series = series[: -shape.stale_sessions]
            iso2, country_name, _ = WORLDBANK_COUNTRIES[iso3]
            for year, value in reversed(series):
                if years[0] <= year <= years[1]:
                    row = {
                        "indicator": {"id": indicator, "value": name},
                        "country": {"id": iso2, "value": country_name},
                        "countryiso3code": iso3,
                        "date": str(year),
                        "value": _number(value),
                        "unit": "",
                        "obs_status": "",
                        "decimal": decimal,
                    }
                    rows.extend([row, row] if shape.duplicate_rows else [row])
        if shape.empty:
            rows = []
        pages = math.ceil(len(rows) / per_page)
        header = {
            "page": page,
            "pages": pages,
            "per_page": per_page,
            "total": len(rows),
            "sourceid": "2",
            "lastupdated": self.market.today.isoformat(),
        }
        chunk = rows[(page - 1) * per_page : page * per_page]
        return json_response([header, chunk or None])

    @staticmethod
    def _countries(codes: str) -> list[str] | None:
        if codes.lower() in ("all", "wld"):
            return list(WORLDBANK_COUNTRIES)
        out = []
        for code in codes.upper().split(";"):
            iso3 = code if code in WORLDBANK_COUNTRIES else _ISO2.get(code)
            if iso3 is None:
                return None
            out.append(iso3)
        return out

    @staticmethod
    def _years(raw: str | None) -> tuple[int, int] | None:
        if not raw:
            return (0, 9999)
        try:
            first, _, last = raw.partition(":")
            return int(first), int(last or first)
        except ValueError:
            return None


def _number(value: float | None) -> float | int | None:
    """GDP in dollars as an integer, like the API; percentages as they are."""
    if value is None:
        return None
    return int(value) if float(value).is_integer() else value
