"""FRED source end to end against the sandbox: request counts, vintages, splitting, faults."""

from __future__ import annotations

import datetime as dt
import logging
import math
import random
from urllib.parse import quote, quote_plus

import pandas as pd
import pytest

from ingest_platform.core.http import HttpClient, RetryPolicy
from ingest_platform.core.http.errors import (
    AuthenticationFailed,
    MalformedPayload,
    RateLimited,
    SourceUnavailable,
    UnknownSymbol,
)
from ingest_platform.economic.sources import fred_frames
from ingest_platform.economic.sources.fred import FredSource, NoVintages
from ingest_platform.sandbox.data import FRED_SERIES, MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

AS_OF = dt.date(2026, 11, 20)
KEY = "fr+ed/KEY=0123456789abcdef-test"  # URL-unsafe on purpose
REVOKED = "revoked+/=fred-key-9876543210"
START, END = dt.date(2023, 1, 1), dt.date(2025, 12, 31)


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture(scope="module")
def market() -> MarketSimulator:
    return MarketSimulator(seed=5, as_of=AS_OF, revoked_keys=(REVOKED,))


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


def make_source(server, key: str = KEY, sleeps=None, **kwargs) -> FredSource:
    http = HttpClient(
        "fred",
        retry=RetryPolicy(max_attempts=3, backoff_base=0.01, max_retry_after=30),
        secrets=[key],
        sleep=sleeps if sleeps is not None else Sleeps(),
        rng=random.Random(0),
    )
    return FredSource(http, key, base_url=server.base_url("fred"), **kwargs)


def truth(market, series_id, start=START, end=None, realtime_start=None) -> pd.DataFrame:
    """What FRED would answer without any cap, straight from the simulator's vintages."""
    rows = market.fred_rows(series_id, realtime_start or start, "9999-12-31", start, end)
    payload = [
        {
            "date": r.date.isoformat(),
            "value": "." if r.value is None else f"{r.value:.{FRED_SERIES[series_id].decimals}f}",
            "realtime_start": r.realtime_start.isoformat(),
            "realtime_end": r.realtime_end.isoformat(),
        }
        for r in rows
    ]
    return fred_frames.observations_frame(payload, series_id)


@pytest.mark.parametrize("series_id", ["CPIAUCSL", "UNRATE", "PAYEMS", "GDP", "DGS10", "DFF"])
def test_three_years_of_every_vintage_in_one_request(server, market, series_id):
    frame = make_source(server).observations(series_id, START, END)
    assert server.counters.by_symbol("fred.observations") == {series_id: 1}
    assert server.counters.get("fred.vintagedates") == 0
    pd.testing.assert_frame_equal(frame, truth(market, series_id, START, END))
    revised = frame.groupby("date").size()
    assert (revised >= 2).mean() > 0.9  # nearly every observation has a first and a revision
    current = frame[frame.realtime_end.isna()]
    assert current["date"].is_unique and len(current) == frame["date"].nunique()


def test_each_value_is_known_from_its_release_day(server, market):
    frame = make_source(server).observations("UNRATE", dt.date(2024, 1, 1), dt.date(2024, 1, 1))
    versions = market.fred_vintages("UNRATE")
    (first_day, first), (revised_day, final) = versions.vintages[
        versions.dates.index(dt.date(2024, 1, 1))
    ]
    assert frame[["value", "realtime_start", "realtime_end"]].values.tolist() == [
        [first, pd.Timestamp(first_day), pd.Timestamp(revised_day - dt.timedelta(days=1))],
        [final, pd.Timestamp(revised_day), pd.NaT],
    ]


def test_a_run_whose_clock_is_ahead_of_freds_is_not_refused(server):
    """FRED's today is US Central: just after midnight UTC our date is a day ahead of it."""
    tomorrow = AS_OF + dt.timedelta(days=1)
    frame = make_source(server).observations("DGS10", tomorrow, tomorrow)
    assert frame.empty and list(frame.columns) == fred_frames.OBSERVATION_COLUMNS
    assert server.counters.by_symbol("fred.observations") == {"DGS10": 1}


def test_a_missing_value_is_a_known_nan(server):
    frame = make_source(server).observations("DGS10", dt.date(2024, 11, 1), dt.date(2024, 11, 30))
    missing = set(frame.loc[frame["value"].isna(), "date"].dt.strftime("%m-%d"))
    assert missing == {"11-11", "11-28"}  # Veterans Day and Thanksgiving: bond market closed
    assert frame["date"].nunique() == 21  # the holidays are rows, with NaN, not gaps


def test_the_2000_vintage_cap_splits_the_real_time_range_only_when_refused(server, market):
    frame = make_source(server).observations("DGS10", dt.date(2015, 1, 1))
    vintages = len(market.fred_vintage_dates("DGS10"))
    assert vintages > 2000
    chunks = math.ceil(vintages / 2000)
    # one refused request, one vintagedates request, then one request per chunk
    assert server.counters.by_symbol("fred.observations") == {"DGS10": 1 + chunks}
    assert server.counters.by_symbol("fred.vintagedates") == {"DGS10": 1}
    pd.testing.assert_frame_equal(frame, truth(market, "DGS10", dt.date(2015, 1, 1)))


@pytest.mark.parametrize(("sandbox_cap", "source_cap", "chunk"), [(60, 2000, 60), (60, 25, 25)])
def test_a_small_cap_is_split_into_chunks_of_at_most_the_cap(sandbox_cap, source_cap, chunk):
    """The cap FRED names in its refusal wins over a larger configured one, and a smaller
    configured one (a test knob; production keeps 2,000) wins over FRED's."""
    capped = MarketSimulator(seed=5, as_of=AS_OF, fred_max_vintage_dates=sandbox_cap)
    since = dt.date(2015, 1, 1)
    with SandboxHTTPServer(capped) as server:
        frame = make_source(server, max_vintage_dates=source_cap).observations("PAYEMS", since)
        vintages = capped.fred_vintage_dates("PAYEMS")
        chunks = math.ceil(len(vintages) / chunk)
        assert chunks >= 3
        assert server.counters.get("fred.observations") == 1 + chunks
        assert server.counters.get("fred.vintagedates") == 1
        # Revisions whose real-time period spans a chunk boundary come back whole.
        pd.testing.assert_frame_equal(frame, truth(capped, "PAYEMS", since))


def test_pages_are_followed_while_fred_counts_more(server, market):
    frame = make_source(server, page_size=25).observations("CPIAUCSL", START, END)
    expected = truth(market, "CPIAUCSL", START, END)
    rows = len(market.fred_rows("CPIAUCSL", START, "9999-12-31", START, END))
    assert server.counters.get("fred.observations") == math.ceil(rows / 25) > 1
    pd.testing.assert_frame_equal(frame, expected)


def test_a_series_without_vintages_is_fetched_as_of_today(server):
    source = make_source(server)
    with pytest.raises(NoVintages, match="ALFRED"):
        source.observations("BAMLH0A0HYM2", START, END)
    frame = source.observations("BAMLH0A0HYM2", START, END, vintages=False)
    assert (frame["realtime_start"] == pd.Timestamp(AS_OF)).all()
    assert (frame["realtime_end"] == pd.Timestamp(AS_OF)).all()
    assert server.counters.by_symbol("fred.observations") == {"BAMLH0A0HYM2": 2}


def test_throttling_waits_for_retry_after_then_succeeds(server, market):
    server.faults.add(
        "rate_limit", endpoint="fred.observations", symbol="GDP", times=1, retry_after=7
    )
    sleeps = Sleeps()
    frame = make_source(server, sleeps=sleeps).observations("GDP", START, END)
    assert sleeps == [pytest.approx(7, abs=0.05)]
    assert server.counters.by_symbol("fred.observations") == {"GDP": 2}
    pd.testing.assert_frame_equal(frame, truth(market, "GDP", START, END))


def test_throttling_that_outlasts_the_retries_is_rate_limited(server):
    server.faults.add("rate_limit", endpoint="fred.observations", retry_after=1)
    with pytest.raises(RateLimited, match=r"HTTP 429 .*gave up after 3 attempt\(s\)"):
        make_source(server).observations("GDP", START, END)


def test_outages_and_truncated_answers_are_retried_within_bounds(server, market):
    server.faults.add("server_error", endpoint="fred.observations", symbol="UNRATE", times=2)
    server.faults.add("truncated_json", endpoint="fred.observations", symbol="PAYEMS", times=1)
    source = make_source(server)
    pd.testing.assert_frame_equal(
        source.observations("UNRATE", START, END), truth(market, "UNRATE", START, END)
    )
    pd.testing.assert_frame_equal(
        source.observations("PAYEMS", START, END), truth(market, "PAYEMS", START, END)
    )
    assert server.counters.by_symbol("fred.observations") == {"UNRATE": 3, "PAYEMS": 2}

    server.faults.add("server_error", endpoint="fred.observations", symbol="GDP", status=500)
    with pytest.raises(SourceUnavailable, match=r"HTTP 500 .*gave up after 3"):
        source.observations("GDP", START, END)
    server.faults.add("truncated_json", endpoint="fred.series", symbol="GDP")
    with pytest.raises(MalformedPayload, match="invalid JSON"):
        source.series_info("GDP")


def test_an_unknown_series_is_named_and_not_retried(server):
    with pytest.raises(UnknownSymbol) as raised:
        make_source(server).observations("NOPE", START, END)
    assert raised.value.symbol == "NOPE" and "The series does not exist." in str(raised.value)
    assert server.counters.by_symbol("fred.observations") == {"NOPE": 1}


def test_the_key_never_reaches_messages_or_logs(server, market, caplog):
    caplog.set_level(logging.DEBUG)
    spellings = [s for k in (KEY, REVOKED) for s in (k, quote(k, safe=""), quote_plus(k))]
    server.faults.add("rate_limit", endpoint="fred.observations", times=3, retry_after=1)
    with pytest.raises(RateLimited) as throttled:
        make_source(server).observations("GDP", START, END)
    with pytest.raises(AuthenticationFailed) as revoked:
        make_source(server, key=REVOKED).observations("GDP", START, END)
    assert "api_key is not registered" in str(revoked.value)
    texts = [str(throttled.value), str(revoked.value), caplog.text]
    assert "api_key=***" in str(throttled.value)
    for text in texts:
        assert not any(s in text for s in spellings), text


def test_metadata_release_and_calendar(server, market):
    source = make_source(server)
    info = source.series_info("PAYEMS")
    assert (info.frequency_short, info.units) == ("M", "Thousands of Persons")
    assert info.last_updated.date() <= AS_OF
    assert source.release("PAYEMS") == (50, "Employment Situation")
    server.counters.reset()

    series = ["CPIAUCSL", "CPILFESL", "UNRATE", "PAYEMS", "GDP"]
    calendar = source.release_calendar(series, START, today=AS_OF)
    assert server.counters.by_symbol("fred.series_release") == {s: 1 for s in series}
    assert server.counters.by_symbol("fred.release_dates") == {"10": 1, "50": 1, "53": 1}
    assert calendar.columns.tolist() == fred_frames.CALENDAR_COLUMNS
    for series_id in series:
        mine = calendar[calendar.series_id == series_id]
        published = mine.loc[~mine.scheduled, "date"]
        first_seen = set(truth(market, series_id, START)["realtime_start"])
        assert first_seen <= set(published), series_id  # every vintage on a release date
        assert published.max() <= pd.Timestamp(AS_OF)
        assert mine.loc[mine.scheduled, "date"].min() > pd.Timestamp(AS_OF)
