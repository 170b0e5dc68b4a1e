"""The stream log: exact rows, segment rolls (rows, age, UTC day), atomicity, heartbeat file."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import textwrap
import time

import pyarrow.parquet as pq
import pytest

from ingest_platform.streaming.kraken.log import (
    list_days,
    list_segments,
    read_kind,
    sweep_temporary_files,
    temporary_files,
)
from ingest_platform.streaming.kraken.log_writer import LogWriteError, StreamLog

T0 = int(dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.UTC).timestamp() * 1_000_000)


def _book(log: StreamLog, recv_us: int, qty: str = "0.5", kind: str = "update") -> int:
    return log.book(
        recv_us,
        "2026-11-02T12:00:00.123456Z",
        "BTC/USD",
        kind,
        (("64123.4", qty),),
        (("64123.5", "1.00000001"),),
        123456789,
        True,
        10,
        1,
        8,
    )


def test_rows_round_trip_exactly(tmp_path):
    with StreamLog(tmp_path, session="s1", background=False) as log:
        assert _book(log, T0, kind="snapshot") == 0
        assert _book(log, T0 + 1) == 1
        log.trade(
            T0 + 2,
            "update",
            {
                "symbol": "BTC/USD",
                "side": "buy",
                "price": "64123.5",
                "qty": "0.00000001",
                "ord_type": "market",
                "trade_id": 42,
                "timestamp": "2026-11-02T12:00:00.5Z",
            },
        )
        log.ohlc(
            T0 + 3,
            "update",
            {
                "symbol": "BTC/USD",
                "open": "1.0",
                "high": "2.0",
                "low": "0.5",
                "close": "1.5",
                "vwap": "1.25",
                "volume": "10.12345678",
                "trades": 3,
                "interval": 1,
                "interval_begin": "2026-11-02T12:00:00.000000000Z",
                "timestamp": "2026-11-02T12:00:01Z",
            },
        )
        log.gap(T0 + 4, "BTC/USD", "book", "reconnect", T0, None, 1, None, "closed")
        # A level whose numbers arrived as JSON integers is stored as text too.
        log.book(T0 + 5, None, "BTC/USD", "update", ((64124, 2),), (), 7, False, 10, 1, 8)
    book = read_kind(tmp_path, "book").to_pylist()
    assert [r["seq"] for r in book] == [0, 1, 2]
    first = book[0]
    assert first["session"] == "s1" and first["type"] == "snapshot"
    assert first["bids"] == [{"price": "64123.4", "qty": "0.5"}]
    assert first["asks"] == [{"price": "64123.5", "qty": "1.00000001"}]
    assert first["recv_ts"] == dt.datetime(2026, 11, 2, 12, tzinfo=dt.UTC)
    assert first["exch_ts"].microsecond == 123456
    assert (first["checksum"], first["checksum_ok"], first["depth"]) == (123456789, True, 10)
    assert book[2]["bids"] == [{"price": "64124", "qty": "2"}] and book[2]["exch_ts"] is None
    (trade,) = read_kind(tmp_path, "trade").to_pylist()
    assert (trade["price"], trade["qty"], trade["trade_id"]) == ("64123.5", "0.00000001", 42)
    (bar,) = read_kind(tmp_path, "ohlc").to_pylist()
    assert bar["volume"] == "10.12345678" and bar["interval_begin"].minute == 0
    (gap,) = read_kind(tmp_path, "gap").to_pylist()
    assert gap["end_ts"] is None and gap["last_book_seq"] == 1


def test_segments_roll_by_rows_and_keep_seq_consecutive(tmp_path):
    with StreamLog(tmp_path, session="s1", max_rows=10) as log:
        for i in range(25):
            _book(log, T0 + i)
    segments = list_segments(tmp_path, "book")
    assert [s.first_seq for s in segments] == [0, 10, 20]
    assert [pq.read_metadata(s.path).num_rows for s in segments] == [10, 10, 5]
    assert read_kind(tmp_path, "book").column("seq").to_pylist() == list(range(25))
    assert log.stats.rows_written["book"] == 25 and log.stats.segments_written["book"] == 3


def test_rows_are_written_even_when_the_writer_thread_is_gone(tmp_path):
    """At interpreter exit concurrent.futures refuses new work; the final flush must not be lost."""
    log = StreamLog(tmp_path, session="s1")
    for i in range(7):
        _book(log, T0 + i)
    log._executor.shutdown(wait=True)  # what interpreter exit does before atexit handlers run
    log.close()
    assert read_kind(tmp_path, "book").num_rows == 7
    assert log.stats.rows_written["book"] == 7


def test_segments_roll_by_age(tmp_path, clock):
    log = StreamLog(tmp_path, session="s1", max_seconds=5.0, background=False, clock=clock)
    _book(log, T0)
    clock.advance(4.999)
    log.tick()
    assert list_segments(tmp_path, "book") == []  # too young
    clock.advance(0.001)
    log.tick()
    assert len(list_segments(tmp_path, "book")) == 1  # published before close
    _book(log, T0 + 1)
    log.close()
    assert len(list_segments(tmp_path, "book")) == 2


def test_a_segment_never_spans_two_utc_days(tmp_path):
    midnight = int(dt.datetime(2026, 11, 3, tzinfo=dt.UTC).timestamp() * 1_000_000)
    with StreamLog(tmp_path, session="s1") as log:
        _book(log, midnight - 100)
        _book(log, midnight - 1)
        _book(log, midnight)
    assert list_days(tmp_path) == ["2026-11-02", "2026-11-03"]
    assert read_kind(tmp_path, "book", ["2026-11-02"]).num_rows == 2
    assert read_kind(tmp_path, "book", ["2026-11-03"]).column("seq").to_pylist() == [2]


def test_a_failed_write_leaves_no_segment_and_no_temp_file(tmp_path, monkeypatch):
    real_write = pq.write_table

    def torn_write(table, where, **kwargs):
        where.write(b"PAR1 half a segment")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", torn_write)
    log = StreamLog(tmp_path, session="s1", max_rows=2)
    _book(log, T0)
    _book(log, T0 + 1)  # rolls: the write fails on the writer thread
    with pytest.raises(LogWriteError, match="disk full"):
        log.flush()
    with pytest.raises(LogWriteError):
        _book(log, T0 + 2)
    monkeypatch.setattr(pq, "write_table", real_write)
    log.close()
    assert list_segments(tmp_path, "book") == []
    assert temporary_files(tmp_path) == []


def test_an_unwritable_root_is_a_log_write_error(tmp_path):
    root = tmp_path / "log"
    log = StreamLog(root, session="s1", background=False, max_rows=1)
    (root / "book").write_text("a file where a directory should be")
    with pytest.raises(LogWriteError, match="cannot write book segment"):
        _book(log, T0)


_KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from ingest_platform.streaming.kraken.log_writer import StreamLog
    log = StreamLog(sys.argv[1], session=sys.argv[2], max_rows=2000, background=False)
    i = 0
    while True:
        log.book(1793620800000000 + i, None, "BTC/USD", "update",
                 tuple((str(64000 + j), "0.5") for j in range(20)), (), 1, True, 10, 1, 8)
        i += 1
        if i == 2000:
            print("first segment", flush=True)
    """
)


def test_a_killed_writer_never_leaves_a_torn_segment_visible(tmp_path):
    for attempt in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _KILLED_WRITER, str(tmp_path), f"k{attempt}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout.readline().strip() == "first segment"
            time.sleep(0.15 + 0.1 * attempt)  # somewhere in a later write
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    segments = list_segments(tmp_path, "book")
    assert len(segments) >= 3
    for seg in segments:  # every visible segment is complete and readable
        assert pq.read_table(seg.path).num_rows == 2000
    table = read_kind(tmp_path, "book")
    assert table.num_rows == 2000 * len(segments)
    # A temp file from a killed writer (made here if none was caught mid-write) is ignored.
    stray = tmp_path / "book" / "2026-11-02" / ".x.parquet.0123.tmp"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_bytes(b"PAR1 torn")
    assert read_kind(tmp_path, "book").num_rows == table.num_rows
    assert stray in temporary_files(tmp_path)
    assert sweep_temporary_files(tmp_path, older_than_seconds=3600) == 0  # maybe a live writer
    assert sweep_temporary_files(tmp_path, older_than_seconds=0) >= 1
    assert temporary_files(tmp_path) == []
