"""The protocol session, frame by frame and second by second: no socket, a fake clock.

Routing (a trade never touches a book), checksum resyncs and the gaps they leave, liveness
limits, subscription retries with backoff, halts within a window, and what a lost connection
does to every book.
"""

from __future__ import annotations

import json
import logging
import random

import pytest

from ingest_platform.sandbox.kraken_market import DEFAULT_PAIRS, instrument_snapshot_text
from ingest_platform.streaming.kraken.log.segments import read_kind
from ingest_platform.streaming.kraken.log.writer import StreamLog
from ingest_platform.streaming.kraken.protocol.halts import HALT_LOG_PREFIX, HaltPolicy
from ingest_platform.streaming.kraken.protocol.protocol import KrakenSession

SECOND_US = 1_000_000


@pytest.fixture
def make_session(tmp_path, clock, fast_config):
    def make(pairs=("BTC/USD",), connect=True, **overrides) -> KrakenSession:
        """A session logging under ``tmp_path/log``; connected, instrument snapshot read."""
        log = StreamLog(tmp_path / "log", session="s1", background=False, clock=clock)
        config = fast_config(pairs=pairs, **overrides)
        session = KrakenSession(config, sink=log, clock=clock, rng=random.Random(1))
        if connect:
            session.connection_made()
        session.receive(instrument_snapshot_text(DEFAULT_PAIRS))
        return session

    return make


def _sent(session: KrakenSession) -> list[dict]:
    return [json.loads(text) for text in session.take_outgoing()]


def _ack(session: KrakenSession, channel: str, symbol: str, method: str = "subscribe", **extra):
    body = {"method": method, "result": {"channel": channel, "symbol": symbol}, "success": True}
    session.receive(json.dumps({**body, **extra}))


def _reject(session: KrakenSession, channel: str, symbol: str, error: str) -> None:
    session.receive(
        json.dumps(
            {"method": "subscribe", "success": False, "error": error, "symbol": symbol}
            | {"result": {"channel": channel}}
        )
    )


# ---- subscribing -----------------------------------------------------------------------------


def test_instrument_first_then_every_channel_for_every_pair(tmp_path, clock, fast_config):
    log = StreamLog(tmp_path / "log", background=False, clock=clock)
    config = fast_config(pairs=("BTC/USD", "ETH/USD"), depth=25)
    session = KrakenSession(config, sink=log, clock=clock)
    session.connection_made()
    (instrument,) = _sent(session)
    assert instrument["params"] == {"channel": "instrument", "snapshot": True}
    session.receive(instrument_snapshot_text(DEFAULT_PAIRS))
    requests = {m["params"]["channel"]: m["params"] for m in _sent(session)}
    assert requests["book"] == {
        "channel": "book",
        "symbol": ["BTC/USD", "ETH/USD"],
        "snapshot": True,
        "depth": 25,
    }
    assert requests["ohlc"]["interval"] == 1 and set(requests) == {"book", "trade", "ohlc"}


def test_a_pair_the_exchange_does_not_list_halts_at_once(clock, caplog, make_session):
    with caplog.at_level(logging.ERROR):
        session = make_session(pairs=("BTC/USD", "DOGE/USD"))
    assert session.halt is not None and session.halt.reason == "unknown_pairs"
    assert "DOGE/USD" in session.halt.detail
    assert session.halt.at == clock.time_ns() / 1e9
    assert any(
        r.getMessage().startswith(f"{HALT_LOG_PREFIX} reason=unknown_pairs") for r in caplog.records
    )


# ---- routing ---------------------------------------------------------------------------------


def test_trades_and_bars_never_touch_the_book(tmp_path, market_feed, make_session):
    feed = market_feed()
    session = make_session()
    session.receive(feed.snapshot())
    for _ in range(30):
        session.receive(feed.update())
    book = session.book("BTC/USD")
    assert session.is_synced("BTC/USD")
    checksum, bids, asks = book.checksum(), book.bids(), book.asks()
    book_rows = session.sink.next_seq("book")

    # A trade at a price inside the book, a bar, and a trade dressed up with book fields.
    session.receive(feed.trade())
    session.receive(feed.ohlc())
    hostile = json.loads(feed.trade())
    hostile["data"][0].update(bids=[{"price": 1.0, "qty": 5.0}], asks=[], checksum=1)
    session.receive(json.dumps(hostile))

    assert (book.checksum(), book.bids(), book.asks()) == (checksum, bids, asks)
    assert session.sink.next_seq("book") == book_rows
    assert session.stats.trades == 2 and session.stats.ohlc_bars == 1
    assert session.stats.checksum_failures == 0 and session.stats.critical_errors == 0
    session.sink.close()
    trades = read_kind(tmp_path / "log", "trade").to_pylist()
    assert [t["symbol"] for t in trades] == ["BTC/USD", "BTC/USD"]
    assert all("." in t["price"] for t in trades)  # exact text, never a float repr
    assert read_kind(tmp_path / "log", "ohlc").num_rows == 1
    assert read_kind(tmp_path / "log", "book").num_rows == 31


def test_a_bad_checksum_resubscribes_that_book_and_logs_the_gap(
    tmp_path, clock, market_feed, make_session
):
    feed = market_feed()
    session = make_session(pairs=("BTC/USD", "ETH/USD"))
    session.take_outgoing()
    session.receive(feed.snapshot())
    session.receive(feed.update())
    clock.advance(2.0)
    session.receive(feed.update(corrupt=True))
    assert not session.is_synced("BTC/USD")
    assert session.stats.checksum_failures == 1
    assert session.open_gaps() == {("BTC/USD", "book"): "checksum_mismatch"}
    (unsubscribe,) = _sent(session)  # only that symbol, only the book
    assert unsubscribe["method"] == "unsubscribe"
    assert unsubscribe["params"] == {"channel": "book", "symbol": ["BTC/USD"], "depth": 10}
    session.receive(feed.update())  # dropped until a fresh snapshot
    assert session.stats.symbols["BTC/USD"].dropped_unsynced == 1
    _ack(session, "book", "BTC/USD", method="unsubscribe")
    (resubscribe,) = _sent(session)
    assert resubscribe["method"] == "subscribe" and resubscribe["params"]["symbol"] == ["BTC/USD"]
    clock.advance(0.5)
    session.receive(feed.snapshot())
    assert session.is_synced("BTC/USD") and session.open_gaps() == {}
    session.sink.close()
    rows = read_kind(tmp_path / "log", "book").to_pylist()
    assert [r["checksum_ok"] for r in rows] == [True, True, False, True]
    (gap,) = read_kind(tmp_path / "log", "gap").to_pylist()
    assert gap["reason"] == "checksum_mismatch"
    assert gap["last_book_seq"] == 1 and gap["resume_book_seq"] == 3
    assert (gap["end_ts"] - gap["start_ts"]).total_seconds() == 0.5


def test_unknown_and_malformed_frames_are_counted_not_fatal(market_feed, make_session):
    feed = market_feed()
    session = make_session()
    session.receive(feed.snapshot())
    session.receive('{"channel":"spread","type":"update","data":[]}')
    session.receive("[1, 2, 3]")
    session.receive('{"event":"systemStatus"}')
    session.receive(b'{"channel":"heartbeat"}')
    assert session.stats.unknown == 3 and session.stats.heartbeats == 1
    assert session.is_synced("BTC/USD")
    session.receive('{"channel":"trade","type":"update","data":[{"symbol":"BTC/US')
    assert session.is_synced("BTC/USD")  # visibly a trade: no book lost anything
    session.receive('{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bi')
    assert not session.is_synced("BTC/USD")
    assert session.open_gaps() == {("BTC/USD", "book"): "malformed_message"}
    assert session.stats.malformed == 2 and session.stats.errors["malformed_json"] == 2
    assert session.halt is None


def test_maintenance_pauses_books_and_a_pong_measures_the_rtt(clock, market_feed, make_session):
    feed = market_feed()
    session = make_session(ping_interval=1.0)
    session.receive(feed.snapshot())
    status = '{"channel":"status","type":"update","data":[{"system":"%s","api_version":"v2"}]}'
    session.receive(status % "maintenance")
    assert session.stats.exchange_status == "maintenance"
    assert session.open_gaps() == {("BTC/USD", "book"): "maintenance"}
    session.receive(status % "online")  # every book resubscribes for a fresh snapshot
    _ack(session, "book", "BTC/USD", method="unsubscribe")
    session.receive(feed.snapshot())
    assert session.is_synced("BTC/USD") and session.open_gaps() == {}

    session.take_outgoing()
    clock.advance(1.0)
    session.receive('{"channel":"heartbeat"}')
    assert session.check() is None
    (ping,) = _sent(session)
    assert ping["method"] == "ping"
    clock.advance(0.0125)
    session.receive(json.dumps({"method": "pong", "req_id": ping["req_id"]}))
    assert session.stats.last_rtt_ms == pytest.approx(12.5)


# ---- liveness --------------------------------------------------------------------------------


def test_silence_drops_the_connection(clock, make_session):
    session = make_session()  # max_silence 0.5 s
    clock.advance(0.5)
    assert session.check() is None  # at the limit, not beyond
    clock.advance(0.001)
    assert session.check() == "silence"
    assert session.stats.liveness_breaches == {"silence": 1}


def test_missing_heartbeats_drop_the_connection_while_data_flows(clock, market_feed, make_session):
    feed = market_feed()
    session = make_session()
    session.receive(feed.snapshot())
    for _ in range(6):
        clock.advance(0.1)
        session.receive(feed.update())
        assert session.check() in (None, "heartbeat_timeout")
    assert session.check() == "heartbeat_timeout"


def test_an_unanswered_ping_drops_the_connection(clock, make_session):
    session = make_session(ping_interval=0.2)
    for _ in range(2):
        clock.advance(0.2)
        session.receive('{"channel":"heartbeat"}')
        assert session.check() is None  # the ping goes out, unanswered
    for _ in range(3):
        clock.advance(0.2)
        session.receive('{"channel":"heartbeat"}')
    assert session.check() == "pong_timeout"


def test_a_snapshot_that_never_comes_is_critical_except_in_maintenance(clock, make_session):
    session = make_session(snapshot_timeout=3.0, ping_interval=0)

    def alive_for(seconds: float) -> str | None:
        """Heartbeats every 0.25 s; the first breach, if any."""
        for _ in range(int(seconds / 0.25)):
            clock.advance(0.25)
            session.receive('{"channel":"heartbeat"}')
            if verdict := session.check():
                return verdict
        return None

    session.receive('{"channel":"status","data":[{"system":"maintenance"}]}')
    assert alive_for(10.0) is None  # a paused exchange sends no snapshots: not our problem
    session.receive('{"channel":"status","data":[{"system":"online"}]}')
    assert alive_for(2.5) is None
    assert alive_for(1.0) == "snapshot_timeout ['BTC/USD']"
    assert session.stats.errors["snapshot_timeout"] == 1  # critical: counts toward a halt


def test_the_instrument_snapshot_must_arrive(clock, make_session):
    session = make_session(connect=False, snapshot_timeout=1.0)
    session.connection_made()  # a new connection, whose instrument snapshot never comes
    clock.advance(1.1)
    session.receive('{"channel":"heartbeat"}')
    assert session.check() == "instrument_timeout"


# ---- rejected subscriptions ------------------------------------------------------------------


def test_a_rejected_subscription_is_retried_after_its_backoff(
    tmp_path, clock, market_feed, make_session
):
    feed = market_feed()
    session = make_session(backoff_base=1.0, backoff_cap=4.0)
    session.take_outgoing()
    _reject(session, "book", "BTC/USD", "Subscription depth not supported")
    assert session.stats.rejected_subscriptions == 1
    assert session.open_gaps() == {("BTC/USD", "book"): "subscription_rejected"}
    retried_after = None
    for tick in range(1, 41):  # full jitter: somewhere in [0, 1] s
        clock.advance(0.025)
        session.receive('{"channel":"heartbeat"}')
        session.check()
        sent = [m for m in _sent(session) if m["method"] == "subscribe"]
        if sent:
            assert sent[0]["params"]["symbol"] == ["BTC/USD"]
            retried_after = tick * 0.025
            break
    assert retried_after is not None and retried_after <= 1.0
    _ack(session, "book", "BTC/USD")
    session.receive(feed.snapshot())
    assert session.is_synced("BTC/USD") and session.open_gaps() == {}
    session.sink.close()
    (gap,) = read_kind(tmp_path / "log", "gap").to_pylist()
    assert gap["reason"] == "subscription_rejected" and gap["end_ts"] is not None


# ---- halts -----------------------------------------------------------------------------------


def test_mismatches_halt_only_when_they_crowd_the_window(clock, market_feed, make_session):
    feed = market_feed()
    session = make_session(max_mismatches=3, halt_window=60.0)

    def mismatch_then_heal() -> None:
        session.receive(feed.snapshot())
        session.receive(feed.update(corrupt=True))

    mismatch_then_heal()
    clock.advance(50)
    mismatch_then_heal()
    clock.advance(11)  # the first one leaves the window
    mismatch_then_heal()
    assert session.halt is None
    clock.advance(1)
    mismatch_then_heal()
    assert session.halt is not None and session.halt.reason == "checksum_mismatch"
    assert session.halt.mismatches == 3


def test_halt_policy_counts_within_a_sliding_window():
    policy = HaltPolicy(max_mismatches=3, max_critical_errors=2, window=10.0)
    assert not policy.mismatch(0.0)
    assert not policy.mismatch(5.0)
    assert not policy.mismatch(11.0)  # the first one left the window
    assert policy.mismatch(12.0)  # 5, 11 and 12
    assert not policy.critical(0.0)
    assert policy.critical(5.0)
    assert policy.counts(100.0) == (0, 0)


# ---- connection lost -------------------------------------------------------------------------


def test_a_lost_connection_opens_a_gap_from_the_last_frame(
    tmp_path, clock, market_feed, make_session
):
    btc, eth = market_feed("BTC/USD"), market_feed("ETH/USD")
    session = make_session(pairs=("BTC/USD", "ETH/USD"))
    _ack(session, "trade", "BTC/USD")
    session.receive(btc.snapshot())
    session.receive(eth.snapshot())
    last_frame_us = clock.time_ns() // 1000
    clock.advance(3.0)
    session.connection_lost("silence", stopping=False)
    assert not session.is_synced("BTC/USD") and not session.is_synced("ETH/USD")
    assert session.open_gaps() == {
        ("BTC/USD", "book"): "reconnect",
        ("ETH/USD", "book"): "reconnect",
        ("BTC/USD", "trade"): "reconnect",
    }
    assert session.stats.reconnects == 1
    clock.advance(1.0)
    session.connection_made()
    session.receive(instrument_snapshot_text(DEFAULT_PAIRS))
    session.receive(btc.snapshot())
    session.receive(eth.snapshot())
    _ack(session, "trade", "BTC/USD")
    assert session.open_gaps() == {}
    session.sink.close()
    gaps = read_kind(tmp_path / "log", "gap").to_pylist()
    assert len(gaps) == 3
    assert all(int(g["start_ts"].timestamp() * SECOND_US) == last_frame_us for g in gaps)
    assert all((g["end_ts"] - g["start_ts"]).total_seconds() == 4.0 for g in gaps)


def test_stopping_leaves_books_as_they_were(market_feed, make_session):
    feed = market_feed()
    session = make_session()
    session.receive(feed.snapshot())
    session.connection_lost("stopped", stopping=True)
    assert session.open_gaps() == {} and session.stats.reconnects == 0
    assert session.is_synced("BTC/USD")  # the log simply ends at its last verified row
