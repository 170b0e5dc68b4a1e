"""Wikipedia's *List of S&P 500 companies*: the ``constituents`` table (and a ``changes`` table).

The page keeps Wikipedia's markup where parsers look: ``<table class="wikitable sortable"
id="constituents">``, the header Symbol | Security | GICS Sector | GICS Sub-Industry |
Headquarters Location | Date added | CIK | Founded, and symbol cells linking to the exchange
quote page. Which values come from the shipped snapshot and which are derived is documented on
`ingest_platform.sandbox.data.Constituent`. The changes table lists the simulated changes,
then the shipped history (``data/reference/sp500_membership_changes.csv``), newest first, in
the real table's markup: a two-row header, linked securities, footnote marks after reasons.
``stale`` serves the page as it was before the latest N constituent changes.
"""

from __future__ import annotations

import datetime as dt
from html import escape
from urllib.parse import quote

from ingest_platform.sandbox.data import Constituent, stable_hash
from ingest_platform.sandbox.providers import (
    Provider,
    Request,
    Response,
    Route,
    Shape,
    text_response,
)

PAGE_TITLE = "List_of_S&P_500_companies"
_HTML = "text/html; charset=UTF-8"
_HEADER = (
    "Symbol", "Security", "GICS Sector", "GICS Sub-Industry", "Headquarters Location",
    "Date added", "CIK", "Founded",
)  # fmt: skip


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html class="client-nojs" lang="en" dir="ltr">\n<head>\n'
        f'<meta charset="UTF-8">\n<title>{escape(title)} - Wikipedia</title>\n</head>\n'
        f'<body class="mediawiki">\n<h1 id="firstHeading" class="firstHeading">{escape(title)}'
        f'</h1>\n<div id="mw-content-text">\n{body}\n</div>\n</body>\n</html>\n'
    )


def _row(c: Constituent) -> str:
    symbol = escape(c.symbol)
    cells = [
        f'<td><a rel="nofollow" class="external text" '
        f'href="https://www.nyse.com/quote/XNYS:{quote(c.symbol)}">{symbol}</a></td>',
        f'<td><a href="/wiki/{quote(c.security.replace(" ", "_"))}" '
        f'title="{escape(c.security)}">{escape(c.security)}</a></td>',
        f"<td>{escape(c.sector)}</td>",
        f"<td>{escape(c.sub_industry)}</td>",
        f"<td>{escape(c.headquarters)}</td>",
        f"<td>{c.date_added.isoformat()}</td>",
        f"<td>{c.cik}</td>",
        f"<td>{c.founded}</td>",
    ]
    return "<tr>\n" + "\n".join(cells) + "\n</tr>"


class WikipediaProvider(Provider):
    name = "wikipedia"
    root = "/wikipedia"

    def classify(self, request: Request) -> Route:
        if request.path == f"/wiki/{PAGE_TITLE}":
            return Route("wikipedia.constituents")
        return Route("wikipedia.other")

    def rate_limited(self, request: Request) -> Response:
        page = _page("Too Many Requests", "<p>You are making too many requests.</p>")
        return text_response(page, 429, _HTML)

    def server_error(self, request: Request, status: int) -> Response:
        page = _page("Wikimedia Error", "<p>Our servers are currently under maintenance.</p>")
        return text_response(page, status, _HTML)

    def respond(self, request: Request, route: Route, shape: Shape) -> Response:
        if route.endpoint != "wikipedia.constituents":
            missing = "<p>Wikipedia does not have an article with this exact name.</p>"
            return text_response(_page("Not Found", missing), 404, _HTML)
        constituents = [] if shape.empty else self.market.constituents(shape.stale_sessions)
        rows = [_row(c) for c in constituents]
        if shape.duplicate_rows:
            rows = [r for r in rows for _ in (0, 1)]
        header = "<tr>" + "".join(f"<th>{escape(h)}</th>" for h in _HEADER) + "</tr>"
        table = (
            '<h2 id="S&amp;P_500_component_stocks">S&amp;P 500 component stocks</h2>\n'
            '<table class="wikitable sortable" id="constituents">\n<tbody>\n'
            + "\n".join([header, *rows])
            + "\n</tbody>\n</table>\n"
            + self._changes_table(shape.stale_sessions)
        )
        return text_response(_page("List of S&P 500 companies", table), 200, _HTML)

    def _changes_table(self, skip_latest: int) -> str:
        """Selected changes, newest first, in Wikipedia's markup: the simulated changes, then the
        shipped history (``data/reference/sp500_membership_changes.csv``)."""
        rows = []
        for change in reversed(self.market.applied_changes(skip_latest)):
            added = self.market.instruments.get(change.added) if change.added else None
            removed = self.market.instruments.get(change.removed) if change.removed else None
            rows.append(
                _change_row(
                    change.effective,
                    change.added or "",
                    added.name if added else "",
                    change.removed or "",
                    removed.name if removed else "",
                    change.reason,
                )
            )
        for c in reversed(self.market.history_changes()):
            rows.append(
                _change_row(
                    c.date,
                    c.added or "",
                    c.added_security,
                    c.removed or "",
                    c.removed_security,
                    c.reason,
                )
            )
        return (
            '<h2 id="Selected_changes_to_the_list_of_S&amp;P_500_components">Selected changes'
            " to the list of S&amp;P 500 components</h2>\n"
            '<table class="wikitable sortable" id="changes">\n<tbody><tr>\n'
            '<th data-sort-type="date" rowspan="2">Effective Date</th>\n'
            '<th colspan="2">Added</th>\n<th colspan="2">Removed</th>\n'
            '<th rowspan="2">Reason</th></tr>\n'
            "<tr>\n<th>Ticker</th><th>Security</th><th>Ticker</th><th>Security</th></tr>\n"
            + "\n".join(rows)
            + "\n</tbody></table>"
        )


def _security(name: str) -> str:
    if not name:
        return "<td></td>"
    title = escape(name)
    return (
        f'<td><a rel="mw:WikiLink" href="//en.wikipedia.org/wiki/{quote(name.replace(" ", "_"))}"'
        f' title="{title}">{title}</a></td>'
    )


def _change_row(
    day: dt.date, added: str, added_name: str, removed: str, removed_name: str, reason: str
) -> str:
    """One row as the real page writes it: plain tickers, linked securities, and the reason
    followed by a footnote mark (``[n]``) that readers must not take for text."""
    note = stable_hash("wikipedia-note", day.isoformat()) % 200 + 1
    footnote = (
        f'<sup class="mw-ref reference" id="cite_ref-{note}"><a href="#cite_note-{note}">'
        f'<span class="mw-reflink-text"><span class="cite-bracket">[</span>{note}'
        '<span class="cite-bracket">]</span></span></a></sup>'
    )
    cells = [
        f"<td>{day.strftime('%B %-d, %Y')}</td>",
        f"<td>{escape(added)}</td>",
        _security(added_name),
        f"<td>{escape(removed)}</td>",
        _security(removed_name),
        f"<td>{escape(reason)}{footnote if reason else ''}</td>",
    ]
    return "<tr>\n" + "".join(cells) + "</tr>"
