"""Extract/transform stages of each bar source, on crafted payloads (no network)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from ingest_platform.core.http import HttpClient
from ingest_platform.core.http.errors import (
    AuthenticationFailed,
    MalformedPayload,
    PremiumOnly,
    QuotaExhausted,
    RateLimited,
    UnknownSymbol,
)
from ingest_platform.market.schema import CORPORATE_ACTIONS, YAHOO_DAILY_BARS
from ingest_platform.market.sources.alpha_vantage import AlphaVantageSource
from ingest_platform.market.sources.bars import Instrument, SymbolAnswer, fetch_bars
from ingest_platform.market.sources.polygon import PolygonSource
from ingest_platform.market.sources.yahoo import YahooSource

NOW = pd.Timestamp("2024-03-09 01:00", tz="UTC")
IBM = Instrument("IBM", "IBM", "equity", "XNYS")
BRK = Instrument("BRK.B", "BRK-B", "equity", "XNYS")
EURUSD = Instrument("EURUSD", "EURUSD=X", "fx", "24/5")


def av_source() -> AlphaVantageSource:
    return AlphaVantageSource(HttpClient("alpha_vantage"), api_key="k" * 16, note_retry_after=7)


def test_alpha_vantage_transform_reads_string_numbers_newest_first():
    payload = {
        "Meta Data": {"2. Symbol": "IBM"},
        "Time Series (Daily)": {
            "2024-03-08": {
                "1. open": "195.0",
                "2. high": "197.5",
                "3. low": "194.1",
                "4. close": "196.2",
                "5. volume": "3100200",
            },
            "2024-03-07": {
                "1. open": "193.0",
                "2. high": "195.0",
                "3. low": "192.5",
                "4. close": "194.9",
                "5. volume": "2800000",
            },
            "2024-02-01": {
                "1. open": "180.0",
                "2. high": "181.0",
                "3. low": "179.0",
                "4. close": "180.5",
                "5. volume": "100",
            },
        },
    }
    bars = av_source().transform(payload, IBM, dt.date(2024, 3, 1), dt.date(2024, 3, 8), NOW)
    assert bars["date"].dt.strftime("%Y-%m-%d").tolist() == ["2024-03-07", "2024-03-08"]
    assert bars["close"].tolist() == [194.9, 196.2]
    assert bars["volume"].tolist() == [2800000, 3100200]
    assert bars["adj_close"].isna().all()  # this endpoint has no adjusted close
    YAHOO_DAILY_BARS.validate(bars)


@pytest.mark.parametrize(
    ("payload", "error", "fragment"),
    [
        (
            {"Note": "Thank you for using Alpha Vantage! 5 calls per minute"},
            RateLimited,
            "throttled",
        ),
        (
            {"Information": "Our standard API rate limit is 25 requests per day."},
            QuotaExhausted,
            "daily quota",
        ),
        (
            {"Error Message": "Invalid API call. Please retry or visit the documentation"},
            UnknownSymbol,
            "Invalid API call",
        ),
        (
            {"Error Message": "the parameter apikey is invalid or missing"},
            AuthenticationFailed,
            "apikey",
        ),
        ({"Meta Data": {}}, MalformedPayload, "Time Series"),
        (["not", "an", "object"], MalformedPayload, "JSON object"),
    ],
)
def test_alpha_vantage_errors_in_http_200_become_typed_errors(payload, error, fragment):
    with pytest.raises(error, match=fragment) as info:
        av_source().interpret("IBM")(200, payload)
    assert info.value.symbol == "IBM" and info.value.source == "alpha_vantage"


#: Alpha Vantage's three Information notices, as the real service words them.
DAILY = (
    "We have detected your API key as {key} and our standard API rate limit is 25 requests "
    "per day. Please subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits."
)
BURST = (
    "Thank you for using Alpha Vantage! Please consider spreading out your free API requests "
    "more sparingly (1 request per second). You may subscribe to any of the premium plans at "
    "https://www.alphavantage.co/premium/ to lift the free key rate limit (25 requests per day) "
    "and instantly access all premium endpoints"
)
PREMIUM = (
    "Thank you for using Alpha Vantage! The **outputsize=full** parameter value is a premium "
    "feature for the TIME_SERIES_DAILY endpoint. You may subscribe to any of the premium plans "
    "at https://www.alphavantage.co/premium/ to instantly unlock all premium features"
)


def test_alpha_vantage_tells_its_three_information_notices_apart():
    interpret = av_source().interpret("IBM")
    with pytest.raises(RateLimited) as note:
        interpret(200, {"Note": "slow down"})
    assert note.value.retry_after == 7
    with pytest.raises(RateLimited) as burst:
        interpret(200, {"Information": BURST})
    assert not isinstance(burst.value, QuotaExhausted) and burst.value.retry_after == 1.0
    with pytest.raises(QuotaExhausted, match="daily quota"):
        interpret(200, {"Information": DAILY.format(key="k")})
    with pytest.raises(PremiumOnly, match="premium") as premium:
        interpret(200, {"Information": PREMIUM})
    assert not premium.value.transient


def test_alpha_vantage_skips_fx_and_needs_a_key():
    assert not AlphaVantageSource.covers(EURUSD) and AlphaVantageSource.covers(BRK)
    with pytest.raises(AuthenticationFailed, match="ALPHA_VANTAGE_API_KEY"):
        AlphaVantageSource(HttpClient("alpha_vantage"), api_key="")


def test_polygon_transform_dates_stocks_in_new_york_and_fx_in_utc():
    source = PolygonSource(HttpClient("polygon"))
    # 2024-03-08 00:00 America/New_York = 05:00 UTC
    stock = source.transform(
        [
            {
                "o": 10,
                "h": 11,
                "l": 9.5,
                "c": 10.5,
                "v": 1234.0,
                "vw": 10.2,
                "t": 1709874000000,
                "n": 10,
            }
        ],
        BRK,
        dt.date(2024, 3, 8),
        dt.date(2024, 3, 8),
        NOW,
    )
    assert stock["date"].tolist() == [pd.Timestamp("2024-03-08")]
    assert stock["symbol"].tolist() == ["BRK.B"] and stock["volume"].tolist() == [1234]
    fx = source.transform(
        [{"o": 1.09, "h": 1.1, "l": 1.08, "c": 1.095, "v": 0, "t": 1709856000000}],  # 00:00 UTC
        EURUSD,
        dt.date(2024, 3, 8),
        dt.date(2024, 3, 8),
        NOW,
    )
    assert fx["date"].tolist() == [pd.Timestamp("2024-03-08")]
    assert PolygonSource.provider_symbol(EURUSD) == "C:EURUSD"


def test_polygon_empty_answer_over_sessions_is_an_unknown_symbol():
    source = PolygonSource(HttpClient("polygon"))
    with pytest.raises(UnknownSymbol, match="no aggregates"):
        source.transform([], BRK, dt.date(2024, 3, 4), dt.date(2024, 3, 8), NOW)
    # Over a holiday there is nothing to report missing.
    assert source.transform([], BRK, dt.date(2024, 7, 4), dt.date(2024, 7, 4), NOW).empty


GSPC = Instrument("^GSPC", "^GSPC", "index", "XNYS")
CRUDE = Instrument("CL=F", "CL=F", "commodity", "CMES")


def test_indices_and_futures_are_asked_only_where_they_exist():
    polygon = PolygonSource(HttpClient("polygon"))
    assert polygon.covers(GSPC) and polygon.provider_symbol(GSPC) == "I:SPX"
    assert polygon.provider_symbol(EURUSD) == "C:EURUSD" and polygon.provider_symbol(IBM) == "IBM"
    assert not polygon.covers(CRUDE)  # no CME futures on the aggregates endpoint
    assert not polygon.covers(Instrument("^FOO", "^FOO", "index", "XNYS"))
    assert not av_source().covers(GSPC) and not av_source().covers(CRUDE)


def test_polygon_index_aggregates_have_no_volume():
    results = [{"o": 5500.1, "h": 5510.0, "l": 5490.2, "c": 5505.5, "t": 1720152000000}]
    source = PolygonSource(HttpClient("polygon"))
    bars = source.transform(results, GSPC, dt.date(2024, 7, 5), dt.date(2024, 7, 5), NOW)
    assert bars[["date", "close", "volume"]].values.tolist() == [
        [pd.Timestamp("2024-07-05"), 5505.5, 0]
    ]
    YAHOO_DAILY_BARS.validate(bars)


def test_polygon_never_follows_next_url_to_another_host():
    source = PolygonSource(HttpClient("polygon"), base_url="https://api.polygon.io")
    assert source._follow("https://api.polygon.io/v2/aggs/ticker/X/range/1/day/a/b?cursor=1", "X")
    with pytest.raises(MalformedPayload, match=r"not https://api\.polygon\.io"):
        source._follow("https://evil.example/v2/aggs?cursor=1", "X")


def yfinance_frame(days, closes, tz="America/New_York", **extra):
    index = pd.DatetimeIndex([pd.Timestamp(d, tz=tz) for d in days], name="Date")
    closes = np.asarray(closes, dtype=float)
    data = {
        "Open": closes,
        "High": closes * 1.01,
        "Low": closes * 0.99,
        "Close": closes,
        "Adj Close": closes * 0.98,
        "Volume": np.full(len(days), 1e6),
        "Dividends": np.zeros(len(days)),
        "Stock Splits": np.zeros(len(days)),
    }
    data.update(extra)
    return pd.DataFrame(data, index=index)


def test_yahoo_transform_keeps_raw_and_adjusted_closes_and_events(tmp_path):
    raw = yfinance_frame(
        ["2024-06-06", "2024-06-07", "2024-06-10", "2024-06-11"],
        [120.0, 121.0, 122.0, np.nan],  # the last row is incomplete: dropped, not carried as NaN
        **{"Stock Splits": np.array([0, 0, 10.0, 0]), "Dividends": np.array([0, 0.01, 0, 0])},
    )
    source = YahooSource(cache_dir=tmp_path)
    nvda = Instrument("NVDA", "NVDA", "equity", "XNYS")
    bars, actions = source.transform(raw, nvda, dt.date(2024, 6, 6), dt.date(2024, 6, 11), NOW)
    assert bars["date"].dt.strftime("%Y-%m-%d").tolist() == [
        "2024-06-06",
        "2024-06-07",
        "2024-06-10",
    ]
    assert bars["adj_close"].tolist() == pytest.approx([117.6, 118.58, 119.56])
    assert bars["volume"].dtype == "int64"
    YAHOO_DAILY_BARS.validate(bars)
    assert actions[["action", "value"]].values.tolist() == [["dividend", 0.01], ["split", 10.0]]
    CORPORATE_ACTIONS.validate(actions)


def test_fetch_bars_reports_every_symbol_as_data_or_failure():
    def fetch_one(instrument, start, end):
        if instrument.symbol == "BRK.B":
            raise UnknownSymbol("test", "no such ticker", instrument.symbol)
        bars = pd.DataFrame({"symbol": [instrument.symbol], "date": [pd.Timestamp(start)]})
        return SymbolAnswer(bars)

    result = fetch_bars(
        "test", [IBM, BRK, EURUSD], dt.date(2024, 3, 8), dt.date(2024, 3, 8), fetch_one, 3
    )
    assert sorted(result.bars["symbol"]) == ["EURUSD", "IBM"]
    assert result.failure_messages() == {"BRK.B": "no such ticker"}
    assert result.failure_rate == pytest.approx(1 / 3)
