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
    # The refreshed snapshot is still a valid universe.
    assert len(universe.load_instruments(reference_copy)) == 555
