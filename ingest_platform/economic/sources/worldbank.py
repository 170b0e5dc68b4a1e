"""World Bank API v2 indicators: one request per indicator and country, more only for pages.

``country/{c}/indicator/{id}?format=json&date=Y1:Y2&per_page=1000&page=N``. The answer is
``[header, rows]``; the header's ``page``, ``pages``, ``per_page`` and ``total`` arrive as
numbers or as strings, so they are parsed as ints, and pages are followed until ``total`` rows
are in hand (a short count is an error, never a quiet gap). ``"value": null`` becomes NaN, and
the header's ``lastupdated`` is kept on every row.

The API's habits handled here:
- errors come as HTTP 200 with ``[{"message": [{"id", "key", "value"}]}]``; an unknown indicator
  or country (ids 120 and 175) is an `UnknownSymbol` naming both;
- it sometimes answers XML to a ``format=json`` request: a body starting with ``<`` is a
  `MalformedPayload` naming the indicator and country (transient: a retry usually gets JSON).
  The shared client hides response headers, so the body is what is checked; it is read as
  text for that reason.

Dates: a period's first day (1 January for a year, as FRED dates annual observations), as
datetime64. How long after the period a value becomes known is the registry's ``lag_days``,
counted from the period's end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ingest_platform.core.http import HttpClient
from ingest_platform.core.http.errors import MalformedPayload, SourceError, UnknownSymbol

SOURCE = "worldbank"
PER_PAGE = 1000
COLUMNS = ["indicator", "country", "date", "value", "lastupdated"]
#: Message ids the API uses for an unknown indicator or country.
UNKNOWN_IDS = frozenset({"120", "175"})
_MAX_PAGES = 1000


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "indicator": pd.Series(dtype=object),
            "country": pd.Series(dtype=object),
            "date": pd.Series(dtype="datetime64[ns]"),
            "value": pd.Series(dtype=float),
            "lastupdated": pd.Series(dtype="datetime64[ns]"),
        }
    )


def period_start(label: str) -> pd.Timestamp:
    """The first day of a World Bank period: ``2023``, ``2023Q2`` or ``2023M07``."""
    text = str(label).strip().upper()
    if text.isdigit() and len(text) == 4:
        return pd.Timestamp(int(text), 1, 1)
    if len(text) == 6 and text[4] == "Q" and text[:4].isdigit() and text[5] in "1234":
        return pd.Timestamp(int(text[:4]), 3 * int(text[5]) - 2, 1)
    if len(text) == 7 and text[4] == "M" and text[:4].isdigit() and text[5:].isdigit():
        return pd.Timestamp(int(text[:4]), int(text[5:]), 1)
    raise ValueError(f"not a World Bank period: {label!r}")


class Page:
    """One parsed answer: the header's numbers and the rows (None is an empty page)."""

    def __init__(self, header: Mapping[str, Any], rows: list[dict] | None, symbol: str) -> None:
        try:
            self.page = int(header["page"])
            self.pages = int(header["pages"])
            self.per_page = int(header["per_page"])
            self.total = int(header["total"])
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedPayload(SOURCE, f"unreadable paging header: {exc!r}", symbol) from None
        self.lastupdated = header.get("lastupdated")
        self.rows = rows or []


class WorldBankSource:
    """World Bank indicators over the shared HTTP layer (no API key)."""

    name = SOURCE

    def __init__(
        self,
        http: HttpClient,
        base_url: str = "https://api.worldbank.org/v2",
        per_page: int = PER_PAGE,
    ) -> None:
        if per_page < 1:
            raise ValueError(f"per_page must be >= 1, got {per_page}")
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.per_page = per_page

    # ---- stages ------------------------------------------------------------------------------

    def interpret(self, indicator: str, country: str):
        """The answer's text to a `Page`, or the API's error, XML or broken JSON to a typed
        error naming the indicator and country."""
        symbol = f"{indicator}/{country}"

        def interpret(status: int, text: Any) -> Page:
            body = str(text).lstrip("\ufeff \t\r\n")
            if body.startswith("<"):
                raise MalformedPayload(
                    SOURCE,
                    f"answered XML instead of JSON for indicator {indicator} in {country} "
                    f"({len(body)} characters, starting {body[:40]!r})",
                    symbol,
                )
            try:
                payload = json.loads(body)
            except json.JSONDecodeError as exc:
                raise MalformedPayload(
                    SOURCE, f"invalid JSON ({len(body)} characters, {exc.msg} at {exc.pos})", symbol
                ) from None
            if isinstance(payload, list) and payload and isinstance(payload[0], dict):
                messages = payload[0].get("message")
                if isinstance(messages, list):
                    raise self._error(messages, indicator, country, symbol)
            if status >= 400:
                raise SourceError(SOURCE, f"unexpected HTTP {status}", symbol)
            if not (isinstance(payload, list) and len(payload) == 2):
                raise MalformedPayload(SOURCE, "expected [header, rows]", symbol)
            header, rows = payload
            if not isinstance(header, dict) or not (rows is None or isinstance(rows, list)):
                raise MalformedPayload(SOURCE, "expected [header, rows]", symbol)
            return Page(header, rows, symbol)

        return interpret

    @staticmethod
    def _error(messages: list, indicator: str, country: str, symbol: str) -> SourceError:
        first = messages[0] if messages and isinstance(messages[0], dict) else {}
        detail = f"{first.get('key', 'error')}: {first.get('value', messages)}"
        if str(first.get("id")) in UNKNOWN_IDS:
            return UnknownSymbol(
                SOURCE,
                f"unknown indicator {indicator!r} or country {country!r} ({detail})",
                symbol,
            )
        return SourceError(SOURCE, f"error {first.get('id')} {detail}", symbol)

    def extract(self, indicator: str, country: str, start_year: int, end_year: int) -> list[Page]:
        """Every page of one indicator for one country over [start_year, end_year]."""
        if not country or ";" in country:
            raise ValueError(f"one country per request, got {country!r}")
        url = f"{self.base_url}/country/{country}/indicator/{indicator}"
        symbol = f"{indicator}/{country}"
        interpret = self.interpret(indicator, country)
        pages: list[Page] = []
        for number in range(1, _MAX_PAGES + 1):
            params = {
                "format": "json",
                "date": f"{start_year}:{end_year}",
                "per_page": self.per_page,
                "page": number,
            }
            page = self.http.get_text(url, params, symbol, interpret)
            if pages and page.total != pages[0].total:
                raise MalformedPayload(
                    SOURCE, f"total changed while paging ({pages[0].total} -> {page.total})", symbol
                )
            pages.append(page)
            received = sum(len(p.rows) for p in pages)
            if received >= page.total or number >= page.pages:
                if received != page.total:
                    raise MalformedPayload(
                        SOURCE,
                        f"{received} rows over {number} page(s), total says {page.total}",
                        symbol,
                    )
                return pages
        raise MalformedPayload(SOURCE, f"more than {_MAX_PAGES} pages", symbol)

    def transform(self, pages: Sequence[Page], indicator: str, country: str) -> pd.DataFrame:
        """Canonical rows: indicator, country (ISO3), date (period start), value, lastupdated."""
        symbol = f"{indicator}/{country}"
        rows = [r for p in pages for r in p.rows]
        if not rows:
            return empty_frame()
        stamp = pages[0].lastupdated
        try:
            frame = pd.DataFrame(
                {
                    "indicator": [str(r["indicator"]["id"]) for r in rows],
                    "country": [str(r.get("countryiso3code") or r["country"]["id"]) for r in rows],
                    "date": [period_start(r["date"]) for r in rows],
                    "value": [np.nan if r["value"] is None else float(r["value"]) for r in rows],
                }
            )
            lastupdated = pd.Timestamp(stamp) if stamp else pd.NaT
        except (KeyError, TypeError, ValueError) as exc:
            raise MalformedPayload(SOURCE, f"unreadable row: {exc!r}", symbol) from None
        frame["date"] = frame["date"].astype("datetime64[ns]")
        frame["lastupdated"] = pd.Series(lastupdated, index=frame.index).astype("datetime64[ns]")
        frame = frame.drop_duplicates(ignore_index=True)
        clash = frame.duplicated(["indicator", "country", "date"], keep=False)
        if clash.any():
            day = frame.loc[clash, "date"].iloc[0]
            raise MalformedPayload(SOURCE, f"two values for {day.year}", symbol)
        return frame.sort_values(["indicator", "country", "date"], ignore_index=True)[COLUMNS]

    def indicator(
        self, indicator: str, country: str, start_year: int, end_year: int
    ) -> pd.DataFrame:
        """One indicator for one country, canonical (see `transform`)."""
        pages = self.extract(indicator, country, start_year, end_year)
        return self.transform(pages, indicator, country)
