"""World Bank source: stages on crafted payloads, then end to end against the sandbox."""

from __future__ import annotations

import datetime as dt
import json
import math
import random

import numpy as np
import pandas as pd
import pytest

from ingest_platform.core.http import HttpClient, RetryPolicy
from ingest_platform.core.http.errors import (
    MalformedPayload,
    RateLimited,
    SourceError,
    SourceUnavailable,
    UnknownSymbol,
)
from ingest_platform.economic.sources.batch import fetch_each
from ingest_platform.economic.sources.worldbank import (
    COLUMNS,
    WorldBankSource,
    empty_frame,
    period_start,
)
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

AS_OF = dt.date(2026, 11, 20)
GROWTH = "NY.GDP.MKTP.KD.ZG"


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def wb_row(year: int, value, iso3: str = "USA", iso2: str = "US") -> dict:
    return {
        "indicator": {"id": GROWTH, "value": "GDP growth (annual %)"},
        "country": {"id": iso2, "value": "United States"},
        "countryiso3code": iso3,
        "date": str(year),
        "value": value,
        "unit": "",
        "obs_status": "",
        "decimal": 1,
    }


def header(total, page=1, pages=1, per_page=50, lastupdated="2026-10-15") -> dict:
    return {
        "page": page,
        "pages": pages,
        "per_page": per_page,
        "total": total,
        "sourceid": "2",
        "lastupdated": lastupdated,
    }


def parse(payload, status: int = 200, text: str | None = None):
    body = text if text is not None else json.dumps(payload)
    return WorldBankSource(HttpClient(SOURCE_NAME)).interpret(GROWTH, "USA")(status, body)


SOURCE_NAME = "worldbank"


# ---- stages ----------------------------------------------------------------------------------


def test_paging_numbers_are_read_whether_numbers_or_strings():
    page = parse([header("2", page="1", pages="1", per_page="50"), [wb_row(2023, 2.5)] * 2])
    assert (page.page, page.pages, page.per_page, page.total) == (1, 1, 50, 2)
    with pytest.raises(MalformedPayload, match="unreadable paging header"):
        parse([header("lots"), []])


def test_rows_become_canonical_with_null_values_and_lastupdated():
    source = WorldBankSource(HttpClient(SOURCE_NAME))
    page = parse([header(3), [wb_row(2024, None), wb_row(2023, 2.9), wb_row(2022, 1.9)]])
    frame = source.transform([page], GROWTH, "USA")
    assert frame.columns.tolist() == COLUMNS
    assert frame.dtypes.astype(str).to_dict() == {
        "indicator": "object",
        "country": "object",
        "date": "datetime64[ns]",
        "value": "float64",
        "lastupdated": "datetime64[ns]",
    }
    assert frame["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2022-01-01",
        "2023-01-01",
        "2024-01-01",
    ]
    assert frame["value"].tolist()[:2] == [1.9, 2.9] and np.isnan(frame["value"].iloc[2])
    assert (frame["lastupdated"] == pd.Timestamp("2026-10-15")).all()
    assert (frame["country"] == "USA").all() and (frame["indicator"] == GROWTH).all()
    empty = source.transform([parse([header(0), None])], GROWTH, "USA")
    assert empty.columns.tolist() == COLUMNS and empty.empty


def test_duplicated_rows_are_dropped_and_conflicting_ones_refused():
    source = WorldBankSource(HttpClient(SOURCE_NAME))
    twice = parse([header(2), [wb_row(2023, 2.9), wb_row(2023, 2.9)]])
    assert len(source.transform([twice], GROWTH, "USA")) == 1
    clash = parse([header(2), [wb_row(2023, 2.9), wb_row(2023, 3.1)]])
    with pytest.raises(MalformedPayload, match="two values for 2023"):
        source.transform([clash], GROWTH, "USA")


def test_periods_start_on_their_first_day():
    assert period_start("2023") == pd.Timestamp("2023-01-01")
    assert period_start("2023Q3") == pd.Timestamp("2023-07-01")
    assert period_start("2023M11") == pd.Timestamp("2023-11-01")
    with pytest.raises(ValueError, match="not a World Bank period"):
        period_start("FY2023")


@pytest.mark.parametrize(
    ("message", "error", "fragment"),
    [
        ({"id": "120", "key": "Invalid value", "value": "The provided parameter value is not "
          "valid"}, UnknownSymbol, f"unknown indicator '{GROWTH}' or country 'USA'"),
        ({"id": "175", "key": "Invalid format", "value": "The indicator was not found."},
         UnknownSymbol, "The indicator was not found."),
        ({"id": "150", "key": "Language with an ID of xx is not yet supported", "value": ""},
         SourceError, "error 150"),
    ],
)  # fmt: skip
def test_error_arrays_become_named_typed_errors(message, error, fragment):
    with pytest.raises(error, match=fragment) as raised:
        parse([{"message": [message]}])
    assert type(raised.value) is error and raised.value.symbol == f"{GROWTH}/USA"


def test_an_xml_answer_is_malformed_and_named():
    xml = '\ufeff<?xml version="1.0" encoding="utf-8"?><wb:data page="1"></wb:data>'
    with pytest.raises(MalformedPayload, match=rf"answered XML instead of JSON for indicator "
                       rf"{GROWTH} in USA") as raised:  # fmt: skip
        parse(None, text=xml)
    assert raised.value.transient  # worth a retry: the next answer is usually JSON
    with pytest.raises(MalformedPayload, match="invalid JSON"):
        parse(None, text='[{"page": 1, "pages"')
    with pytest.raises(MalformedPayload, match=r"expected \[header, rows\]"):
        parse({"page": 1})


# ---- end to end against the sandbox ----------------------------------------------------------


@pytest.fixture(scope="module")
def market() -> MarketSimulator:
    return MarketSimulator(seed=9, as_of=AS_OF)


@pytest.fixture(scope="module")
def server(market):
    with SandboxHTTPServer(market) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server):
    server.faults.clear()
    server.counters.reset()
    yield
    server.faults.clear()


def make_source(server, sleeps=None, **kwargs) -> WorldBankSource:
    http = HttpClient(
        "worldbank",
        retry=RetryPolicy(max_attempts=3, backoff_base=0.01, max_retry_after=30),
        sleep=sleeps if sleeps is not None else Sleeps(),
        rng=random.Random(0),
    )
    return WorldBankSource(http, base_url=server.base_url("worldbank"), **kwargs)


def truth(market, indicator: str, iso3: str, first: int, last: int) -> list[tuple[int, float]]:
    return [(y, v) for y, v in market.worldbank_series(indicator, iso3) if first <= y <= last]


def test_one_request_per_indicator_and_country(server, market):
    source = make_source(server)
    countries = ["USA", "CHN", "DEU", "JPN", "GBR"]
    frames = {c: source.indicator(GROWTH, c, 2000, 2030) for c in countries}
    assert server.counters.by_symbol("worldbank.indicator") == {GROWTH: len(countries)}
    for country, frame in frames.items():
        expected = truth(market, GROWTH, country, 2000, 2030)
        assert frame["date"].dt.year.tolist() == [y for y, _ in expected]
        np.testing.assert_array_equal(
            frame["value"].to_numpy(), [np.nan if v is None else v for _, v in expected]
        )
        assert (frame["country"] == country).all()
        assert (frame["lastupdated"] == pd.Timestamp(AS_OF)).all()
    latest = [frames[c]["value"].iloc[-1] for c in countries]
    assert any(np.isnan(v) for v in latest)  # the newest year is not in for every country


def test_pages_are_followed_until_the_total(server, market):
    frame = make_source(server, per_page=7).indicator("SL.UEM.TOTL.ZS", "DEU", 1990, 2030)
    years = truth(market, "SL.UEM.TOTL.ZS", "DEU", 1990, 2030)
    assert len(frame) == len(years)
    assert server.counters.get("worldbank.indicator") == math.ceil(len(years) / 7) > 3


def test_an_unknown_indicator_or_country_is_named_and_not_retried(server):
    source = make_source(server)
    with pytest.raises(UnknownSymbol, match=r"unknown indicator 'NOPE\.NOPE' or country 'USA'"):
        source.indicator("NOPE.NOPE", "USA", 2000, 2020)
    with pytest.raises(UnknownSymbol, match=f"unknown indicator '{GROWTH}' or country 'XYZ'"):
        source.indicator(GROWTH, "XYZ", 2000, 2020)
    assert server.counters.get("worldbank.indicator") == 2


def test_an_xml_answer_is_retried_and_named_when_it_persists(server, market):
    server.faults.add("xml_answer", endpoint="worldbank.indicator", times=1)
    frame = make_source(server).indicator(GROWTH, "USA", 2010, 2020)
    assert len(frame) == 11 and server.counters.get("worldbank.indicator") == 2
    server.faults.add("xml_answer", endpoint="worldbank.indicator")
    with pytest.raises(MalformedPayload, match=rf"XML instead of JSON for indicator {GROWTH} in "
                       r"JPN .*gave up after 3 attempt\(s\)"):  # fmt: skip
        make_source(server).indicator(GROWTH, "JPN", 2010, 2020)


def test_throttling_outages_and_truncation_are_retried(server):
    server.faults.add("rate_limit", endpoint="worldbank.indicator", times=1, retry_after=4)
    server.faults.add("server_error", endpoint="worldbank.indicator", times=1, status=502)
    sleeps = Sleeps()
    frame = make_source(server, sleeps=sleeps).indicator(GROWTH, "USA", 2010, 2020)
    assert len(frame) == 11 and server.counters.get("worldbank.indicator") == 3
    assert sleeps[0] == pytest.approx(4, abs=0.05)
    server.faults.add("truncated_json", endpoint="worldbank.indicator", times=1)
    assert make_source(server).indicator(GROWTH, "USA", 2010, 2020).equals(frame)
    assert server.counters.get("worldbank.indicator") == 5
    server.faults.add("server_error", endpoint="worldbank.indicator", status=503)
    with pytest.raises(SourceUnavailable, match="HTTP 503"):
        make_source(server).indicator(GROWTH, "USA", 2010, 2020)
    server.faults.clear()
    server.faults.add("rate_limit", endpoint="worldbank.indicator", retry_after=1)
    with pytest.raises(RateLimited):
        make_source(server).indicator(GROWTH, "USA", 2010, 2020)


def test_a_batch_names_each_failure_and_keeps_the_rest(server):
    source = make_source(server)
    keys = ["NY.GDP.MKTP.KD.ZG/USA", "NOPE.NOPE/USA", "FP.CPI.TOTL.ZG/JPN"]

    def one(key: str) -> pd.DataFrame:
        indicator, country = key.split("/")
        return source.indicator(indicator, country, 2015, 2020)

    result = fetch_each("worldbank", keys, one, empty_frame, threads=2)
    assert result.requested == keys and set(result.failures) == {"NOPE.NOPE/USA"}
    assert "unknown indicator 'NOPE.NOPE'" in result.failure_messages()["NOPE.NOPE/USA"]
    assert result.failure_rate == pytest.approx(1 / 3)
    assert sorted(set(result.frame["country"])) == ["JPN", "USA"] and len(result.frame) == 12
