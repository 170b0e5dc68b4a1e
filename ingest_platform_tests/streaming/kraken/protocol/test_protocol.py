"""The protocol, frame by frame and second by second: no socket, a fake clock.

Routing (a trade never touches a book), checksum resyncs and the gaps they leave, liveness
limits, subscription retries with backoff, halts within a window, what a lost connection
does to every book, and what comes out: events for the driver, records into any sink.
"""

from __future__ import annotations

import json
import logging
import random

import pytest

from ingest_platform.sandbox.kraken_market import DEFAULT_PAIRS, instrument_snapshot_text
from ingest_platform.streaming.kraken.book import KrakenBook
from ingest_platform.streaming.kraken.log.segments import read_kind
from ingest_platform.streaming.kraken.log.writer import StreamLog
from ingest_platform.streaming.kraken.protocol.events import (
    BooksSynced,
    ExchangeStatusChanged,
    Halted,
)
from ingest_platform.streaming.kraken.protocol.halts import HALT_LOG_PREFIX, HaltPolicy
from ingest_platform.streaming.kraken.protocol.protocol import KrakenProtocol
from ingest_platform.streaming.kraken.protocol.rows import SinkError

SECOND_US = 1_000_000


@pytest.fixture
def make_protocol(tmp_path, clock, fast_protocol):
    def make(pairs=("BTC/USD",), connect=True, **overrides) -> KrakenProtocol:
        """A protocol logging under ``tmp_path/log``; connected, instrument snapshot read."""
        log = StreamLog(tmp_path / "log", session="s1", background=False, clock=clock)
        settings = fast_protocol(pairs=pairs, **overrides)
        protocol = KrakenProtocol(settings, sink=log, clock=clock, rng=random.Random(1))
        if connect:
            protocol.connection_made()
        protocol.receive(instrument_snapshot_text(DEFAULT_PAIRS))
        return protocol

    return make


def _sent(protocol: KrakenProtocol) -> list[dict]:
    return [json.loads(text) for text in protocol.data_to_send()]


def _ack(protocol: KrakenProtocol, channel: str, symbol: str, method: str = "subscribe", **extra):
    body = {"method": method, "result": {"channel": channel, "symbol": symbol}, "success": True}
    protocol.receive(json.dumps({**body, **extra}))


def _reject(protocol: KrakenProtocol, channel: str, symbol: str, error: str) -> None:
    protocol.receive(
        json.dumps(
            {"method": "subscribe", "success": False, "error": error, "symbol": symbol}
            | {"result": {"channel": channel}}
        )
    )


# ---- subscribing -----------------------------------------------------------------------------


def test_instrument_first_then_every_channel_for_every_pair(tmp_path, clock, fast_protocol):
    log = StreamLog(tmp_path / "log", background=False, clock=clock)
    settings = fast_protocol(pairs=("BTC/USD", "ETH/USD"), depth=25)
    protocol = KrakenProtocol(settings, sink=log, clock=clock)
    protocol.connection_made()
    (instrument,) = _sent(protocol)
    assert instrument["params"] == {"channel": "instrument", "snapshot": True}
    protocol.receive(instrument_snapshot_text(DEFAULT_PAIRS))
    requests = {m["params"]["channel"]: m["params"] for m in _sent(protocol)}
    assert requests["book"] == {
        "channel": "book",
        "symbol": ["BTC/USD", "ETH/USD"],
        "snapshot": True,
        "depth": 25,
    }
    assert requests["ohlc"]["interval"] == 1 and set(requests) == {"book", "trade", "ohlc"}


def test_a_pair_the_exchange_does_not_list_halts_at_once(clock, caplog, make_protocol):
    with caplog.at_level(logging.ERROR):
        protocol = make_protocol(pairs=("BTC/USD", "DOGE/USD"))
    assert protocol.halt is not None and protocol.halt.reason == "unknown_pairs"
    assert "DOGE/USD" in protocol.halt.detail
    assert protocol.halt.at == clock.time_ns() / 1e9
    assert any(
        r.getMessage().startswith(f"{HALT_LOG_PREFIX} reason=unknown_pairs") for r in caplog.records
    )


# ---- routing ---------------------------------------------------------------------------------


def test_trades_and_bars_never_touch_the_book(tmp_path, market_feed, make_protocol):
    feed = market_feed()
    protocol = make_protocol()
    protocol.receive(feed.snapshot())
    for _ in range(30):
        protocol.receive(feed.update())
    book = protocol.book("BTC/USD")
    assert protocol.is_synced("BTC/USD")
    checksum, bids, asks = book.checksum(), book.bids(), book.asks()
    book_rows = protocol.sink.next_seq("book")

    # A trade at a price inside the book, a bar, and a trade dressed up with book fields.
    protocol.receive(feed.trade())
    protocol.receive(feed.ohlc())
    hostile = json.loads(feed.trade())
    hostile["data"][0].update(bids=[{"price": 1.0, "qty": 5.0}], asks=[], checksum=1)
    protocol.receive(json.dumps(hostile))

    assert (book.checksum(), book.bids(), book.asks()) == (checksum, bids, asks)
    assert protocol.sink.next_seq("book") == book_rows
    assert protocol.stats.trades == 2 and protocol.stats.ohlc_bars == 1
    assert protocol.stats.checksum_failures == 0 and protocol.stats.critical_errors == 0
    protocol.sink.close()
    trades = read_kind(tmp_path / "log", "trade").to_pylist()
    assert [t["symbol"] for t in trades] == ["BTC/USD", "BTC/USD"]
    assert all("." in t["price"] for t in trades)  # exact text, never a float repr
    assert read_kind(tmp_path / "log", "ohlc").num_rows == 1
    assert read_kind(tmp_path / "log", "book").num_rows == 31


def test_a_bad_checksum_resubscribes_that_book_and_logs_the_gap(
    tmp_path, clock, market_feed, make_protocol
):
    feed = market_feed()
    protocol = make_protocol(pairs=("BTC/USD", "ETH/USD"))
    protocol.data_to_send()
    protocol.receive(feed.snapshot())
    protocol.receive(feed.update())
    clock.advance(2.0)
    protocol.receive(feed.update(corrupt=True))
    assert not protocol.is_synced("BTC/USD")
    assert protocol.stats.checksum_failures == 1
    assert protocol.open_gaps() == {("BTC/USD", "book"): "checksum_mismatch"}
    (unsubscribe,) = _sent(protocol)  # only that symbol, only the book
    assert unsubscribe["method"] == "unsubscribe"
    assert unsubscribe["params"] == {"channel": "book", "symbol": ["BTC/USD"], "depth": 10}
    protocol.receive(feed.update())  # dropped until a fresh snapshot
    assert protocol.stats.symbols["BTC/USD"].dropped_unsynced == 1
    _ack(protocol, "book", "BTC/USD", method="unsubscribe")
    (resubscribe,) = _sent(protocol)
    assert resubscribe["method"] == "subscribe" and resubscribe["params"]["symbol"] == ["BTC/USD"]
    clock.advance(0.5)
    protocol.receive(feed.snapshot())
    assert protocol.is_synced("BTC/USD") and protocol.open_gaps() == {}
    protocol.sink.close()
    rows = read_kind(tmp_path / "log", "book").to_pylist()
    assert [r["checksum_ok"] for r in rows] == [True, True, False, True]
    (gap,) = read_kind(tmp_path / "log", "gap").to_pylist()
    assert gap["reason"] == "checksum_mismatch"
    assert gap["last_book_seq"] == 1 and gap["resume_book_seq"] == 3
    assert (gap["end_ts"] - gap["start_ts"]).total_seconds() == 0.5


def test_unknown_and_malformed_frames_are_counted_not_fatal(market_feed, make_protocol):
    feed = market_feed()
    protocol = make_protocol()
    protocol.receive(feed.snapshot())
    protocol.receive('{"channel":"spread","type":"update","data":[]}')
    protocol.receive("[1, 2, 3]")
    protocol.receive('{"event":"systemStatus"}')
    protocol.receive(b'{"channel":"heartbeat"}')
    assert protocol.stats.unknown == 3 and protocol.stats.heartbeats == 1
    assert protocol.is_synced("BTC/USD")
    protocol.receive('{"channel":"trade","type":"update","data":[{"symbol":"BTC/US')
    assert protocol.is_synced("BTC/USD")  # visibly a trade: no book lost anything
    protocol.receive('{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bi')
    assert not protocol.is_synced("BTC/USD")
    assert protocol.open_gaps() == {("BTC/USD", "book"): "malformed_message"}
    assert protocol.stats.malformed == 2 and protocol.stats.errors["malformed_json"] == 2
    assert protocol.halt is None


def test_maintenance_pauses_books_and_a_pong_measures_the_rtt(clock, market_feed, make_protocol):
    feed = market_feed()
    protocol = make_protocol(ping_interval=1.0)
    protocol.receive(feed.snapshot())
    status = '{"channel":"status","type":"update","data":[{"system":"%s","api_version":"v2"}]}'
    protocol.receive(status % "maintenance")
    assert protocol.stats.exchange_status == "maintenance"
    assert protocol.open_gaps() == {("BTC/USD", "book"): "maintenance"}
    protocol.receive(status % "online")  # every book resubscribes for a fresh snapshot
    _ack(protocol, "book", "BTC/USD", method="unsubscribe")
    protocol.receive(feed.snapshot())
    assert protocol.is_synced("BTC/USD") and protocol.open_gaps() == {}

    protocol.data_to_send()
    clock.advance(1.0)
    protocol.receive('{"channel":"heartbeat"}')
    assert protocol.check() is None
    (ping,) = _sent(protocol)
    assert ping["method"] == "ping"
    clock.advance(0.0125)
    protocol.receive(json.dumps({"method": "pong", "req_id": ping["req_id"]}))
    assert protocol.stats.last_rtt_ms == pytest.approx(12.5)


# ---- liveness --------------------------------------------------------------------------------


def test_silence_drops_the_connection(clock, make_protocol):
    protocol = make_protocol()  # max_silence 0.5 s
    clock.advance(0.5)
    assert protocol.check() is None  # at the limit, not beyond
    clock.advance(0.001)
    assert protocol.check() == "silence"
    assert protocol.stats.liveness_breaches == {"silence": 1}


def test_missing_heartbeats_drop_the_connection_while_data_flows(clock, market_feed, make_protocol):
    feed = market_feed()
    protocol = make_protocol()
    protocol.receive(feed.snapshot())
    for _ in range(6):
        clock.advance(0.1)
        protocol.receive(feed.update())
        assert protocol.check() in (None, "heartbeat_timeout")
    assert protocol.check() == "heartbeat_timeout"


def test_an_unanswered_ping_drops_the_connection(clock, make_protocol):
    protocol = make_protocol(ping_interval=0.2)
    for _ in range(2):
        clock.advance(0.2)
        protocol.receive('{"channel":"heartbeat"}')
        assert protocol.check() is None  # the ping goes out, unanswered
    for _ in range(3):
        clock.advance(0.2)
        protocol.receive('{"channel":"heartbeat"}')
    assert protocol.check() == "pong_timeout"


def test_a_snapshot_that_never_comes_is_critical_except_in_maintenance(clock, make_protocol):
    protocol = make_protocol(snapshot_timeout=3.0, ping_interval=0)

    def alive_for(seconds: float) -> str | None:
        """Heartbeats every 0.25 s; the first breach, if any."""
        for _ in range(int(seconds / 0.25)):
            clock.advance(0.25)
            protocol.receive('{"channel":"heartbeat"}')
            if verdict := protocol.check():
                return verdict
        return None

    protocol.receive('{"channel":"status","data":[{"system":"maintenance"}]}')
    assert alive_for(10.0) is None  # a paused exchange sends no snapshots: not our problem
    protocol.receive('{"channel":"status","data":[{"system":"online"}]}')
    assert alive_for(2.5) is None
    assert alive_for(1.0) == "snapshot_timeout ['BTC/USD']"
    assert protocol.stats.errors["snapshot_timeout"] == 1  # critical: counts toward a halt


def test_the_instrument_snapshot_must_arrive(clock, make_protocol):
    protocol = make_protocol(connect=False, snapshot_timeout=1.0)
    protocol.connection_made()  # a new connection, whose instrument snapshot never comes
    clock.advance(1.1)
    protocol.receive('{"channel":"heartbeat"}')
    assert protocol.check() == "instrument_timeout"


# ---- rejected subscriptions ------------------------------------------------------------------


def test_a_rejected_subscription_is_retried_after_its_backoff(
    tmp_path, clock, market_feed, make_protocol
):
    feed = market_feed()
    protocol = make_protocol(backoff_base=1.0, backoff_cap=4.0)
    protocol.data_to_send()
    _reject(protocol, "book", "BTC/USD", "Subscription depth not supported")
    assert protocol.stats.rejected_subscriptions == 1
    assert protocol.open_gaps() == {("BTC/USD", "book"): "subscription_rejected"}
    retried_after = None
    for tick in range(1, 41):  # full jitter: somewhere in [0, 1] s
        clock.advance(0.025)
        protocol.receive('{"channel":"heartbeat"}')
        protocol.check()
        sent = [m for m in _sent(protocol) if m["method"] == "subscribe"]
        if sent:
            assert sent[0]["params"]["symbol"] == ["BTC/USD"]
            retried_after = tick * 0.025
            break
    assert retried_after is not None and retried_after <= 1.0
    _ack(protocol, "book", "BTC/USD")
    protocol.receive(feed.snapshot())
    assert protocol.is_synced("BTC/USD") and protocol.open_gaps() == {}
    protocol.sink.close()
    (gap,) = read_kind(tmp_path / "log", "gap").to_pylist()
    assert gap["reason"] == "subscription_rejected" and gap["end_ts"] is not None


# ---- halts -----------------------------------------------------------------------------------


def test_mismatches_halt_only_when_they_crowd_the_window(clock, market_feed, make_protocol):
    feed = market_feed()
    protocol = make_protocol(max_mismatches=3, halt_window=60.0)

    def mismatch_then_heal() -> None:
        protocol.receive(feed.snapshot())
        protocol.receive(feed.update(corrupt=True))

    mismatch_then_heal()
    clock.advance(50)
    mismatch_then_heal()
    clock.advance(11)  # the first one leaves the window
    mismatch_then_heal()
    assert protocol.halt is None
    clock.advance(1)
    mismatch_then_heal()
    assert protocol.halt is not None and protocol.halt.reason == "checksum_mismatch"
    assert protocol.halt.mismatches == 3


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
    tmp_path, clock, market_feed, make_protocol
):
    btc, eth = market_feed("BTC/USD"), market_feed("ETH/USD")
    protocol = make_protocol(pairs=("BTC/USD", "ETH/USD"))
    _ack(protocol, "trade", "BTC/USD")
    protocol.receive(btc.snapshot())
    protocol.receive(eth.snapshot())
    last_frame_us = clock.time_ns() // 1000
    clock.advance(3.0)
    protocol.connection_lost("silence", stopping=False)
    assert not protocol.is_synced("BTC/USD") and not protocol.is_synced("ETH/USD")
    assert protocol.open_gaps() == {
        ("BTC/USD", "book"): "reconnect",
        ("ETH/USD", "book"): "reconnect",
        ("BTC/USD", "trade"): "reconnect",
    }
    assert protocol.stats.reconnects == 1
    clock.advance(1.0)
    protocol.connection_made()
    protocol.receive(instrument_snapshot_text(DEFAULT_PAIRS))
    protocol.receive(btc.snapshot())
    protocol.receive(eth.snapshot())
    _ack(protocol, "trade", "BTC/USD")
    assert protocol.open_gaps() == {}
    protocol.sink.close()
    gaps = read_kind(tmp_path / "log", "gap").to_pylist()
    assert len(gaps) == 3
    assert all(int(g["start_ts"].timestamp() * SECOND_US) == last_frame_us for g in gaps)
    assert all((g["end_ts"] - g["start_ts"]).total_seconds() == 4.0 for g in gaps)


def test_stopping_leaves_books_as_they_were(market_feed, make_protocol):
    feed = market_feed()
    protocol = make_protocol()
    protocol.receive(feed.snapshot())
    protocol.connection_lost("stopped", stopping=True)
    assert protocol.open_gaps() == {} and protocol.stats.reconnects == 0
    assert protocol.is_synced("BTC/USD")  # the log simply ends at its last verified row


# ---- what comes out: events, and records into any sink ----------------------------------------


def test_events_tell_the_driver_what_happened_once(clock, market_feed, make_protocol):
    btc, eth = market_feed("BTC/USD"), market_feed("ETH/USD")
    protocol = make_protocol(pairs=("BTC/USD", "ETH/USD"), max_mismatches=1)
    assert protocol.events_received() == []
    status = '{"channel":"status","type":"update","data":[{"system":"%s"}]}'
    protocol.receive(status % "online")
    protocol.receive(btc.snapshot())
    assert protocol.events_received() == [ExchangeStatusChanged("online", None)]
    protocol.receive(eth.snapshot())  # now every book has verified a snapshot
    assert protocol.events_received() == [BooksSynced()]
    protocol.receive(status % "online")  # no change, no event
    protocol.receive(btc.update())
    assert protocol.events_received() == []
    protocol.receive(btc.update(corrupt=True))  # one mismatch halts at max_mismatches=1
    assert protocol.halt is not None and protocol.halt.reason == "checksum_mismatch"
    assert protocol.events_received() == [Halted(protocol.halt)]
    assert protocol.events_received() == []


class MemorySink:
    """A `RecordSink` that keeps what it is given: what a bus publisher would see."""

    def __init__(self, fail_after: int | None = None) -> None:
        self.books: list[tuple] = []
        self.gaps: list[tuple] = []
        self.fail_after = fail_after
        self.closed = False

    def book(self, recv_us, exch_ts, symbol, kind, bids, asks, checksum, ok, *rest) -> int:
        if self.fail_after is not None and len(self.books) >= self.fail_after:
            raise SinkError("the bus refused the message")
        self.books.append((symbol, kind, bids, asks, checksum, ok))
        return len(self.books) - 1

    def book_top(self, *row) -> int:
        return 0

    def trade(self, recv_us, kind, item) -> int:
        return 0

    def ohlc(self, recv_us, kind, item) -> int:
        return 0

    def gap(self, *row) -> int:
        self.gaps.append(row)
        return len(self.gaps) - 1


def test_any_record_sink_gets_every_book_item_with_its_verdict(clock, market_feed, fast_protocol):
    """No log needed: a second consumer (a bus) sees the items as received, with the verdict,
    and can rebuild the very book the protocol keeps from the verified ones."""
    feed = market_feed()
    sink = MemorySink()
    protocol = KrakenProtocol(fast_protocol(pairs=("BTC/USD",)), sink=sink, clock=clock)
    protocol.connection_made()
    protocol.receive(instrument_snapshot_text(DEFAULT_PAIRS))
    protocol.receive(feed.snapshot())
    for n in range(40):
        protocol.receive(feed.update(corrupt=n == 20))
        if n == 20:
            _ack(protocol, "book", "BTC/USD", method="unsubscribe")
            protocol.receive(feed.snapshot())
    assert [ok for *_, ok in sink.books].count(False) == 1
    assert len(sink.gaps) == 1 and sink.gaps[0][3] == "checksum_mismatch"

    rebuilt = KrakenBook("BTC/USD", 10, 1, 8)
    for symbol, kind, bids, asks, checksum, ok in sink.books:
        item = {
            "symbol": symbol,
            "bids": [{"price": p, "qty": q} for p, q in bids],
            "asks": [{"price": p, "qty": q} for p, q in asks],
            "checksum": checksum,
        }
        if ok:
            apply = rebuilt.apply_snapshot if kind == "snapshot" else rebuilt.apply_update
            assert apply(item)
    live = protocol.book("BTC/USD")
    assert live is not None and rebuilt.checksum() == live.checksum()
    assert rebuilt.bids() == live.bids() and rebuilt.asks() == live.asks()


def test_a_sink_that_cannot_keep_a_record_halts_the_stream(clock, market_feed, fast_protocol):
    feed = market_feed()
    protocol = KrakenProtocol(
        fast_protocol(pairs=("BTC/USD",)), sink=MemorySink(fail_after=3), clock=clock
    )
    protocol.connection_made()
    protocol.receive(instrument_snapshot_text(DEFAULT_PAIRS))
    protocol.receive(feed.snapshot())
    for _ in range(5):
        protocol.receive(feed.update())  # the fourth record fails; nothing escapes
    assert protocol.halt is not None
    assert (protocol.halt.reason, protocol.halt.detail) == (
        "log_write_failed",
        "the bus refused the message",
    )
    assert Halted(protocol.halt) in protocol.events_received()


# ---- one message, several books -----------------------------------------------------------------


def _two_books(first: str, second: str) -> str:
    """One ``book`` message holding the items of two single-item messages, text untouched."""
    items = []
    for frame in (first, second):
        head, _, rest = frame.partition('"data":[')
        assert rest.endswith("]}")
        items.append(rest[:-2])
    return f'{head}"data":[{",".join(items)}]}}'


def test_every_item_of_a_message_is_judged_and_a_halt_stops_the_rest(market_feed, make_protocol):
    btc, eth = market_feed("BTC/USD"), market_feed("ETH/USD")
    protocol = make_protocol(pairs=("BTC/USD", "ETH/USD"))
    protocol.receive(_two_books(btc.snapshot(), eth.snapshot()))
    assert protocol.is_synced("BTC/USD") and protocol.is_synced("ETH/USD")
    protocol.receive(_two_books(btc.update(corrupt=True), eth.update()))
    assert not protocol.is_synced("BTC/USD") and protocol.is_synced("ETH/USD")
    assert protocol.stats.symbols["ETH/USD"].updates_verified == 1  # judged after the rejection

    halting = make_protocol(pairs=("BTC/USD", "ETH/USD"), max_mismatches=1)
    btc, eth = market_feed("BTC/USD"), market_feed("ETH/USD")
    halting.receive(_two_books(btc.snapshot(), eth.snapshot()))
    rows = halting.sink.next_seq("book")
    eth_book = halting.book("ETH/USD")
    assert eth_book is not None
    eth_checksum = eth_book.checksum()
    halting.receive(_two_books(btc.update(corrupt=True), eth.update()))
    assert halting.halt is not None and halting.halt.reason == "checksum_mismatch"
    assert halting.sink.next_seq("book") == rows + 1  # the ETH item after the halt: untouched
    assert eth_book.checksum() == eth_checksum
