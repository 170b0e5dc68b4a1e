"""Refreshing the S&P 500 snapshot from Wikipedia's constituents table (served by the sandbox)."""

from __future__ import annotations

import datetime as dt
import shutil

import pandas as pd
import pytest

from ingest_platform.cli import main
from ingest_platform.core import settings
from ingest_platform.core.http import HttpClient
from ingest_platform.core.http.errors import MalformedPayload
from ingest_platform.reference import universe
from ingest_platform.reference.sources.wikipedia import fetch_constituents, parse_constituents
from ingest_platform.sandbox.data import ConstituentChange, MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

CHANGE = ConstituentChange(
    effective=dt.date(2026, 6, 22),
    added="NWCO",
    removed="AAPL",
    added_name="Newco Holdings",
    added_sector="Industrials",
)


@pytest.fixture
def wikipedia():
    market = MarketSimulator(seed=7, as_of="2026-11-20", constituent_changes=(CHANGE,))
    with SandboxHTTPServer(market) as server:
        yield server


@pytest.fixture
def reference_copy(tmp_path, monkeypatch):
    directory = tmp_path / "reference"
    shutil.copytree(settings.reference_dir(), directory)
    monkeypatch.setenv("INGEST_PLATFORM_REFERENCE_DIR", str(directory))
    return directory


def test_the_constituents_table_parses_into_symbols_names_and_sectors(wikipedia):
    table = fetch_constituents(HttpClient("wikipedia"), wikipedia.base_url("wikipedia"))
    assert len(table) == 503
    assert list(table.columns) == ["symbol", "name", "gics_sector"]
    brk = table.set_index("symbol").loc["BRK.B"]
    assert brk["gics_sector"] == "Financials"
    assert "NWCO" in set(table["symbol"]) and "AAPL" not in set(table["symbol"])


def test_refresh_names_the_diff_and_keeps_known_isins(wikipedia):
    current = pd.read_csv(
        settings.reference_dir() / universe.CONSTITUENTS_FILE, dtype=str, keep_default_na=False
    )
    fetched = fetch_constituents(HttpClient("wikipedia"), wikipedia.base_url("wikipedia"))
    new, diff = universe.refresh_constituents(current, fetched)
    assert (diff.added, diff.removed) == (["NWCO"], ["AAPL"])
    assert diff.lines()[:2] == ["+ NWCO", "- AAPL"]
    msft = new.set_index("symbol").loc["MSFT"]
    assert msft["isin"] == current.set_index("symbol").loc["MSFT", "isin"] != ""
    assert new.set_index("symbol").loc["NWCO", "isin"] == ""
    assert new.set_index("symbol").loc["BRK.B", "yahoo_symbol"] == "BRK-B"


def test_a_truncated_list_is_refused():
    current = pd.DataFrame(
        {
            "symbol": [f"S{i}" for i in range(500)],
            "isin": [""] * 500,
            "name": "x",
            "gics_sector": "y",
        }
    )
    fetched = current.iloc[:12][["symbol", "name", "gics_sector"]]
    with pytest.raises(
        universe.ReferenceDataError, match="refusing to replace 500 constituents with 12"
    ):
        universe.refresh_constituents(current, fetched)


def test_a_page_without_the_table_is_a_malformed_payload():
    with pytest.raises(MalformedPayload, match="no table with id 'constituents'"):
        parse_constituents(
            "<html><body><table id='other'><tr><td>x</td></tr></table></body></html>"
        )


def test_the_cli_writes_the_snapshot_only_without_dry_run(wikipedia, reference_copy, capsys):
    path = reference_copy / universe.CONSTITUENTS_FILE
    before = path.read_bytes()
    assert (
        main(["refresh-constituents", "--base-url", wikipedia.base_url("wikipedia"), "--dry-run"])
        == 0
    )
    assert path.read_bytes() == before
    assert "+ NWCO" in capsys.readouterr().out

    assert main(["refresh-constituents", "--base-url", wikipedia.base_url("wikipedia")]) == 0
    refreshed = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert "NWCO" in set(refreshed["symbol"]) and "AAPL" not in set(refreshed["symbol"])
    assert list(refreshed.columns) == universe.CONSTITUENT_COLUMNS
    # The changes file gained the page's new row, and the pair still reconciles: AAPL is now
    # a former member (listed inactive), NWCO a member since its day.
    changes = pd.read_csv(reference_copy / "sp500_membership_changes.csv", dtype=str)
    assert changes.iloc[-1][["date", "added_ticker", "removed_ticker"]].tolist() == [
        "2026-06-22", "NWCO", "AAPL",
    ]  # fmt: skip
    refreshed_universe = universe.load_instruments(reference_copy).set_index("symbol")
    assert len(refreshed_universe) == 609  # 555 traded + 54 former members since 2023
    assert not refreshed_universe.loc["AAPL", "active"]
    assert refreshed_universe.loc["NWCO", "instrument_id"] == "NWCO@2026-06-22"


def test_a_refresh_that_does_not_reconcile_writes_nothing(wikipedia, reference_copy, capsys):
    url = wikipedia.base_url("wikipedia")
    assert main(["refresh-constituents", "--base-url", url, "--dry-run"]) == 0  # sandbox loaded
    renames = reference_copy / "symbol_changes.csv"
    renames.write_text(renames.read_text() + "2026-06-01,MSFT,MSFX,Microsoft,bad,test\n")
    before = {p.name: p.read_bytes() for p in reference_copy.iterdir()}
    assert main(["refresh-constituents", "--base-url", wikipedia.base_url("wikipedia")]) == 1
    err = capsys.readouterr().err
    assert "refused, nothing written: symbol_changes.csv:34: MSFT -> MSFX on 2026-06-01" in err
    assert {p.name: p.read_bytes() for p in reference_copy.iterdir()} == before


# The two tables as the live page writes them (Parsoid HTML, 2026-07): quote links with
# data-mw on symbols, linked securities, a two-row header on the changes table, footnote marks
# after reasons, and (as older revisions do) a date cell spanning two rows.
_SYMBOL = (
    '<td><a rel="mw:ExtLink nofollow" href="https://www.nyse.com/quote/XNYS:{s}" '
    'typeof="mw:Transclusion" class="external text" data-mw=\'{{"parts":[{{"template":'
    '{{"target":{{"wt":"NyseSymbol"}},"params":{{"1":{{"wt":"{s}"}}}}}}}}]}}\'>{s}</a></td>'
)
_LINK = '<a rel="mw:WikiLink" href="//en.wikipedia.org/wiki/{t}" title="{t}">{t}</a>'
_NOTE = (
    '<sup class="mw-ref reference" id="cite_ref-{n}"><a href="#cite_note-{n}">'
    '<span class="mw-reflink-text"><span class="cite-bracket">[</span>{n}'
    '<span class="cite-bracket">]</span></span></a></sup>'
)
MEMBERS = {"AAA": "Alpha Corp", "META": "Meta Platforms", "NEWC": "Newco", "ZZZ": "Zeta"}
REAL_PAGE = (
    '<html><body><table class="wikitable sortable mw-collapsible sticky-header" '
    'id="constituents"><tbody><tr><th>' + _LINK.format(t="Symbol") + "</th><th>Security</th>"
    "<th>" + _LINK.format(t="GICS") + " Sector</th><th>GICS Sub-Industry</th>"
    "<th>Headquarters Location</th><th>Date added</th><th>CIK</th><th>Founded</th></tr>\n"
    + "".join(
        f"<tr>\n{_SYMBOL.format(s=s)}\n<td>{_LINK.format(t=n)}</td><td>Industrials</td>"
        f"<td>Machinery</td><td>Somewhere</td><td>2001-01-02</td><td>0000000001</td>"
        f"<td>1900</td></tr>\n"
        for s, n in MEMBERS.items()
    )
    + "</tbody></table>\n"
    '<table class="wikitable sortable" id="changes"><tbody><tr>\n'
    '<th data-sort-type="date" rowspan="2">Effective Date</th>\n<th colspan="2">Added</th>\n'
    '<th colspan="2">Removed</th>\n<th rowspan="2">Reason</th></tr>\n'
    "<tr>\n<th>Ticker</th><th>Security</th><th>Ticker</th><th>Security</th></tr>\n"
    '<tr><td rowspan="2">March 23, 2026</td><td>NEWC</td><td>'
    + _LINK.format(t="Newco")
    + "</td><td>OLDC</td><td>"
    + _LINK.format(t="Oldco")
    + "</td><td>Market capitalization change."
    + _NOTE.format(n=12)
    + "</td></tr>\n"
    "<tr><td>ZZZ</td><td>" + _LINK.format(t="Zeta") + "</td><td></td><td></td>"
    "<td>S&amp;P 500 constituent Alpha spun off Zeta." + _NOTE.format(n=12) + "</td></tr>\n"
    "<tr><td>June 9, 2022</td><td>META</td><td>"
    + _LINK.format(t="Meta Platforms")
    + "</td><td>FB</td><td>"
    + _LINK.format(t="Facebook")
    + "</td><td>Facebook changed its ticker to META."
    + _NOTE.format(n=52)
    + "</td></tr>\n"
    "</tbody></table></body></html>"
)


def test_the_real_markup_gives_exact_membership_with_a_rename_and_a_removal():
    from ingest_platform.reference import membership, membership_files
    from ingest_platform.reference.sources.wikipedia import parse_changes

    constituents = parse_constituents(REAL_PAGE)
    assert dict(zip(constituents["symbol"], constituents["name"], strict=True)) == MEMBERS
    page = parse_changes(REAL_PAGE)
    assert page.to_dict("records")[:2] == [
        {"date": "2026-03-23", "added_ticker": "NEWC", "added_security": "Newco",
         "removed_ticker": "OLDC", "removed_security": "Oldco",
         "reason": "Market capitalization change."},
        {"date": "2026-03-23", "added_ticker": "ZZZ", "added_security": "Zeta",
         "removed_ticker": "", "removed_security": "",
         "reason": "S&P 500 constituent Alpha spun off Zeta."},
    ]  # fmt: skip
    changes, _ = membership_files.refresh_changes([], page, membership_files.Path("c.csv"))
    rename = membership_files.SymbolChange(
        dt.date(2022, 6, 9), "FB", "META", "Meta Platforms", "", "symbol_changes.csv:2"
    )
    history = membership.reconcile(
        dict(zip(constituents["symbol"], constituents["name"], strict=True)),
        changes,
        [rename],
        today=dt.date(2026, 7, 6),
        band=(3, 5),
    )
    assert history.members_on("2022-06-08") == {
        ("AAA@2018-01-01", "AAA"), ("FB@2018-01-01", "FB"), ("OLDC@2018-01-01", "OLDC"),
    }  # fmt: skip
    assert history.members_on("2022-06-09") == {
        ("AAA@2018-01-01", "AAA"), ("FB@2018-01-01", "META"), ("OLDC@2018-01-01", "OLDC"),
    }  # fmt: skip
    assert history.members_on("2026-03-23") == {
        ("AAA@2018-01-01", "AAA"), ("FB@2018-01-01", "META"),
        ("NEWC@2026-03-23", "NEWC"), ("ZZZ@2026-03-23", "ZZZ"),
    }  # fmt: skip
    oldco = history.intervals.set_index("symbol").loc["OLDC"]
    assert oldco["removed"] == pd.Timestamp("2026-03-23") and oldco["removed_via"] == "removal"
    assert oldco["removed_reason"] == "Market capitalization change."


def test_a_changes_table_without_its_columns_is_a_malformed_payload():
    from ingest_platform.reference.sources.wikipedia import parse_changes

    broken = REAL_PAGE.replace("<th>Ticker</th><th>Security</th><th>Ticker</th>", "")
    with pytest.raises(MalformedPayload, match="changes table lacks column"):
        parse_changes(broken)
    with pytest.raises(MalformedPayload, match="not a date"):
        parse_changes(REAL_PAGE.replace("June 9, 2022", "sometime in 2022"))
