"""The sandbox over real loopback HTTP: yfinance and plain requests against every provider."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import threading
import time
from html.parser import HTMLParser
from http.client import HTTPConnection
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import pytest
import requests
import yfinance as yf
from yfinance import cache as yf_cache
from yfinance.data import SingletonMeta, YfData

from ingest_platform.core import calendars
from ingest_platform.market.sources.yahoo_session import routed_session
from ingest_platform.sandbox.control import FaultPlan
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

AS_OF = dt.date(2025, 6, 30)
KEY = "sandbox-test-key-0123"
REVOKED = "revoked-key-9876"
NY, LONDON = "America/New_York", "Europe/London"


@pytest.fixture(scope="module")
def market() -> MarketSimulator:
    return MarketSimulator(seed=21, as_of=AS_OF, revoked_keys=(REVOKED,))


@pytest.fixture(scope="module")
def server(market):
    with SandboxHTTPServer(market) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh_faults_and_counters(server):
    server.faults.clear()
    server.counters.reset()
    yield
    server.faults.clear()


@pytest.fixture
def http():
    with requests.Session() as session:
        yield session


@pytest.fixture
def yf_session(server, tmp_path, monkeypatch):
    """A routed session, with yfinance's process-wide state isolated for this test.

    yfinance keeps a singleton `YfData` (cookie, crumb, response cache) and persists cookies and
    timezones in SQLite caches. This test gets its own cache folder, a fresh cookie cache (so it
    performs, and can observe, its own cookie-and-crumb handshake), a new singleton, and no
    timezone cache: yfinance writes that one from its download threads, which SQLite sometimes
    answers with "database is locked". Everything is restored afterwards.
    """
    yf.set_tz_cache_location(str(tmp_path / "yfinance"))
    monkeypatch.setattr(yf_cache._TzCacheManager, "_tz_cache", yf_cache._TzCacheDummy())
    monkeypatch.setattr(yf_cache._CookieCacheManager, "_Cookie_cache", None)
    monkeypatch.delitem(SingletonMeta._instances, YfData, raising=False)
    return routed_session(server.base_url("yahoo"))


def _get(http, server, provider: str, path: str, **params) -> requests.Response:
    return http.get(server.base_url(provider) + path, params=params, timeout=10)


def _chart(http, server, symbol: str, start: str, end: str, **extra) -> requests.Response:
    """A chart request as yfinance sends it: exchange-local midnights, end exclusive."""
    tz = LONDON if symbol.endswith("=X") else NY
    params = {
        "period1": int(pd.Timestamp(start).tz_localize(tz).timestamp()),
        "period2": int(pd.Timestamp(end).tz_localize(tz).timestamp()),
        "interval": "1d",
        "includePrePost": "False",
        "events": "div,splits,capitalGains",
        **extra,
    }
    return _get(http, server, "yahoo", f"/v8/finance/chart/{symbol}", **params)


def _av(http, server, symbol: str, **params) -> requests.Response:
    params = {"function": "TIME_SERIES_DAILY", "symbol": symbol, "apikey": KEY, **params}
    return _get(http, server, "alpha_vantage", "/query", **params)


def _polygon(http, server, ticker: str, start: str, end: str, **params) -> requests.Response:
    params = {"apiKey": KEY, **params}
    path = f"/v2/aggs/ticker/{ticker}/range/1/day/{start}/{end}"
    return _get(http, server, "polygon", path, **params)


def _fred(http, server, path: str = "/series/observations", **params) -> requests.Response:
    return _get(http, server, "fred", path, **{"api_key": KEY, "file_type": "json", **params})


def _add_fault(http, server, **rule) -> None:
    response = http.post(server.url + "/_sandbox/faults", json={"faults": [rule]}, timeout=5)
    assert response.status_code == 200, response.text


# ---- Yahoo through yfinance ----------------------------------------------------------------


def _yahoo_columns(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.rename(
        columns={"Open": "open", "High": "high", "Low": "low", "Close": "close",
                 "Adj Close": "adj_close", "Volume": "volume"}
    )  # fmt: skip


def test_yfinance_download_matches_the_truth(server, market, yf_session):
    tickers = ["AAPL", "BRK-B", "EURUSD=X", "NVDA"]
    frame = yf.download(
        tickers,
        start="2024-05-01",
        end="2024-07-15",
        session=yf_session,
        auto_adjust=False,
        actions=True,
        progress=False,
        threads=2,
    )
    for ticker in tickers:
        truth = market.daily_bars(
            market.resolve("yahoo", ticker).symbol, "2024-05-01", "2024-07-14"
        )
        got = _yahoo_columns(frame.xs(ticker, axis=1, level="Ticker")).dropna(subset=["close"])
        assert list(got.index) == list(truth.index), ticker
        for column in ("open", "high", "low", "close", "adj_close"):
            np.testing.assert_allclose(got[column], truth[column], rtol=1e-12, err_msg=ticker)
        assert (got["volume"].astype(np.int64) == truth["volume"]).all()

    assert (frame.index.dayofweek < 5).all()
    brk, eurusd = frame["Close"]["BRK-B"].dropna(), frame["Close"]["EURUSD=X"].dropna()
    assert pd.Timestamp("2024-07-04") not in brk.index
    assert pd.Timestamp("2024-07-04") in eurusd.index  # FX trades on US holidays
    splits = frame["Stock Splits"]["NVDA"].dropna()
    assert splits.loc["2024-06-10"] == 10.0 and (splits.drop(pd.Timestamp("2024-06-10")) == 0).all()
    dividends = market.dividends("AAPL").set_index("date").amount.loc["2024-05-01":"2024-07-14"]
    paid = frame["Dividends"]["AAPL"]
    assert len(dividends) == 1
    assert paid[paid > 0].to_dict() == dividends.to_dict()

    assert server.counters.get("yahoo.cookie") >= 1
    assert server.counters.get("yahoo.crumb") >= 1
    assert set(server.counters.by_symbol("yahoo.chart")) == set(tickers)


def test_yfinance_ticker_history_has_dividends_and_adjclose(server, market, yf_session):
    history = yf.Ticker("JNJ", session=yf_session).history(
        start="2024-01-01", end="2025-01-01", auto_adjust=False
    )
    history.index = history.index.tz_localize(None)
    truth = market.daily_bars("JNJ", "2024-01-01", "2024-12-31")
    np.testing.assert_allclose(history["Adj Close"], truth.adj_close, rtol=1e-12)
    np.testing.assert_allclose(history["Close"], truth.close, rtol=1e-12)
    dividends = market.dividends("JNJ").set_index("date").amount.loc["2024"]
    paid = history["Dividends"]
    assert paid[paid > 0].to_dict() == dividends.to_dict() and len(dividends) == 4


def test_unknown_symbol_takes_yfinances_failure_path(server, yf_session, caplog):
    with caplog.at_level(logging.ERROR, logger="yfinance"):
        frame = yf.download(
            ["KO", "NOPE"], start="2024-03-01", end="2024-03-15", session=yf_session,
            auto_adjust=False, progress=False, threads=False,
        )  # fmt: skip
    assert frame["Close"]["NOPE"].isna().all()
    assert frame["Close"]["KO"].notna().all()
    assert any("NOPE" in record.getMessage() for record in caplog.records)
    assert server.counters.get("yahoo.chart", "NOPE") >= 1
    # Ticker.history looks a missing timezone up in `info` (twice per process); on Yahoo's 404
    # that lookup raises requests' HTTPError, which yfinance only catches for curl_cffi. After
    # that, history returns an empty frame and records "possibly delisted; no timezone found".
    outcomes = []
    for _ in range(3):
        try:
            outcomes.append(yf.Ticker("NOPE", session=yf_session).history(start="2024-03-01"))
        except requests.HTTPError as exc:
            assert exc.response.status_code == 404
            outcomes.append(None)
    assert outcomes[-1] is not None and outcomes[-1].empty


# ---- Yahoo over plain HTTP -----------------------------------------------------------------


def test_chart_payload_is_shaped_like_yahoos(http, server, market):
    response = _chart(http, server, "NVDA", "2024-06-03", "2024-06-15")
    assert response.status_code == 200
    result = response.json()["chart"]["result"][0]
    meta = result["meta"]
    for key in (
        "currency", "symbol", "exchangeName", "fullExchangeName", "instrumentType",
        "firstTradeDate", "regularMarketTime", "gmtoffset", "timezone", "exchangeTimezoneName",
        "regularMarketPrice", "chartPreviousClose", "priceHint", "currentTradingPeriod",
        "dataGranularity", "range", "validRanges",
    ):  # fmt: skip
        assert key in meta, key
    assert (meta["symbol"], meta["instrumentType"], meta["currency"]) == ("NVDA", "EQUITY", "USD")
    opens = pd.to_datetime(result["timestamp"], unit="s", utc=True).tz_convert(NY)
    assert {(t.hour, t.minute) for t in opens} == {(9, 30)}
    split = next(iter(result["events"]["splits"].values()))
    assert split["splitRatio"] == "10:1" and split["numerator"] / split["denominator"] == 10
    truth = market.daily_bars("NVDA", "2024-06-03", "2024-06-14")
    assert result["indicators"]["quote"][0]["close"] == truth.close.tolist()
    assert result["indicators"]["adjclose"][0]["adjclose"] == truth.adj_close.tolist()

    fx = _chart(http, server, "EURUSD=X", "2024-06-03", "2024-06-08").json()["chart"]["result"][0]
    assert fx["meta"]["exchangeTimezoneName"] == LONDON
    assert (fx["meta"]["instrumentType"], fx["meta"]["currency"]) == ("CURRENCY", "USD")
    midnights = pd.to_datetime(fx["timestamp"], unit="s", utc=True).tz_convert(LONDON)
    assert {(t.hour, t.minute) for t in midnights} == {(0, 0)} and len(midnights) == 5
    etf = _chart(http, server, "SPY", "2024-06-03", "2024-06-08").json()["chart"]["result"][0]
    assert etf["meta"]["instrumentType"] == "ETF"


def test_unknown_chart_symbol_is_yahoos_404(http, server):
    response = _chart(http, server, "NOPE", "2024-06-03", "2024-06-15")
    assert response.status_code == 404
    error = response.json()["chart"]
    assert error["result"] is None and error["error"]["code"] == "Not Found"


def test_crumb_needs_the_cookie_that_fc_sets_for_yahoo_com(http, server, market):
    refused = _get(http, server, "yahoo", "/v1/test/getcrumb")
    assert refused.status_code == 401 and "<html" not in refused.text.lower()
    session = routed_session(server.base_url("yahoo"))
    first = session.get("https://fc.yahoo.com", timeout=5)
    assert first.status_code == 404
    assert [c.domain for c in session.cookies if c.name == "A3"] == [".yahoo.com"]
    crumb = session.get("https://query1.finance.yahoo.com/v1/test/getcrumb", timeout=5)
    assert crumb.status_code == 200 and crumb.headers["Content-Type"].startswith("text/plain")
    with SandboxHTTPServer(MarketSimulator(seed=21, as_of=AS_OF)) as twin:
        again = routed_session(twin.base_url("yahoo"))
        again.get("https://fc.yahoo.com", timeout=5)
        assert again.get("https://query2.finance.yahoo.com/v1/test/getcrumb").text == crumb.text
    assert (server.counters.get("yahoo.cookie"), server.counters.get("yahoo.crumb")) == (1, 2)


def test_the_csrf_consent_fallback_also_yields_a_cookie(server):
    session = routed_session(server.base_url("yahoo"))
    form = session.get("https://guce.yahoo.com/consent", timeout=5)
    assert 'name="csrfToken"' in form.text and 'name="sessionId"' in form.text
    assert session.post("https://consent.yahoo.com/v2/collectConsent", timeout=5).ok
    assert session.get("https://guce.yahoo.com/copyConsent", timeout=5).ok
    assert session.get("https://query2.finance.yahoo.com/v1/test/getcrumb", timeout=5).ok
    assert server.counters.get("yahoo.consent") == 3


# ---- FRED ----------------------------------------------------------------------------------


def test_fred_vintages_differ_by_realtime_period(http, server, market):
    vintages = market.fred_vintages("UNRATE")
    (first_day, first), (revised_day, revised) = vintages.vintages[
        vintages.dates.index(dt.date(2024, 1, 1))
    ]
    window = {"observation_start": "2024-01-01", "observation_end": "2024-01-01"}

    def values(day: dt.date) -> list[str]:
        body = _fred(
            http, server, series_id="UNRATE", realtime_start=day, realtime_end=day, **window
        ).json()
        assert body["realtime_start"] == body["realtime_end"] == day.isoformat()
        return [o["value"] for o in body["observations"]]

    assert values(first_day - dt.timedelta(days=1)) == []
    assert values(first_day) == [f"{first:.1f}"]
    assert values(revised_day) == [f"{revised:.1f}"] != [f"{first:.1f}"]
    latest = _fred(http, server, series_id="UNRATE", **window).json()
    assert latest["observations"][0]["realtime_start"] == AS_OF.isoformat()
    assert latest["count"] == 1 and latest["units"] == "lin" and latest["file_type"] == "json"


def test_fred_writes_a_dot_for_a_missing_value(http, server):
    body = _fred(
        http,
        server,
        series_id="DGS10",
        observation_start="2024-11-01",
        observation_end="2024-11-30",
    ).json()
    by_date = {o["date"]: o["value"] for o in body["observations"]}
    assert by_date["2024-11-11"] == "."
    assert all(float(v) > 0 for d, v in by_date.items() if d != "2024-11-11" and v != ".")


def test_fred_paging_and_sort_order(http, server):
    everything = _fred(http, server, series_id="PAYEMS", sort_order="desc").json()
    page = _fred(http, server, series_id="PAYEMS", sort_order="desc", limit=5, offset=2).json()
    assert page["count"] == everything["count"] > 100
    assert page["observations"] == everything["observations"][2:7]
    dates = [o["date"] for o in everything["observations"]]
    assert dates == sorted(dates, reverse=True)


def test_fred_series_metadata(http, server):
    series = _fred(http, server, "/series", series_id="GDP").json()["seriess"][0]
    assert (series["id"], series["frequency_short"], series["units"]) == (
        "GDP",
        "Q",
        "Billions of Dollars",
    )
    assert series["observation_end"] < AS_OF.isoformat()
    assert series["last_updated"][:10] <= AS_OF.isoformat()


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"series_id": "NOPE"}, "Bad Request.  The series does not exist."),
        ({"series_id": "GDP", "api_key": ""}, "Variable api_key is not set"),
        ({"series_id": "GDP", "api_key": REVOKED}, "api_key is not registered"),
        ({"series_id": "GDP", "realtime_start": "2024-13-01"}, "realtime_start"),
    ],
)
def test_fred_errors_are_freds(http, server, params, message):
    response = _fred(http, server, **params)
    assert response.status_code == 400
    assert response.json()["error_code"] == 400 and message in response.json()["error_message"]
    assert KEY not in response.text and REVOKED not in response.text


# ---- World Bank ----------------------------------------------------------------------------


def test_worldbank_pages_rows_newest_first_with_nulls(http, server, market):
    rows, page, pages = [], 1, None
    while pages is None or page <= pages:
        header, chunk = _get(
            http, server, "worldbank", "/country/all/indicator/SL.UEM.TOTL.ZS",
            format="json", date="2015:2030", per_page=9, page=page,
        ).json()  # fmt: skip
        pages = header["pages"]
        rows += chunk
        page += 1
    assert header["total"] == len(rows) == 8 * (AS_OF.year - 1 - 2015 + 1)
    assert pages == math.ceil(len(rows) / 9) > 1
    for iso3 in ("USA", "JPN", "DEU"):
        mine = [r for r in rows if r["countryiso3code"] == iso3]
        assert [r["date"] for r in mine] == [str(y) for y in range(AS_OF.year - 1, 2014, -1)]
        truth = dict(market.worldbank_series("SL.UEM.TOTL.ZS", iso3))
        assert [r["value"] for r in mine] == [truth[int(r["date"])] for r in mine]
    latest = [r["value"] for r in rows if r["date"] == str(AS_OF.year - 1)]
    assert latest.count(None) == 4
    assert set(rows[0]) >= {
        "indicator",
        "country",
        "countryiso3code",
        "date",
        "value",
        "unit",
        "obs_status",
        "decimal",
    }


def test_worldbank_accepts_several_countries(http, server):
    _, rows = _get(
        http,
        server,
        "worldbank",
        "/country/USA;gb/indicator/NY.GDP.MKTP.CD",
        format="json",
        date="2020",
    ).json()
    assert sorted(r["countryiso3code"] for r in rows) == ["GBR", "USA"]
    assert all(isinstance(r["value"], int) for r in rows)


@pytest.mark.parametrize(
    "path", ["/country/USA/indicator/NOPE.NOPE", "/country/XYZ/indicator/NY.GDP.MKTP.CD"]
)
def test_worldbank_errors_are_message_arrays(http, server, path):
    response = _get(http, server, "worldbank", path, format="json")
    assert response.status_code == 200
    assert response.json()[0]["message"][0]["id"] == "120"


# ---- Alpha Vantage -------------------------------------------------------------------------


def test_alpha_vantage_compact_is_raw_newest_first_as_strings(http, server, market):
    body = _av(http, server, "NVDA").json()
    assert body["Meta Data"]["2. Symbol"] == "NVDA"
    assert body["Meta Data"]["5. Time Zone"] == "US/Eastern"
    days = body["Time Series (Daily)"]
    assert len(days) == 100 and list(days) == sorted(days, reverse=True)
    assert body["Meta Data"]["3. Last Refreshed"] == next(iter(days))
    truth = market.daily_bars("NVDA", provider="alpha_vantage").iloc[-100:]
    newest = truth.iloc[-1]
    volume = truth.volume.iloc[-1]
    assert days[truth.index[-1].strftime("%Y-%m-%d")] == {
        "1. open": f"{newest.open:.4f}", "2. high": f"{newest.high:.4f}",
        "3. low": f"{newest.low:.4f}", "4. close": f"{newest.close:.4f}",
        "5. volume": str(volume),
    }  # fmt: skip


def test_alpha_vantage_full_is_unadjusted_across_a_split(http, server, market):
    days = _av(http, server, "NVDA", outputsize="full").json()["Time Series (Daily)"]
    assert min(days) == "2015-01-02"
    before, after = float(days["2024-06-07"]["4. close"]), float(days["2024-06-10"]["4. close"])
    yahoo = market.daily_bars("NVDA", "2024-06-07", "2024-06-07").close.iloc[0]
    assert before / yahoo == pytest.approx(10, rel=1e-3) and before / after > 5


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"symbol": "NOPE"}, "Invalid API call"),
        ({"symbol": "EURUSD"}, "Invalid API call"),
        ({"symbol": "AAPL", "apikey": ""}, "apikey is invalid or missing"),
        ({"symbol": "AAPL", "apikey": REVOKED}, "apikey is invalid or missing"),
        ({"symbol": "AAPL", "function": "NOPE_SERIES"}, "does not exist"),
    ],
)
def test_alpha_vantage_errors_are_http_200_error_messages(http, server, params, key):
    response = _av(http, server, **params)
    assert response.status_code == 200 and list(response.json()) == ["Error Message"]
    assert key in response.json()["Error Message"] and REVOKED not in response.text


def test_alpha_vantage_serves_csv(http, server, market):
    lines = _av(http, server, "KO", datatype="csv").text.splitlines()
    assert lines[0] == "timestamp,open,high,low,close,volume" and len(lines) == 101
    assert lines[1].split(",")[0] == str(market.daily_bars("KO").index[-1].date())


# ---- Polygon -------------------------------------------------------------------------------


def _follow(http, first: requests.Response) -> tuple[list[dict], list[str]]:
    results, next_urls, response = [], [], first
    while True:
        body = response.json()
        assert body["status"] == "OK" and body["resultsCount"] == len(body.get("results", []))
        results += body.get("results", [])
        if "next_url" not in body:
            return results, next_urls
        next_urls.append(body["next_url"])
        response = http.get(body["next_url"], params={"apiKey": KEY}, timeout=10)


def test_polygon_paginates_through_next_url_without_the_key(http, market):
    small = MarketSimulator(seed=21, as_of=AS_OF, polygon_page_size=20)
    with SandboxHTTPServer(small) as server:
        first = _polygon(http, server, "AAPL", "2024-01-01", "2024-06-30")
        results, next_urls = _follow(http, first)
    truth = market.daily_bars("AAPL", "2024-01-01", "2024-06-30", provider="polygon")
    assert len(next_urls) == math.ceil(len(truth) / 20) - 1
    assert all("apiKey" not in u and u.startswith(server.base_url("polygon")) for u in next_urls)
    assert [r["c"] for r in results] == truth.close.tolist()
    assert [r["v"] for r in results] == truth.volume.tolist()
    midnights = pd.to_datetime([r["t"] for r in results], unit="ms", utc=True).tz_convert(NY)
    assert [t.date() for t in midnights] == [d.date() for d in truth.index]
    assert {(t.hour, t.minute) for t in midnights} == {(0, 0)}


def test_polygon_limit_and_descending_pages(http, server, market):
    results, next_urls = _follow(
        http, _polygon(http, server, "SPY", "2024-01-01", "2024-12-31", limit=100, sort="desc")
    )
    truth = market.daily_bars("SPY", "2024-01-01", "2024-12-31", provider="polygon")
    assert len(next_urls) == 2 and [r["c"] for r in results] == truth.close.tolist()[::-1]
    millis = _polygon(http, server, "SPY", results[-1]["t"], results[0]["t"]).json()
    assert millis["resultsCount"] == len(truth)


def test_polygon_adjusted_versus_raw_around_the_nvda_split(http, server):
    adjusted = _polygon(http, server, "NVDA", "2024-06-06", "2024-06-11").json()["results"]
    raw = _polygon(http, server, "NVDA", "2024-06-06", "2024-06-11", adjusted="false").json()[
        "results"
    ]
    ratios = [r["c"] / a["c"] for r, a in zip(raw, adjusted, strict=True)]
    assert ratios[:2] == pytest.approx([10, 10], rel=1e-3) and ratios[2:] == [1.0, 1.0]
    assert [r["v"] * 10 for r in raw[:2]] == [a["v"] for a in adjusted[:2]]


def test_polygon_fx_and_unknown_tickers(http, server, market):
    fx = _polygon(http, server, "C:EURUSD", "2024-07-01", "2024-07-05").json()
    assert fx["ticker"] == "C:EURUSD" and fx["resultsCount"] == 5  # 24/5: July 4th included
    unknown = _polygon(http, server, "NOPE", "2024-07-01", "2024-07-05")
    assert unknown.status_code == 200
    assert (unknown.json()["status"], unknown.json()["resultsCount"]) == ("OK", 0)
    assert "results" not in unknown.json()


def test_polygon_keys(http, server):
    path = server.base_url("polygon") + "/v2/aggs/ticker/KO/range/1/day/2024-07-01/2024-07-05"
    missing = http.get(path, timeout=5)
    assert missing.status_code == 401 and missing.json()["error"] == "API Key was not provided"
    assert missing.json()["status"] == "ERROR" and missing.json()["request_id"]
    bearer = http.get(path, headers={"Authorization": f"Bearer {KEY}"}, timeout=5)
    assert bearer.status_code == 200 and bearer.json()["resultsCount"] == 4
    revoked = http.get(path, params={"apiKey": REVOKED}, timeout=5)
    assert revoked.status_code == 401 and REVOKED not in revoked.text


# ---- Wikipedia -----------------------------------------------------------------------------


class _TableParser(HTMLParser):
    """Rows of the table with a given id, with each first cell's link."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id, self.depth = table_id, 0
        self.rows: list[list[str]] = []
        self.links: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and (self.depth or attrs.get("id") == self.table_id):
            self.depth += 1
        elif self.depth and tag == "tr":
            self.rows.append([])
        elif self.depth and tag in ("td", "th"):
            self._cell = []
        elif self.depth and tag == "a" and self._cell is not None and len(self.rows[-1]) == 0:
            self.links.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "table" and self.depth:
            self.depth -= 1
        elif self.depth and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _constituents_table(http, server) -> _TableParser:
    response = _get(http, server, "wikipedia", "/wiki/List_of_S%26P_500_companies")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    parser = _TableParser("constituents")
    parser.feed(response.text)
    return parser


def test_wikipedia_constituents_table_parses(http, server, market):
    table = _constituents_table(http, server)
    assert table.rows[0] == [
        "Symbol", "Security", "GICS Sector", "GICS Sub-Industry", "Headquarters Location",
        "Date added", "CIK", "Founded",
    ]  # fmt: skip
    body = table.rows[1:]
    truth = market.constituents()
    assert [r[0] for r in body] == [c.symbol for c in truth] and len(body) == 503
    brk = next(r for r in body if r[0] == "BRK.B")
    assert brk[1:3] == [market.instrument("BRK.B").name, market.instrument("BRK.B").sector]
    assert "https://www.nyse.com/quote/XNYS:BRK.B" in table.links
    assert all(len(r) == 8 and len(r[6]) == 10 for r in body)


def test_wikipedia_follows_constituent_changes_and_stale_serves_the_page_before_them(http):
    changes = [("2025-03-24", "ZZZZ", "AAPL", "Zed Corp.", "Energy"), ("2025-06-02", "YYYY", "KO")]
    with SandboxHTTPServer(
        MarketSimulator(seed=21, as_of=AS_OF, constituent_changes=changes)
    ) as server:
        now = {r[0] for r in _constituents_table(http, server).rows[1:]}
        _add_fault(http, server, kind="stale", endpoint="wikipedia", params={"sessions": 1})
        before = {r[0] for r in _constituents_table(http, server).rows[1:]}
    assert {"ZZZZ", "YYYY"} <= now and not {"AAPL", "KO"} & now
    assert "ZZZZ" in before and "YYYY" not in before and "KO" in before


def test_wikipedia_changes_table_is_the_shipped_history_in_the_real_markup(http, server, market):
    from ingest_platform.reference import membership_files
    from ingest_platform.reference.sources.wikipedia import parse_changes

    response = _get(http, server, "wikipedia", "/wiki/List_of_S%26P_500_companies")
    assert '<th colspan="2">Added</th>' in response.text  # the two-row header
    assert '<sup class="mw-ref reference"' in response.text  # footnote marks after reasons
    page = parse_changes(response.text)
    shipped = membership_files.changes_frame(market.history_changes())
    # Newest first on the page, oldest first in the file; the same rows, footnotes dropped.
    assert page.iloc[::-1].reset_index(drop=True).equals(shipped)
    svb = page[page["removed_ticker"] == "SIVB"].iloc[0]
    assert svb["date"] == "2023-03-15" and svb["added_ticker"] == "PODD"


def _former(market, answer):
    return next(
        i for i in market.instruments.values() if i.delisted == answer and i.asset_class == "equity"
    )


def test_yahoo_answers_former_members_as_it_does_delisted_and_still_listed_tickers(
    http, server, market
):
    gone = _former(market, "not_found")
    response = _chart(http, server, gone.yahoo_symbol, "2023-01-03", "2023-02-01")
    assert response.status_code == 404
    assert response.json()["chart"]["error"]["description"] == (
        "No data found, symbol may be delisted"
    )
    empty = _former(market, "empty")
    response = _chart(http, server, empty.yahoo_symbol, "2023-01-03", "2023-02-01")
    assert response.status_code == 200
    (result,) = response.json()["chart"]["result"]
    assert "timestamp" not in result and result["indicators"]["quote"] == [{}]
    # A former member that still trades (removed for its size) is served like any other.
    kept = next(
        i
        for i in market.instruments.values()
        if i.asset_class == "equity"
        and i.delisted is None
        and i.symbol not in market.constituents_symbols()
    )
    response = _chart(http, server, kept.yahoo_symbol, "2023-01-03", "2023-02-01")
    assert (
        response.status_code == 200
        and len(response.json()["chart"]["result"][0]["timestamp"]) == 20
    )


def test_yahoo_serves_a_renamed_ticker_only_under_its_new_name(http, server):
    old = _chart(http, server, "FB", "2021-01-04", "2021-02-01")
    assert old.status_code == 404
    new = _chart(http, server, "META", "2021-01-04", "2021-02-01")  # before the rename
    assert new.status_code == 200 and len(new.json()["chart"]["result"][0]["timestamp"]) == 19


# ---- faults --------------------------------------------------------------------------------


_RATE_LIMITED = {
    "yahoo.chart": (
        lambda h, s: _chart(h, s, "AAPL", "2024-06-03", "2024-06-08"),
        lambda r: "Too Many Requests" in r.text,
    ),
    "polygon.aggs": (
        lambda h, s: _polygon(h, s, "AAPL", "2024-06-03", "2024-06-08"),
        lambda r: "exceeded the maximum requests" in r.json()["error"],
    ),
    "fred.observations": (
        lambda h, s: _fred(h, s, series_id="GDP"),
        lambda r: r.json()["error_message"] == "Too Many Requests.  Exceeded Rate Limit",
    ),
    "alpha_vantage.daily": (lambda h, s: _av(h, s, "AAPL"), lambda r: "Note" in r.json()),
    "worldbank.indicator": (
        lambda h, s: _get(
            h, s, "worldbank", "/country/USA/indicator/SL.UEM.TOTL.ZS", format="json"
        ),
        lambda r: r.json()[0]["message"][0]["key"] == "Too Many Requests",
    ),
    "wikipedia.constituents": (
        lambda h, s: _get(h, s, "wikipedia", "/wiki/List_of_S%26P_500_companies"),
        lambda r: "<html" in r.text,
    ),
}


@pytest.mark.parametrize("endpoint", sorted(_RATE_LIMITED))
def test_rate_limit_is_a_provider_shaped_429_with_retry_after(http, server, endpoint):
    request_fn, check = _RATE_LIMITED[endpoint]
    server.faults.add("rate_limit", endpoint=endpoint, times=1, retry_after=3)
    limited = request_fn(http, server)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3" and check(limited)
    assert request_fn(http, server).status_code == 200
    assert server.counters.get(endpoint) == 2


def test_rate_limit_fires_times_then_heals_and_targets_one_symbol(http, server):
    _add_fault(http, server, kind="rate_limit", endpoint="yahoo", symbol="AAPL", times=2)
    assert _chart(http, server, "MSFT", "2024-06-03", "2024-06-08").status_code == 200
    statuses = [
        _chart(http, server, "AAPL", "2024-06-03", "2024-06-08").status_code for _ in range(3)
    ]
    assert statuses == [429, 429, 200]
    assert server.faults.active() == []
    assert server.counters.get("yahoo.chart", "AAPL") == 3


def test_server_error_uses_the_status_param(http, server):
    server.faults.add("server_error", endpoint="polygon.aggs", times=1, status=502)
    failed = _polygon(http, server, "KO", "2024-06-03", "2024-06-08")
    assert failed.status_code == 502 and failed.json()["status"] == "ERROR"
    server.faults.add("server_error", endpoint="fred", times=1)
    assert _fred(http, server, series_id="GDP").status_code == 503


def test_slow_answers_normally_after_the_delay(http, server):
    server.faults.add("slow", endpoint="alpha_vantage", times=1, delay=0.3)
    began = time.monotonic()
    response = _av(http, server, "KO")
    assert time.monotonic() - began >= 0.3
    assert response.status_code == 200 and len(response.json()["Time Series (Daily)"]) == 100


def test_timeout_holds_without_answering_then_closes(http, server):
    url = server.base_url("fred") + "/series"
    server.faults.add("timeout", endpoint="fred", times=1, delay=5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(url, params={"series_id": "GDP"}, timeout=0.3)
    server.faults.add("timeout", endpoint="fred", times=1, delay=0.2)
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(url, params={"series_id": "GDP"}, timeout=5)


def test_stop_does_not_hang_on_a_held_request():
    with SandboxHTTPServer(MarketSimulator(seed=21, as_of=AS_OF)) as server:
        server.faults.add("timeout", delay=30)
        outcome: list[BaseException] = []

        def held() -> None:
            try:
                requests.get(
                    server.base_url("wikipedia") + "/wiki/List_of_S%26P_500_companies", timeout=20
                )
            except requests.RequestException as exc:
                outcome.append(exc)

        client = threading.Thread(target=held)
        client.start()
        deadline = time.monotonic() + 10
        while server.counters.get("wikipedia.constituents") == 0:
            assert time.monotonic() < deadline, "the held request never reached the server"
            time.sleep(0.01)
        server.stop()
        client.join(5)  # the fault holds for 30 s: only a released request ends this soon
        assert outcome and not client.is_alive()


def test_truncated_json_is_cut_with_a_matching_content_length(http, server):
    server.faults.add("truncated_json", endpoint="polygon", times=1)
    response = _polygon(http, server, "KO", "2024-01-01", "2024-12-31")
    assert int(response.headers["Content-Length"]) == len(response.content) > 100
    with pytest.raises(ValueError):
        json.loads(response.content)
    complete = _polygon(http, server, "KO", "2024-01-01", "2024-12-31")
    assert len(complete.content) // 2 == len(response.content)


def test_throttles_are_http_200_on_alpha_vantage_and_a_429_elsewhere(http, server):
    server.faults.add("throttle_note", endpoint="alpha_vantage", times=1)
    server.faults.add("throttle_information", endpoint="alpha_vantage", times=1)
    note, information = _av(http, server, "KO"), _av(http, server, "KO")
    assert note.status_code == information.status_code == 200
    assert list(note.json()) == ["Note"] and "per minute" in note.json()["Note"]
    assert (
        list(information.json()) == ["Information"]
        and "per day" in information.json()["Information"]
    )
    server.faults.add("throttle_note", endpoint="polygon", times=1)
    assert _polygon(http, server, "KO", "2024-01-02", "2024-01-05").status_code == 429


def test_empty_answers_are_well_formed_without_rows(http, server):
    server.faults.add("empty", times=6)
    chart = _chart(http, server, "KO", "2024-06-03", "2024-06-08").json()["chart"]["result"][0]
    assert "timestamp" not in chart and chart["indicators"]["quote"] == [{}]
    assert _av(http, server, "KO").json()["Time Series (Daily)"] == {}
    polygon = _polygon(http, server, "KO", "2024-06-03", "2024-06-08").json()
    assert polygon["resultsCount"] == 0 and polygon["status"] == "OK"
    assert _fred(http, server, series_id="GDP").json()["observations"] == []
    worldbank = _get(
        http, server, "worldbank", "/country/USA/indicator/NY.GDP.MKTP.CD", format="json"
    ).json()
    assert worldbank[0]["total"] == 0 and worldbank[1] is None
    assert len(_constituents_table(http, server).rows) == 1  # the header only


def test_stale_drops_the_latest_sessions(http, server, market):
    sessions = calendars.sessions("2025-06-01", AS_OF, "XNYS")
    server.faults.add("stale", endpoint="alpha_vantage", symbol="KO", times=1, sessions=2)
    meta = _av(http, server, "KO").json()["Meta Data"]
    assert meta["3. Last Refreshed"] == sessions[-3].isoformat()
    assert (
        _av(http, server, "KO").json()["Meta Data"]["3. Last Refreshed"] == sessions[-1].isoformat()
    )
    server.faults.add("stale", endpoint="yahoo", times=1)
    chart = _chart(http, server, "KO", "2025-06-01", "2025-07-01").json()["chart"]["result"][0]
    last = pd.Timestamp(chart["timestamp"][-1], unit="s", tz="UTC").tz_convert(NY).date()
    assert last == sessions[-2]
    server.faults.add("stale", endpoint="fred", times=1)
    rows = _fred(http, server, series_id="GDP").json()["observations"]
    assert rows[-1]["date"] == str(market.fred_frame("GDP").date.iloc[-2].date())


def test_duplicate_rows_per_provider(http, server):
    server.faults.add("duplicate_rows", times=3)
    chart = _chart(http, server, "KO", "2024-06-03", "2024-06-08").json()["chart"]["result"][0]
    assert len(chart["timestamp"]) == 10 and len(set(chart["timestamp"])) == 5
    assert len(chart["indicators"]["quote"][0]["close"]) == 10
    text = _av(http, server, "KO").text
    latest = json.loads(text)["Meta Data"]["3. Last Refreshed"]
    assert (
        text.count(f'"{latest}": {{') == 2 and len(json.loads(text)["Time Series (Daily)"]) == 100
    )
    results = _polygon(http, server, "KO", "2024-06-03", "2024-06-07").json()["results"]
    assert len(results) == 10 and results[0] == results[1]


def test_fault_plans_load_from_a_file(http, tmp_path):
    plan = tmp_path / "faults.json"
    plan.write_text(
        json.dumps(
            {
                "faults": [
                    {
                        "kind": "server_error",
                        "endpoint": "worldbank",
                        "times": 1,
                        "params": {"status": 500},
                    }
                ]
            }
        )
    )
    with SandboxHTTPServer(
        MarketSimulator(seed=21, as_of=AS_OF), faults=FaultPlan.from_file(plan)
    ) as server:
        path = "/country/USA/indicator/NY.GDP.MKTP.CD"
        assert _get(http, server, "worldbank", path, format="json").status_code == 500
        assert _get(http, server, "worldbank", path, format="json").status_code == 200


# ---- control API, counters, transport, determinism -----------------------------------------


def test_control_endpoints_round_trip(http, server):
    control = server.url + "/_sandbox"
    assert http.get(control + "/health").json()["status"] == "ok"
    rule = {
        "kind": "server_error",
        "endpoint": "polygon.aggs",
        "symbol": "KO",
        "times": 1,
        "params": {"status": 500},
    }
    added = http.post(control + "/faults", json={"faults": [rule]}).json()
    assert added["added"] == 1
    listed = http.get(control + "/faults").json()["faults"]
    assert [(f["kind"], f["symbol"], f["times"], f["fired"]) for f in listed] == [
        ("server_error", "KO", 1, 0)
    ]
    assert _polygon(http, server, "KO", "2024-06-03", "2024-06-07").status_code == 500
    assert http.get(control + "/faults").json()["faults"] == []  # exhausted
    http.post(control + "/faults", json={"faults": [rule]})
    assert http.delete(control + "/faults").json()["faults"] == []
    assert _polygon(http, server, "KO", "2024-06-03", "2024-06-07").status_code == 200
    assert http.get(control + "/counters").json() == {"polygon.aggs": {"KO": 2}}
    assert http.delete(control + "/counters").json() == {}
    config = http.get(control + "/config").json()
    assert (config["seed"], config["as_of"], config["drift_bps"]) == (21, AS_OF.isoformat(), 2.0)
    assert config["revoked_keys"] == 1 and REVOKED not in json.dumps(config)
    assert config["providers"]["polygon"] == server.base_url("polygon")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "not JSON"),
        (b'{"faults": {}}', "expected a JSON object"),
        (b'{"faults": [{"kind": "explode"}]}', "unknown fault kind"),
        (b'{"faults": [{"kind": "slow", "times": "2"}]}', "times must be an integer"),
        (b'{"faults": [{"kind": "slow", "typo": 1}]}', "unknown field"),
    ],
)
def test_a_bad_fault_rule_is_a_400_that_says_why(http, server, body, message):
    response = http.post(server.url + "/_sandbox/faults", data=body, timeout=5)
    assert response.status_code == 400 and message in response.json()["error"]
    assert server.faults.active() == []


def test_every_request_is_counted_faulted_and_failed_ones_included(http, server):
    server.faults.add("server_error", endpoint="fred", times=1)
    _fred(http, server, series_id="GDP")
    _fred(http, server, series_id="NOPE")
    _fred(http, server, series_id="GDP", api_key="")
    _get(http, server, "worldbank", "/country/USA/indicator/NY.GDP.MKTP.CD", format="json")
    _get(http, server, "wikipedia", "/wiki/Some_other_page")
    assert server.counters.snapshot() == {
        "fred.observations": {"GDP": 2, "NOPE": 1},
        "worldbank.indicator": {"NY.GDP.MKTP.CD": 1},
        "wikipedia.other": {"-": 1},
    }


def test_keep_alive_with_content_length_on_every_response(server):
    host, port = urlsplit(server.url).netloc.split(":")
    connection = HTTPConnection(host, int(port), timeout=5)
    try:
        for path in (
            "/yahoo/v8/finance/chart/NOPE",
            "/fred/series?series_id=GDP",
            "/_sandbox/health",
            "/nowhere",
        ):
            connection.request("GET", path)
            response = connection.getresponse()
            body = response.read()
            assert int(response.getheader("Content-Length")) == len(body)
            assert response.version == 11 and not response.will_close
    finally:
        connection.close()


_CHART_2024 = {"period1": 1704067200, "period2": 1735689600, "interval": "1d", "events": "div"}
_DETERMINISM_REQUESTS = [
    ("yahoo", "/v8/finance/chart/BRK-B", _CHART_2024),
    ("yahoo", "/v8/finance/chart/USDJPY=X", {"range": "1mo", "interval": "1d"}),
    (
        "fred",
        "/series/observations",
        {"series_id": "CPIAUCSL", "api_key": KEY, "file_type": "json",
         "realtime_start": "2020-01-01", "realtime_end": "9999-12-31"},
    ),
    ("worldbank", "/country/all/indicator/FP.CPI.TOTL.ZG", {"format": "json", "per_page": 100}),
    (
        "alpha_vantage",
        "/query",
        {"function": "TIME_SERIES_DAILY", "symbol": "XOM", "outputsize": "full", "apikey": KEY},
    ),
    (
        "polygon",
        "/v2/aggs/ticker/C:USDJPY/range/1/day/2019-01-01/2025-06-30",
        {"limit": 300, "apiKey": KEY},
    ),
    ("wikipedia", "/wiki/List_of_S%26P_500_companies", {}),
]  # fmt: skip


def _bodies(server: SandboxHTTPServer, http) -> list[bytes]:
    bodies = []
    for provider, path, params in _DETERMINISM_REQUESTS:
        response = http.get(server.base_url(provider) + path, params=params, timeout=10)
        assert response.status_code == 200, (provider, response.text[:200])
        bodies.append(response.content.replace(server.url.encode(), b"<sandbox>"))
    return bodies


def test_same_seed_gives_byte_identical_bodies_and_another_seed_does_not(http, server):
    with SandboxHTTPServer(MarketSimulator(seed=21, as_of=AS_OF)) as twin:
        assert _bodies(twin, http) == _bodies(server, http)
    with SandboxHTTPServer(MarketSimulator(seed=22, as_of=AS_OF)) as other:
        differing = [
            a != b for a, b in zip(_bodies(other, http), _bodies(server, http), strict=True)
        ]
    assert differing == [True] * 6 + [False]  # the constituents table does not depend on the seed


def test_base_urls_and_lifecycle():
    server = SandboxHTTPServer(MarketSimulator(seed=21, as_of=AS_OF))
    with pytest.raises(RuntimeError):
        server.url  # noqa: B018
    with server:
        assert server.url.startswith("http://127.0.0.1:")
        assert server.base_url("worldbank") == server.url + "/worldbank/v2"
        assert server.base_url("alpha_vantage") == server.url + "/alphavantage"
        with pytest.raises(ValueError, match="unknown provider"):
            server.base_url("bloomberg")
    server.stop()  # idempotent
