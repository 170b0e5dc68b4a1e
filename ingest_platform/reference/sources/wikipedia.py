"""Wikipedia's "List of S&P 500 companies": the constituents (``#constituents``) and the
"Selected changes" (``#changes``) tables.

Used to refresh the shipped snapshots (`ingest-platform refresh-constituents`), never at asset
run time: the universe changes a few times a quarter and each change should be a reviewed diff
of ``data/reference/``. Parsed with the standard library's HTMLParser, reading only the tables
the page marks with those ids. The real markup has footnote marks inside cells
(``<sup class="reference">[6]</sup>``), links around names, a two-row header on the changes
table (Added and Removed each span Ticker and Security) and, in older revisions, dates that
span several rows: cells are expanded over their ``rowspan``/``colspan`` and footnotes dropped.
"""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser

import pandas as pd

from ingest_platform.core.http import HttpClient
from ingest_platform.core.http.errors import MalformedPayload, SourceError

SOURCE = "wikipedia"
DEFAULT_BASE_URL = "https://en.wikipedia.org"
PAGE_PATH = "/wiki/List_of_S%26P_500_companies"
REQUIRED_HEADERS = ("Symbol", "Security", "GICS Sector")
#: The changes table's columns, by the joined two-row header: the shipped file's column names.
CHANGE_HEADERS = {
    "Effective Date": "date",
    "Added Ticker": "added_ticker",
    "Added Security": "added_security",
    "Removed Ticker": "removed_ticker",
    "Removed Security": "removed_security",
    "Reason": "reason",
}
_DATE_FORMATS = ("%B %d, %Y", "%b %d, %Y", "%Y-%m-%d")


class _TableReader(HTMLParser):
    """The cell texts of the one table with the wanted id, as a grid: a cell spanning rows or
    columns is repeated into each (nested tables and footnote ``<sup>`` marks ignored)."""

    def __init__(self, table_id: str) -> None:
        super().__init__(convert_charrefs=True)
        self.table_id = table_id
        self.rows: list[list[str]] = []
        self.headings = 0  # how many leading rows hold only <th> cells
        self._only_th = True
        self._depth = 0  # table nesting depth inside the wanted table
        self._sup = 0  # depth inside <sup> (footnote marks)
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._span = (1, 1)  # (rowspan, colspan) of the open cell
        self._carry: dict[int, tuple[int, str]] = {}  # column -> (rows left, text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            if self._depth or dict(attrs).get("id") == self.table_id:
                self._depth += 1
        elif self._depth != 1:
            return
        elif tag == "tr":
            self._row = []
            self._only_th = True
            self._fill_carried()
        elif tag in ("td", "th") and self._row is not None:
            self._only_th = self._only_th and tag == "th"
            self._cell = []
            found = dict(attrs)
            self._span = (_span(found.get("rowspan")), _span(found.get("colspan")))
        elif tag == "sup":
            self._sup += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._depth:
            self._depth -= 1
        elif self._depth != 1:
            return
        elif tag == "sup" and self._sup:
            self._sup -= 1
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            text = " ".join("".join(self._cell).split())
            rows, cols = self._span
            for _ in range(cols):
                if rows > 1:
                    self._carry[len(self._row)] = (rows - 1, text)
                self._row.append(text)
                self._fill_carried()
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._only_th and self.headings == len(self.rows):
                self.headings += 1
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None and not self._sup:
            self._cell.append(data)

    def _fill_carried(self) -> None:
        """Put the cells spanning down from earlier rows into their columns of this row."""
        assert self._row is not None
        while len(self._row) in self._carry:
            left, text = self._carry.pop(len(self._row))
            if left > 1:
                self._carry[len(self._row)] = (left - 1, text)
            self._row.append(text)


def _span(value: str | None) -> int:
    try:
        return max(int(value or 1), 1)
    except ValueError:
        return 1


def _table(html: str, table_id: str) -> _TableReader:
    reader = _TableReader(table_id)
    reader.feed(html)
    if not reader.rows:
        raise MalformedPayload(SOURCE, f"no table with id {table_id!r} on the page")
    return reader


def parse_constituents(html: str) -> pd.DataFrame:
    """The constituents table as (symbol, name, gics_sector), one row per symbol."""
    header, *body = _table(html, "constituents").rows
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


def _change_date(text: str, line: int) -> str:
    for form in _DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, form).date().isoformat()
        except ValueError:
            continue
    raise MalformedPayload(SOURCE, f"changes table row {line}: {text!r} is not a date")


def parse_changes(html: str) -> pd.DataFrame:
    """The changes table in the shipped file's columns (`CHANGE_HEADERS`), newest first as the
    page lists them; dates as YYYY-MM-DD. Rows are not judged here: `reconcile` does that."""
    table = _table(html, "changes")
    rows, headed = table.rows, max(table.headings, 1)
    header = [
        " ".join(dict.fromkeys(part for part in parts if part))
        for parts in zip(*rows[:headed], strict=False)
    ]
    missing = [h for h in CHANGE_HEADERS if h not in header]
    if missing:
        raise MalformedPayload(SOURCE, f"changes table lacks column(s) {missing}: {header}")
    at = {column: header.index(h) for h, column in CHANGE_HEADERS.items()}
    out = []
    for line, row in enumerate(rows[headed:], start=headed + 1):
        if len(row) < len(header) or not any(row):
            continue
        record = {column: row[i] for column, i in at.items()}
        record["date"] = _change_date(record["date"], line)
        out.append(record)
    if not out:
        raise MalformedPayload(SOURCE, "changes table has no rows")
    return pd.DataFrame(out, columns=list(CHANGE_HEADERS.values()))


def fetch_page(http: HttpClient, base_url: str = DEFAULT_BASE_URL) -> str:
    """The page's HTML (one request for both tables)."""

    def interpret(status: int, text: str) -> str:
        if status >= 400:
            raise SourceError(SOURCE, f"HTTP {status} for {PAGE_PATH}")
        return text

    return http.get_text(f"{base_url.rstrip('/')}{PAGE_PATH}", interpret=interpret)


def fetch_constituents(http: HttpClient, base_url: str = DEFAULT_BASE_URL) -> pd.DataFrame:
    return parse_constituents(fetch_page(http, base_url))
