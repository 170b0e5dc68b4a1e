"""Replay rebuilds the books from the log, re-verifies every checksum and catches tampering."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest_platform import cli
from ingest_platform.streaming.kraken.io.connection import open_stream
from ingest_platform.streaming.kraken.log.replay import replay
from ingest_platform.streaming.kraken.log.segments import list_segments, read_kind

MIDNIGHT = int(dt.datetime(2026, 11, 3, tzinfo=dt.UTC).timestamp() * 1_000_000)


@pytest.fixture
def streamed_log(tmp_path, sandbox, fast_config, wait):
    """A log from the sandbox with a checksum resync, a reconnect and top-of-book rows."""
    server = sandbox()
    root = tmp_path / "log"

    async def scenario():
        client = open_stream(fast_config(top_interval=0.1), server.url, root)
        task = asyncio.create_task(client.run())
        await wait(
            lambda: client.protocol.is_synced("BTC/USD") and client.protocol.is_synced("ETH/USD")
        )
        server.faults.add("corrupt_checksum", symbol="ETH/USD", times=1)
        await wait(
            lambda: client.protocol.stats.resyncs == 1 and client.protocol.is_synced("ETH/USD")
        )
        server.faults.add("drop_after", times=1, messages=3)
        await wait(lambda: client.protocol.stats.reconnects == 1)
        await wait(
            lambda: client.protocol.is_synced("BTC/USD") and client.protocol.is_synced("ETH/USD")
        )
        await wait(lambda: client.log.next_seq("book_top") >= 4)
        await wait(lambda: client.protocol.stats.symbols["ETH/USD"].verified_since_snapshot > 10)
        client.request_stop()
        return await asyncio.wait_for(task, 5)

    result = asyncio.run(scenario())
    assert result.halt is None
    return root


def _rewrite_book_segment(root, change):
    """Apply ``change(rows)`` to the first book segment's rows and write it back."""
    (segment,) = list_segments(root, "book")[:1]
    table = pq.read_table(segment.path)
    rows = table.to_pylist()
    change(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), segment.path)


def test_replay_reverifies_every_checksum_of_a_live_log(streamed_log):
    report = replay(streamed_log)
    assert report.ok, report.summary()
    book_rows = read_kind(streamed_log, "book").num_rows
    assert report.rows == book_rows
    assert report.verified == book_rows - 1  # all but the corrupted update
    assert report.rejected_live == 1 and report.mismatches == 0
    assert report.gaps_by_reason["checksum_mismatch"] == 1
    assert report.gaps_by_reason["reconnect"] >= 2  # both books (and trade/ohlc)
    assert report.tops_checked >= 4 and report.tops_mismatched == 0
    assert report.seq_holes == report.unrecorded_restarts == report.updates_out_of_sync == 0


def test_replay_detects_a_tampered_quantity(streamed_log, capsys):
    def change(rows):
        row = next(r for r in rows if r["type"] == "update" and r["checksum_ok"] and r["bids"])
        row["bids"][0]["qty"] = str(float(row["bids"][0]["qty"]) + 1.0)

    _rewrite_book_segment(streamed_log, change)
    report = replay(streamed_log)
    assert not report.ok and report.mismatches >= 1
    assert "does not verify in replay but the live client said True" in report.problems[0]
    assert cli.main(["kraken-replay", "--root", str(streamed_log)]) == 1
    assert "result        FAILED" in capsys.readouterr().out


def test_replay_detects_a_deleted_row(streamed_log):
    def change(rows):
        del rows[len(rows) // 2]

    _rewrite_book_segment(streamed_log, change)
    report = replay(streamed_log)
    assert not report.ok and report.seq_holes == 1
    assert "rows missing" in report.problems[0]


def test_replay_detects_a_tampered_top_of_book(streamed_log):
    (segment,) = list_segments(streamed_log, "book_top")[:1]
    table = pq.read_table(segment.path)
    rows = table.to_pylist()
    rows[0]["asks"][0]["price"] = "1.0"
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), segment.path)
    report = replay(streamed_log)
    assert not report.ok and report.tops_mismatched == 1


def test_cli_prints_a_summary_or_json(streamed_log, capsys):
    assert cli.main(["kraken-replay", "--root", str(streamed_log)]) == 0
    text = capsys.readouterr().out
    assert "mismatches    0" in text and "result        OK" in text
    args = ["kraken-replay", "--root", str(streamed_log), "--json", "--symbol", "BTC/USD"]
    assert cli.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and set(report["symbols"]) == {"BTC/USD"}


def test_a_day_replays_on_its_own_across_midnight(tmp_path, market_feed, book_log_writer):
    feed = market_feed("SOL/USD")
    frames = [feed.snapshot()] + [feed.update() for _ in range(40)]
    times = [MIDNIGHT - 20_000_000 + i * 1_000_000 for i in range(len(frames))]
    assert all(book_log_writer(tmp_path, frames, times))
    whole = replay(tmp_path)
    assert whole.ok and whole.verified == 41
    second_day = replay(tmp_path, days=["2026-11-03"])
    # Its updates continue a book whose snapshot is in the day before: not verifiable alone,
    # and not an error either.
    assert second_day.ok and second_day.verified == 0 and second_day.unverifiable == 21
    first_day = replay(tmp_path, days=["2026-11-02"])
    assert first_day.ok and first_day.verified == 20


# ---- the command line: ingest-platform kraken-replay -----------------------------------------


@pytest.fixture
def two_day_log(tmp_path, market_feed, book_log_writer):
    """BTC/USD and ETH/USD around midnight of 2026-11-03, each with its own snapshot per day."""
    root = tmp_path / "log"
    for symbol in ("BTC/USD", "ETH/USD"):
        feed = market_feed(symbol)
        for start in (MIDNIGHT - 60_000_000, MIDNIGHT + 1_000_000):
            frames = [feed.snapshot()] + [feed.update() for _ in range(10)]
            times = [start + i * 1_000_000 for i in range(len(frames))]
            assert all(book_log_writer(root, frames, times, session=f"{symbol[:3]}{start}"))
    return root


def test_cli_replays_one_day_and_one_symbol(two_day_log, capsys):
    code = cli.main(
        ["kraken-replay", "--root", str(two_day_log), "--day", "2026-11-03", "--symbol", "BTC/USD"]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "result        OK" in out and "'BTC/USD': 11" in out and "ETH/USD" not in out


def test_cli_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["kraken-replay", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in ("--root", "--day", "--symbol", "--json"):
        assert option in text


@pytest.mark.parametrize("damage", ["truncated", "not parquet"])
def test_cli_names_a_corrupt_segment_and_cannot_run(two_day_log, capsys, damage):
    segment = list_segments(two_day_log, "book", ["2026-11-03"])[1].path
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) // 2] if damage == "truncated" else b"not parquet")
    code = cli.main(["kraken-replay", "--root", str(two_day_log)])
    captured = capsys.readouterr()
    assert code == 2  # cannot run: not 1, which means "problems found in a readable log"
    (line,) = captured.err.strip().splitlines()
    assert str(segment) in line and "cannot read" in line
    assert "result" not in captured.out


def test_cli_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["kraken-replay", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "0 every checksum verified" in text
    assert "1 problems found" in text
    assert "2 cannot run" in text and "corrupt or truncated segment" in text


def test_cli_says_a_day_has_no_log_and_cannot_run(two_day_log, capsys):
    code = cli.main(["kraken-replay", "--root", str(two_day_log), "--day", "2026-11-22"])
    captured = capsys.readouterr()
    assert code == 2
    assert "OK" not in captured.out + captured.err
    (line,) = captured.err.strip().splitlines()
    assert "2026-11-22" in line and str(two_day_log) in line and "no stream log" in line


@pytest.mark.parametrize("extra", [[], ["--json"], ["--symbol", "SOL/USD"]])
def test_cli_cannot_run_without_book_rows(two_day_log, tmp_path, capsys, extra):
    root = two_day_log if "--symbol" in extra else tmp_path / "nothing"
    code = cli.main(["kraken-replay", "--root", str(root), *extra])
    captured = capsys.readouterr()
    assert code == 2
    assert "OK" not in captured.out + captured.err and '"ok": true' not in captured.out
    assert str(root) in captured.err
