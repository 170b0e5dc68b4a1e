"""The sandbox's FRED releases, vintage dates and traps, and the World Bank's XML answer."""

from __future__ import annotations

import datetime as dt
import logging

import pytest
import requests

from ingest_platform.sandbox.data import FRED_RELEASES, FRED_SERIES, MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

AS_OF = dt.date(2026, 11, 20)
KEY = "sandbox-fred-key-4567"


@pytest.fixture(scope="module")
def market() -> MarketSimulator:
    return MarketSimulator(seed=3, as_of=AS_OF)


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


def fred(server, path: str, **params) -> requests.Response:
    query = {"api_key": KEY, "file_type": "json", **params}
    return requests.get(server.base_url("fred") + path, params=query, timeout=10)


@pytest.mark.parametrize("series_id", sorted(FRED_SERIES))
def test_every_vintage_lands_on_a_date_of_the_series_release(market, series_id):
    spec = FRED_SERIES[series_id]
    release_dates = set(market.fred_release_dates(spec.release_id))
    vintage_dates = market.fred_vintage_dates(series_id)
    assert vintage_dates and set(vintage_dates) <= release_dates
    assert max(vintage_dates) <= AS_OF
    versions = market.fred_vintages(series_id).vintages
    assert all(len({s for s, _ in v}) == len(v) for v in versions)  # one vintage per day


def test_monthly_series_are_released_after_the_month_and_revised_later(market):
    payrolls = market.fred_vintages("PAYEMS")
    versions = payrolls.vintages[payrolls.dates.index(dt.date(2024, 3, 1))]
    first, *revisions = (start for start, _ in versions)
    assert dt.date(2024, 4, 1) < first < dt.date(2024, 4, 10) and first.weekday() == 4
    assert len(revisions) == 2 and first < revisions[0] < revisions[1] < dt.date(2024, 7, 1)
    gdp = market.fred_vintages("GDP")
    estimates = [s for s, _ in gdp.vintages[gdp.dates.index(dt.date(2024, 1, 1))]]
    assert [d.month for d in estimates] == [4, 5, 6]  # advance, second, third


def test_series_release_and_release_dates_agree_with_observations(server, market):
    release = fred(server, "/series/release", series_id="CPIAUCSL").json()["releases"][0]
    assert (release["id"], release["name"]) == (10, "Consumer Price Index")

    observations = fred(
        server,
        "/series/observations",
        series_id="CPIAUCSL",
        realtime_start="2020-01-01",
        realtime_end="9999-12-31",
        observation_start="2020-01-01",
    ).json()["observations"]
    appeared = {o["realtime_start"] for o in observations if o["realtime_start"] > "2020-01-01"}

    def dates(**params) -> list[str]:
        body = fred(server, "/release/dates", release_id=10, **params).json()
        assert body["count"] == len(body["release_dates"])
        return [d["date"] for d in body["release_dates"]]

    past = dates(realtime_start="2020-01-01", realtime_end="9999-12-31")
    assert appeared <= set(past) and max(past) <= AS_OF.isoformat()
    scheduled = dates(
        realtime_start="2020-01-01",
        realtime_end="9999-12-31",
        include_release_dates_with_no_data="true",
    )
    future = [d for d in scheduled if d > AS_OF.isoformat()]
    assert set(past) <= set(scheduled) and 12 <= len(future) <= 14  # through next year's end
    assert dates() == [d for d in past if d >= "2026-01-01"]  # FRED's default: this year on


def test_vintagedates_lists_every_vintage_and_pages(server, market):
    truth = [d.isoformat() for d in market.fred_vintage_dates("UNRATE")]
    body = fred(server, "/series/vintagedates", series_id="UNRATE").json()
    assert body["vintage_dates"] == truth and body["count"] == len(truth)
    page = fred(server, "/series/vintagedates", series_id="UNRATE", limit=5, offset=3).json()
    assert page["vintage_dates"] == truth[3:8]


def test_more_than_the_vintage_cap_is_refused_with_freds_message(server, market):
    everything = {
        "series_id": "DGS10",
        "realtime_start": "2015-01-01",
        "realtime_end": "9999-12-31",
    }
    response = fred(server, "/series/observations", **everything)
    assert response.status_code == 400
    count = len(market.fred_vintage_dates("DGS10"))
    assert count > 2000
    assert response.json()["error_message"] == (
        f"Bad Request.  There are {count} vintage dates in the specified real-time period: "
        "2015-01-01 to 9999-12-31.  This exceeds the maximum number of vintage dates allowed "
        "(2000)."
    )
    recent = {**everything, "realtime_start": "2022-01-01"}
    assert fred(server, "/series/observations", **recent).status_code == 200


def test_the_singular_vintage_date_is_silently_ignored_like_fred_does(server, market):
    versions = market.fred_vintages("UNRATE")
    (first_day, first_value), (_, final_value) = versions.vintages[
        versions.dates.index(dt.date(2024, 1, 1))
    ]
    body = fred(
        server,
        "/series/observations",
        series_id="UNRATE",
        observation_start="2024-01-01",
        observation_end="2024-01-01",
        vintage_date=first_day.isoformat(),  # not a FRED parameter
    ).json()
    assert [o["value"] for o in body["observations"]] == [f"{final_value:.1f}"]
    assert f"{final_value:.1f}" != f"{first_value:.1f}"  # the trap: revised, not as of then


def test_a_series_without_vintages_answers_only_for_today(server):
    spec = next(s for s in FRED_SERIES.values() if not s.alfred)
    today = fred(server, "/series/observations", series_id=spec.id)
    assert today.status_code == 200 and today.json()["observations"]
    for path in ("/series/observations", "/series/vintagedates"):
        past = fred(server, path, series_id=spec.id, realtime_start="2024-01-01")
        assert past.status_code == 400
        assert "does not exist in ALFRED" in past.json()["error_message"]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/release/dates", {"release_id": "999999"}, "The release does not exist."),
        ("/release/dates", {}, "Variable release_id is not set."),
        ("/series/release", {"series_id": "NOPE"}, "The series does not exist."),
        ("/series/vintagedates", {"series_id": "NOPE"}, "The series does not exist."),
    ],
)
def test_release_endpoints_answer_freds_errors(server, path, params, message):
    response = fred(server, path, **params)
    assert response.status_code == 400 and message in response.json()["error_message"]


def test_faults_reach_every_fred_endpoint(server):
    server.faults.add("rate_limit", endpoint="fred.release_dates", times=1, retry_after=3)
    limited = fred(server, "/release/dates", release_id=50)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert limited.json()["error_code"] == 429
    server.faults.add("truncated_json", endpoint="fred.vintagedates", symbol="GDP", times=1)
    with pytest.raises(requests.JSONDecodeError):
        fred(server, "/series/vintagedates", series_id="GDP").json()
    server.faults.add("server_error", endpoint="fred.series_release", times=1, status=500)
    assert fred(server, "/series/release", series_id="GDP").status_code == 500
    assert server.counters.by_symbol("fred.release_dates") == {"50": 1}
    assert server.counters.by_symbol("fred.vintagedates") == {"GDP": 1}


def test_payloads_are_byte_identical_for_the_same_seed(server):
    other = MarketSimulator(seed=3, as_of=AS_OF)
    with SandboxHTTPServer(other) as twin:
        for path, params in (
            ("/release/dates", {"release_id": 53, "include_release_dates_with_no_data": "true"}),
            ("/series/observations", {"series_id": "PAYEMS", "realtime_start": "2024-01-01"}),
            ("/series/vintagedates", {"series_id": "ICSA"}),
        ):
            assert fred(server, path, **params).content == fred(twin, path, **params).content


def test_every_release_has_a_simulated_series():
    assert {s.release_id for s in FRED_SERIES.values()} == set(FRED_RELEASES)


def test_the_world_bank_sometimes_answers_xml(server):
    server.faults.add("xml_answer", endpoint="worldbank.indicator", times=1)
    url = server.base_url("worldbank") + "/country/USA/indicator/NY.GDP.MKTP.KD.ZG"
    xml = requests.get(url, params={"format": "json"}, timeout=10)
    assert xml.status_code == 200 and xml.headers["Content-Type"].startswith("application/xml")
    assert xml.text.startswith("<?xml") and "NY.GDP.MKTP.KD.ZG" in xml.text
    assert requests.get(url, params={"format": "json"}, timeout=10).json()[0]["total"] > 0


def test_the_sandbox_never_logs_a_client_key(server, caplog):
    caplog.set_level(logging.DEBUG, logger="ingest_platform.sandbox.http")
    assert fred(server, "/series", series_id="GDP").ok
    assert "api_key=***" in caplog.text and KEY not in caplog.text
