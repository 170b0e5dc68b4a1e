"""The `economic_indicators` flow as a plain function: sources and keys in, a typed report out.

The asset tests run it through Dagster; here it runs against the sandbox with no Dagster at
all, so the report's figures are checked against what the lake holds and what was asked.
"""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from ingest_platform.core import settings
from ingest_platform.core.http import HttpClient
from ingest_platform.economic.indicators import ingest_indicators
from ingest_platform.economic.schema import ECONOMIC_INDICATORS
from ingest_platform.economic.sources.fred import FredSource
from ingest_platform.economic.sources.worldbank import WorldBankSource
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

KEYS = ["2025-01-01", "2025-02-01", "2025-03-01"]
MAPPINGS = pd.DataFrame(
    [
        ("cpi", "fred", "CPIAUCSL", "monthly", "vintages", None),
        ("no_such", "fred", "NOSUCHSERIES", "monthly", "vintages", None),
        ("gdp_can", "worldbank", "NY.GDP.MKTP.CD/CAN", "annual", "publication_lag", 180),
    ],
    columns=["variable", "source", "series_id", "frequency", "knowledge_basis", "lag_days"],
)


@pytest.fixture
def sandbox(monkeypatch):
    with SandboxHTTPServer(MarketSimulator(seed=7, as_of="2025-03-31", large_drifts=())) as sb:
        monkeypatch.setenv(settings.NOW_ENV, "2025-04-02T08:00:00+00:00")
        yield sb


@pytest.mark.slow
def test_the_report_names_failures_and_counts_what_it_asked_and_kept(lake, sandbox, caplog):
    key = "fred-flow-key"
    fred = FredSource(HttpClient("fred", secrets=[key]), key, base_url=f"{sandbox.url}/fred")
    worldbank = WorldBankSource(HttpClient("worldbank"), base_url=f"{sandbox.url}/worldbank/v2")
    log = logging.getLogger("test_indicators")
    with caplog.at_level(logging.WARNING, logger="test_indicators"):
        report = ingest_indicators(lake, MAPPINGS, KEYS[::-1], fred, 1, worldbank, 1, log)

    assert report.keys == KEYS
    assert report.requested == 3 and list(report.failures) == ["NOSUCHSERIES"]
    assert "NOSUCHSERIES" in caplog.text
    assert report.fred_requests >= 2 and report.worldbank_requests >= 1
    stored = ECONOMIC_INDICATORS.read(lake, KEYS)
    assert len(stored) == report.write.rows > 0
    assert set(stored["variable"]) <= {"cpi", "gdp_can"} and "cpi" in set(stored["variable"])
    assert report.rows_fetched >= len(stored)
    assert lake.partition_keys(ECONOMIC_INDICATORS.name) == KEYS
