"""Minute bars: a hand-made day through the asset, a day that does not verify, a streamed day."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster import (
    DagsterEventType,
    DefaultScheduleStatus,
    Definitions,
    RunRequest,
    SkipReason,
    build_schedule_context,
    materialize,
)

from ingest_platform.streaming.kraken.assets import (
    kraken_book_minute_bars,
    kraken_order_book_stream,
)
from ingest_platform.streaming.kraken.book import kraken_book_checksum
from ingest_platform.streaming.kraken.definitions import stream_definitions
from ingest_platform.streaming.kraken.job import kraken_stream_job
from ingest_platform.streaming.kraken.log.minute_bars import compact_day
from ingest_platform.streaming.kraken.log.segments import read_kind
from ingest_platform.streaming.kraken.log.writer import StreamLog
from ingest_platform.streaming.kraken.resources import KrakenStream
from ingest_platform.streaming.kraken.schedules import kraken_book_minute_bars_daily
from ingest_platform.streaming.kraken.schemas import KrakenBookMinuteBars
from ingest_platform_tests.streaming.kraken.fanout_off import FANOUT_OFF

DAY = "2026-11-02"
T = int(dt.datetime(2026, 11, 2, tzinfo=dt.UTC).timestamp() * 1_000_000)
SECOND = 1_000_000


def _book_message(kind, bids, asks, book, corrupt=False):
    """A BTC/USD (precisions 1/8) book frame whose checksum is ``book``'s after applying it.

    Prices and quantities are JSON numbers, written as their text, as Kraken sends them.
    """
    for side, levels in (("bids", bids), ("asks", asks)):
        for price, qty in levels:
            if qty == "0":
                book[side].pop(price, None)
            else:
                book[side][price] = qty
    checksum = kraken_book_checksum(book["asks"].items(), book["bids"].items(), 1, 8)

    def levels(pairs):
        return ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in pairs)

    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"BTC/USD",'
        f'"bids":[{levels(bids)}],"asks":[{levels(asks)}],'
        f'"checksum":{checksum + (1 if corrupt else 0)}}}]}}'
    )


@pytest.fixture
def day_log(tmp_path, book_log_writer):
    """A hand-made day: three minutes of BTC/USD with a rejected update, a gap, trades."""
    root = tmp_path / "log"
    book = {"bids": {}, "asks": {}}
    frames = [
        _book_message(
            "snapshot", [("100.0", "1"), ("99.0", "1")], [("101.0", "1"), ("102.0", "1")], book
        ),  # mid 100.5, spread 1.0
        _book_message("update", [("100.5", "2")], [], book),  # mid 100.75, spread 0.5
        _book_message("update", [], [("101.0", "0")], book),  # mid 101.25, spread 1.5
        _book_message("update", [("101.5", "1")], [], {"bids": {}, "asks": {}}, corrupt=True),
        _book_message("snapshot", [("100.0", "1")], [("100.2", "1")], {"bids": {}, "asks": {}}),
    ]
    seconds = [10, 40, 65, 90, 130]
    assert book_log_writer(root, frames, [T + s * SECOND for s in seconds]) == [
        True,
        True,
        True,
        False,
        True,
    ]
    with StreamLog(root, session="s1", background=False) as log:
        start, end = T + 90 * SECOND, T + 130 * SECOND
        log.gap(end, "BTC/USD", "book", "checksum_mismatch", start, end, 2, 4)
        trade = {"symbol": "BTC/USD", "side": "buy", "ord_type": "market"}
        log.trade(T + 5 * SECOND, "snapshot", {**trade, "price": "90.0", "qty": "9", "trade_id": 0})
        log.trade(T + 20 * SECOND, "update", {**trade, "price": "100.5", "qty": "2", "trade_id": 1})
        log.trade(T + 50 * SECOND, "update", {**trade, "price": "101.0", "qty": "1", "trade_id": 2})
        log.trade(T + 55 * SECOND, "update", {**trade, "price": "101.0", "qty": "1", "trade_id": 2})
    return root


def test_minute_bars_from_a_hand_made_day(day_log, lake):
    result = materialize(
        [kraken_order_book_stream, kraken_book_minute_bars],
        selection=[kraken_book_minute_bars],
        partition_key=DAY,
        resources={"lake": lake, "kraken_stream": KrakenStream(log_root=str(day_log))},
    )
    assert result.success
    bars = lake.read("kraken_book_minute_bars", [DAY]).set_index("minute")
    minute = pd.Timestamp(DAY, tz="UTC")
    first = bars.loc[minute]
    assert (first.mid_open, first.mid_high, first.mid_low, first.mid_close) == (
        100.5,
        100.75,
        100.5,
        100.75,
    )
    assert (first.spread_mean, first.spread_min, first.spread_max) == (0.75, 0.5, 1.0)
    assert (first.book_updates, first.trades, first.trade_volume) == (2, 2, 3.0)
    assert first.trade_vwap == pytest.approx((100.5 * 2 + 101.0) / 3)
    assert not first.gap
    second = bars.loc[minute + pd.Timedelta(minutes=1)]
    assert (second.mid_open, second.mid_close, second.spread_mean) == (101.25, 101.25, 1.5)
    assert second.book_updates == 1 and second.trades == 0 and pd.isna(second.trade_vwap)
    assert second.gap  # the rejected update at 00:01:30 opened a gap
    third = bars.loc[minute + pd.Timedelta(minutes=2)]
    assert third.mid_close == pytest.approx(100.1) and third.spread_max == pytest.approx(0.2)
    assert third.gap
    assert len(bars) == 3
    (mat,) = result.asset_materializations_for_node("kraken_book_minute_bars")
    assert mat.metadata["dagster/row_count"].value == 3
    assert mat.metadata["book_rows_verified"].value == 4
    assert mat.metadata["book_rows_rejected_live"].value == 1


def test_compaction_refuses_a_day_that_does_not_verify(day_log, lake):
    table_path = next((day_log / "book").rglob("*.parquet"))
    table = pq.read_table(table_path)
    rows = table.to_pylist()
    rows[1]["bids"][0]["qty"] = "3"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), table_path)
    result = materialize(
        [kraken_order_book_stream, kraken_book_minute_bars],
        selection=[kraken_book_minute_bars],
        partition_key=DAY,
        resources={"lake": lake, "kraken_stream": KrakenStream(log_root=str(day_log))},
        raise_on_error=False,
    )
    assert not result.success
    assert not lake.has_partition("kraken_book_minute_bars", DAY)


@pytest.mark.slow
def test_compaction_of_a_streamed_day(tmp_path, sandbox, stream_resource, run_config):
    """Today's partition only exists once the day is over, so the plain function does today."""
    server = sandbox()
    root = tmp_path / "log"
    kraken_stream_job.execute_in_process(
        run_config=run_config(1.0),
        resources={"kraken_stream": stream_resource(server.url, root), **FANOUT_OFF},
    )
    bars, verification = compact_day(root, dt.datetime.now(dt.UTC).strftime("%Y-%m-%d"))
    assert verification.ok and verification.verified == read_kind(root, "book").num_rows
    assert set(bars["symbol"]) == {"BTC/USD", "ETH/USD"}
    assert bars["book_updates"].sum() == verification.verified
    assert (bars["spread_min"] > 0).all() and not bars["gap"].any()
    assert (bars["trades"] > 0).any()
    KrakenBookMinuteBars.validate(bars)


def test_a_day_without_a_log_fails_and_writes_nothing(day_log, lake):
    result = materialize(
        [kraken_order_book_stream, kraken_book_minute_bars],
        selection=[kraken_book_minute_bars],
        partition_key="2026-11-22",
        resources={"lake": lake, "kraken_stream": KrakenStream(log_root=str(day_log))},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    message = failure.event_specific_data.error.message
    assert "2026-11-22" in message and str(day_log) in message and "no stream log" in message
    assert not lake.has_partition("kraken_book_minute_bars", "2026-11-22")


def test_a_corrupt_segment_fails_naming_the_file(day_log, lake):
    segment = next((day_log / "book").rglob("*.parquet"))
    segment.write_bytes(segment.read_bytes()[:100])
    result = materialize(
        [kraken_order_book_stream, kraken_book_minute_bars],
        selection=[kraken_book_minute_bars],
        partition_key=DAY,
        resources={"lake": lake, "kraken_stream": KrakenStream(log_root=str(day_log))},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    assert f"cannot read {segment}" in failure.event_specific_data.error.message
    assert not lake.has_partition("kraken_book_minute_bars", DAY)


# ---- the daily schedule ----------------------------------------------------------------------


def _tick(day_log, when: dt.datetime):
    context = build_schedule_context(
        scheduled_execution_time=when,
        resources={"kraken_stream": KrakenStream(log_root=str(day_log))},
    )
    return kraken_book_minute_bars_daily(context)


def test_the_schedule_compacts_the_day_that_just_ended(day_log):
    request = _tick(day_log, dt.datetime(2026, 11, 3, 0, 15, tzinfo=dt.UTC))
    assert isinstance(request, RunRequest)
    assert request.partition_key == DAY and request.run_key == f"kraken_book_minute_bars:{DAY}"


def test_the_schedule_skips_a_day_without_a_log_naming_it(day_log):
    skip = _tick(day_log, dt.datetime(2026, 11, 23, 0, 15, tzinfo=dt.UTC))
    assert isinstance(skip, SkipReason)
    assert "2026-11-22" in skip.skip_message and str(day_log) in skip.skip_message
    before = _tick(day_log, dt.datetime(2026, 11, 1, 0, 15, tzinfo=dt.UTC))  # no day ended yet
    assert isinstance(before, SkipReason)


def test_the_scheduled_run_materializes_that_day(day_log, lake):
    defs = Definitions.merge(stream_definitions(), Definitions(resources={"lake": lake}))
    schedule = defs.resolve_schedule_def("kraken_book_minute_bars_daily")
    assert schedule.default_status == DefaultScheduleStatus.RUNNING
    assert schedule.execution_timezone == "UTC" and schedule.cron_schedule == "15 0 * * *"
    request = _tick(day_log, dt.datetime(2026, 11, 3, 0, 15, tzinfo=dt.UTC))
    job = defs.resolve_job_def(schedule.job_name)
    result = job.execute_in_process(
        partition_key=request.partition_key,
        resources={"lake": lake, "kraken_stream": KrakenStream(log_root=str(day_log))},
    )
    assert result.success
    assert len(lake.read("kraken_book_minute_bars", [DAY])) == 3
