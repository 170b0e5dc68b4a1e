"""S&P 500 constituents from Wikipedia's "List of S&P 500 companies" (table ``#constituents``).

Used to refresh the shipped snapshot (`ingest-platform refresh-constituents`), never at asset
run time: the universe changes a few times a quarter and each change should be a reviewed diff
of ``data/reference/sp500_constituents.csv``. Parsed with the standard library's HTMLParser,
reading only the table the page marks with ``id="constituents"``.
"""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd

from ingest_platform.core.http import HttpClient
from ingest_platform.core.http.errors import MalformedPayload, SourceError

SOURCE = "wikipedia"
DEFAULT_BASE_URL = "https://en.wikipedia.org"
PAGE_PATH = "/wiki/List_of_S%26P_500_companies"
REQUIRED_HEADERS = ("Symbol", "Security", "GICS Sector")


class _TableReader(HTMLParser):
    """Collects the cell texts of the one table with the wanted id (nested tables ignored)."""

    def __init__(self, table_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.table_id = table_id
        self.rows: list[list[str]] = []
        self._depth = 0  # table nesting depth inside the wanted table
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            if self._depth or dict(attrs).get("id") == self.table_id:
                self._depth += 1
        elif self._depth == 1 and tag == "tr":
            self._row = []
        elif self._depth == 1 and tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._depth:
            self._depth -= 1
        elif self._depth == 1 and tag in ("td", "th") and self._cell is not None:
            assert self._row is not None
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif self._depth == 1 and tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def parse_constituents(html: str) -> pd.DataFrame:
    """The constituents table as (symbol, name, gics_sector), one row per symbol."""
    reader = _TableReader("constituents")
    reader.feed(html)
    if not reader.rows:
        raise MalformedPayload(SOURCE, "no table with id 'constituents' on the page")
    header, *body = reader.rows
    missing = [h for h in REQUIRED_HEADERS if h not in header]
    if missing:
        raise MalformedPayload(SOURCE, f"constituents table lacks column(s) {missing}: {header}")
    at = {name: header.index(name) for name in REQUIRED_HEADERS}
    rows = [
        (r[at["Symbol"]], r[at["Security"]], r[at["GICS Sector"]])
        for r in body
        if len(r) >= len(header) and r[at["Symbol"]]
    ]
    if not rows:
        raise MalformedPayload(SOURCE, "constituents table has no rows")
    frame = pd.DataFrame(rows, columns=["symbol", "name", "gics_sector"])
    return frame.drop_duplicates("symbol").sort_values("symbol", ignore_index=True)


def fetch_constituents(http: HttpClient, base_url: str = DEFAULT_BASE_URL) -> pd.DataFrame:
    def interpret(status: int, text: str) -> str:
        if status >= 400:
            raise SourceError(SOURCE, f"HTTP {status} for {PAGE_PATH}")
        return text

    html = http.get_text(f"{base_url.rstrip('/')}{PAGE_PATH}", interpret=interpret)
    return parse_constituents(html)
