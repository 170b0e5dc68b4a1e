"""The stream log: exact rows, segment rolls (rows, age, UTC day), atomicity, heartbeat file."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest_platform.streaming.kraken.log.segments import (
    list_segments,
    read_kind,
    sweep_temporary_files,
    temporary_files,
)
from ingest_platform.streaming.kraken.log.writer import LogWriteError, StreamLog

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


def test_rows_read_back_the_same_whether_or_not_a_row_beside_them_is_malformed(tmp_path):
    """A chunk of well-formed rows goes to Arrow whole; one odd row sends its chunk through the
    lenient per-column conversion. Either way the well-formed rows read back identically."""
    rows = [
        (T0 + i, ts, "BTC/USD", "update", (("64123.4", f"0.{i}"),), (), 1000 + i, True, 10, 1, 8)
        for i, ts in enumerate(
            ["2026-11-02T12:00:00.5Z", None, "not a time", "2026-11-02T12:00:01Z"]
        )
    ]
    odd = (T0 + 9, None, "BTC/USD", "update", ((64124, 2),), (("1", None),), 7, False, 10, 1, 8)
    tables = []
    for name, extra in (("clean", []), ("mixed", [odd])):
        with StreamLog(tmp_path / name, session="s1") as log:
            for row in rows + extra:
                log.book(*row)
        tables.append(read_kind(tmp_path / name, "book").to_pylist())
    clean, mixed = tables
    assert mixed[: len(clean)] == clean
    assert [r["exch_ts"] is None for r in clean] == [False, True, True, False]
    assert mixed[-1]["bids"] == [{"price": "64124", "qty": "2"}]
    assert mixed[-1]["asks"] == [{"price": "1", "qty": None}]


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
    assert [s.day for s in list_segments(tmp_path, "book")] == ["2026-11-02", "2026-11-03"]
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


_KILLED_MID_WRITE = textwrap.dedent(
    """
    import io, sys, threading
    import pyarrow.parquet as pq
    from ingest_platform.streaming.kraken.log.writer import StreamLog

    real_write, writes = pq.write_table, []

    def write_half_then_hang(table, where, **kwargs):
        # The first segment is written whole; the second stops halfway, as a SIGKILL would
        # find it, and says where it stopped before blocking until the parent kills us.
        writes.append(where)
        if len(writes) == 1:
            return real_write(table, where, **kwargs)
        whole = io.BytesIO()
        real_write(table, whole, **kwargs)
        where.write(whole.getvalue()[: len(whole.getvalue()) // 2])
        where.flush()
        print("mid-write", where.name, flush=True)
        threading.Event().wait()

    pq.write_table = write_half_then_hang
    log = StreamLog(sys.argv[1], session="killed", max_rows=2000)  # the writer thread, as live
    for i in range(4000):
        log.book(1793620800000000 + i, None, "BTC/USD", "update",
                 tuple((str(64000 + j), "0.5") for j in range(20)), (), 1, True, 10, 1, 8)
    log.flush(wait=True)  # waits on the writer thread, which hangs in the second segment
    """
)


@pytest.mark.slow
def test_a_writer_killed_mid_write_leaves_no_torn_segment_visible(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_MID_WRITE, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline().split()  # blocks until the writer is inside the write
    finally:
        proc.kill()  # SIGKILL: no finally, no atexit, no cleanup of the temp file
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL and line[0] == "mid-write", line
    torn = Path(line[1])
    assert torn.exists() and torn.stat().st_size > 0
    with pytest.raises(pa.ArrowInvalid):  # it really is torn
        pq.read_table(torn)

    # Readers see the one complete segment and nothing of the torn one.
    (segment,) = list_segments(tmp_path, "book")
    assert pq.read_table(segment.path).num_rows == 2000
    assert read_kind(tmp_path, "book").column("seq").to_pylist() == list(range(2000))
    assert temporary_files(tmp_path) == [torn]

    # The next writer leaves it while it could still belong to a live writer (an hour) ...
    assert StreamLog(tmp_path, session="next", background=False).swept == 0
    assert sweep_temporary_files(tmp_path, older_than_seconds=3600) == 0
    # ... and sweeps it once it is old enough; the complete segment stays.
    assert StreamLog(tmp_path, session="later", background=False, stale_temp_seconds=-1).swept == 1
    assert temporary_files(tmp_path) == []
    assert read_kind(tmp_path, "book").num_rows == 2000
