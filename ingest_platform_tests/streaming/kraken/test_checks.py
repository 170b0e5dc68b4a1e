"""The minute bars' checks: crafted frames at, just below and just above each threshold
through the wiring (`checks.coverage`, `checks.staleness`), then a streamed-and-compacted day
with a gap and a silent pair through Dagster, as the daily schedule would run it at 00:15."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import Definitions, materialize

from ingest_platform.core import settings
from ingest_platform.core.lake import ParquetLake
from ingest_platform.quality.shared.factory import CheckInputs, CheckWindow
from ingest_platform.quality.shared.finding import Status
from ingest_platform.streaming.kraken import checks
from ingest_platform.streaming.kraken.assets import (
    kraken_book_minute_bars,
    kraken_order_book_stream,
)
from ingest_platform.streaming.kraken.definitions import stream_definitions
from ingest_platform.streaming.kraken.log.writer import StreamLog
from ingest_platform.streaming.kraken.resources import KrakenStream

DAY = "2026-11-02"
MIDNIGHT = pd.Timestamp(DAY, tz="UTC")
PAIRS = ("BTC/USD", "ETH/USD")
T0 = int(dt.datetime(2026, 11, 2, tzinfo=dt.UTC).timestamp() * 1_000_000)
SECOND, MINUTE = 1_000_000, 60_000_000


def minute_bars(minutes: dict[str, range], gaps: dict[str, range] | None = None) -> pd.DataFrame:
    """The columns the checks read: a bar per pair and minute of the day, some flagged gap."""
    rows = [
        {"symbol": pair, "minute": MIDNIGHT + pd.Timedelta(minutes=m), "gap": False}
        for pair, present in minutes.items()
        for m in present
    ]
    frame = pd.DataFrame(rows)
    for pair, flagged in (gaps or {}).items():
        at = (frame["symbol"] == pair) & frame["minute"].isin(
            [MIDNIGHT + pd.Timedelta(minutes=m) for m in flagged]
        )
        frame.loc[at, "gap"] = True
    return frame


def inputs(bars: pd.DataFrame, now: pd.Timestamp) -> CheckInputs:
    return CheckInputs(CheckWindow((DAY,), now), {"bars": bars})


FULL = range(1440)
NEXT_MORNING = MIDNIGHT + pd.Timedelta(days=1, minutes=15)  # the daily schedule's clock


@pytest.mark.parametrize(
    ("present", "status"),
    [
        (1296, Status.PASS),  # exactly 0.9
        (1295, Status.WARN),  # just below 0.9
        (1080, Status.WARN),  # exactly 0.75
        (1079, Status.ERROR),  # just below 0.75
    ],
)
def test_coverage_boundaries_in_minutes_of_the_day(present, status):
    bars = minute_bars({"BTC/USD": range(present), "ETH/USD": FULL})
    found = checks.coverage(inputs(bars, NEXT_MORNING), PAIRS)
    assert found.status is status
    assert found.figures["coverage_min"] == pytest.approx(present / 1440)
    if status is not Status.PASS:
        row = found.offending.iloc[0]
        assert (row["symbol"], row["date"]) == ("BTC/USD", pd.Timestamp(DAY))
        assert f"BTC/USD {DAY}" in found.summary
        assert f"{1440 - present} of 1440 minutes missing" in found.summary


def test_a_gap_flagged_minute_is_missing_and_a_configured_pair_without_bars_is_an_error():
    gap = range(600, 745)  # 145 minutes a recorded gap overlaps: 1295 clean minutes
    bars = minute_bars({"BTC/USD": FULL}, gaps={"BTC/USD": gap})
    found = checks.coverage(inputs(bars, NEXT_MORNING), PAIRS)
    assert found.status is Status.ERROR  # ETH/USD: configured, no bar all day
    by_pair = found.offending.set_index("symbol")
    assert by_pair.loc["ETH/USD", "status"] == "ERROR" and by_pair.loc["ETH/USD", "present"] == 0
    assert by_pair.loc["BTC/USD", "status"] == "WARN"
    assert by_pair.loc["BTC/USD", "gap_minutes"] == 145
    assert by_pair.loc["BTC/USD", "missing_minutes"] == "10:00..12:24"
    assert "145 in recorded gaps" in found.summary


@pytest.mark.parametrize(
    ("last_minute", "status"),
    [
        ("23:45", Status.PASS),  # exactly 0.25 h before the end of the day
        ("23:44", Status.WARN),  # just above 0.25 h
        ("23:00", Status.WARN),  # exactly 1 h
        ("22:59", Status.ERROR),  # just above 1 h
    ],
)
def test_staleness_boundaries_judged_at_the_end_of_a_closed_day(last_minute, status):
    hours, minutes = map(int, last_minute.split(":"))
    last = hours * 60 + minutes
    bars = minute_bars({"BTC/USD": range(last + 1), "ETH/USD": FULL})
    for now in (NEXT_MORNING, MIDNIGHT + pd.Timedelta(days=2)):  # whenever it is checked
        found = checks.staleness(inputs(bars, now), PAIRS)
        assert found.status is status, now
        assert found.figures["max_lag_hours"] == pytest.approx((1440 - last) / 60)
    if status is not Status.PASS:
        assert f"BTC/USD (last {DAY} {last_minute}" in found.summary


def test_staleness_of_a_day_not_over_is_judged_at_the_checks_clock():
    bars = minute_bars({"BTC/USD": range(600), "ETH/USD": range(600)})  # up to 09:59
    found = checks.staleness(inputs(bars, MIDNIGHT + pd.Timedelta(hours=10)), PAIRS)
    assert found.status is Status.PASS  # 1 minute old at 10:00
    assert checks.staleness(inputs(bars, NEXT_MORNING), PAIRS).status is Status.ERROR


# ---- through Dagster: a streamed day, compacted, checked ------------------------------------


def write_day(root, market_feed, book_log_writer, last_minute: dict[str, int]) -> None:
    """A book update per pair at :30 of every minute up to `last_minute`, and a recorded gap
    on BTC/USD overlapping 10:00..12:24 (145 minutes)."""
    timed = []
    for pair in PAIRS:
        feed = market_feed(pair)
        timed.append((T0 + SECOND, feed.snapshot()))
        timed += [(T0 + m * MINUTE + 30 * SECOND, feed.update()) for m in range(last_minute[pair])]
    timed.sort(key=lambda item: item[0])
    verdicts = book_log_writer(root, [f for _, f in timed], [t for t, _ in timed])
    assert all(verdicts)
    start, end = T0 + 600 * MINUTE, T0 + 744 * MINUTE + 10 * SECOND
    with StreamLog(root, session="s1", background=False) as log:
        log.gap(end, "BTC/USD", "book", "reconnect", start, end, 1, 2)


def results(result) -> dict[str, object]:
    return {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def test_a_compacted_day_with_a_gap_and_a_silent_pair_trips_both_checks(
    tmp_path, lake, market_feed, book_log_writer, monkeypatch
):
    monkeypatch.setenv(settings.NOW_ENV, NEXT_MORNING.isoformat())
    root = tmp_path / "log"
    write_day(root, market_feed, book_log_writer, {"BTC/USD": 1440, "ETH/USD": 1320})
    result = materialize(
        [kraken_order_book_stream, kraken_book_minute_bars, checks.minute_bar_checks(PAIRS)],
        selection=[kraken_book_minute_bars],
        partition_key=DAY,
        resources={"lake": lake, "kraken_stream": KrakenStream(log_root=str(root))},
        raise_on_error=False,
    )
    assert result.success  # neither check blocks
    found = results(result)
    coverage = found["stream_coverage"]
    assert not coverage.passed and coverage.severity.value == "WARN"  # 1295 / 1440
    assert f"BTC/USD {DAY} 0.8993" in coverage.description
    assert "145 in recorded gaps: 10:00..12:24" in coverage.description
    assert "ETH/USD" not in coverage.description  # 1320 / 1440 = 0.917 passes
    staleness = found["stream_staleness"]
    assert not staleness.passed and staleness.severity.value == "ERROR"
    assert f"ETH/USD (last {DAY} 21:59, 2.017 h)" in staleness.description
    assert "BTC/USD" not in staleness.description


def test_the_streaming_definitions_register_the_checks_of_the_configured_pairs():
    assert tuple(KrakenStream().pairs) == checks.CONFIGURED_PAIRS
    stream = stream_definitions()  # core provides the lake when the domains merge
    with_lake = Definitions.merge(stream, Definitions(resources={"lake": ParquetLake(root=".")}))
    keys = with_lake.resolve_asset_graph().asset_check_keys
    assert {(k.asset_key.to_user_string(), k.name) for k in keys} == {
        ("kraken_book_minute_bars", "partitions_present"),
        ("kraken_book_minute_bars", "stream_coverage"),
        ("kraken_book_minute_bars", "stream_staleness"),
    }
