"""The fan-out's wire format and sequencing, as plain functions (no bus, no network)."""

from __future__ import annotations

import json
from decimal import Decimal

import jsonschema
import pytest

from ingest_platform.streaming.kraken.book import KrakenBook, kraken_book_checksum
from ingest_platform.streaming.kraken.fanout import message as m

SNAPSHOT = {
    "symbol": "BTC/USD",
    "bids": [{"price": "100.1", "qty": "0.5"}, {"price": "100.0", "qty": 2}],
    "asks": [{"price": "100.2", "qty": "0.00000001"}, {"price": "100.3", "qty": "1.25"}],
}


def _book() -> KrakenBook:
    book = KrakenBook("BTC/USD", 10, 1, 8)
    checksum = kraken_book_checksum(
        [(a["price"], a["qty"]) for a in SNAPSHOT["asks"]],
        [(b["price"], b["qty"]) for b in SNAPSHOT["bids"]],
        1,
        8,
    )
    assert book.apply_snapshot({**SNAPSHOT, "checksum": checksum})
    return book


def test_subjects_and_message_ids_name_pair_kind_epoch_and_seq():
    assert m.subject("book", "BTC/USD") == "kraken.book.BTC_USD"
    assert m.subject("trade", "ETH/USD") == "kraken.trade.ETH_USD"
    assert m.subject("halt") == "kraken.halt"
    assert m.subjects_filter() == "kraken.>"
    assert m.book_msg_id("BTC/USD", 3, 17) == "BTC/USD:3:17"
    with pytest.raises(ValueError, match="needs a pair"):
        m.subject("book")
    with pytest.raises(ValueError, match="unknown event kind 'quote'"):
        m.subject("quote", "BTC/USD")
    with pytest.raises(ValueError, match="subject token"):
        m.pair_token("BTC.USD")


def test_a_book_event_keeps_the_received_text_and_round_trips_through_the_schema():
    event = m.book_event(
        "BTC/USD",
        1,
        0,
        "update",
        m.level_list([("100.10", "0.50000000"), ("99", 0)]),
        [],
        123,
        10,
        1,
        8,
        "2026-12-07T15:00:00.000001Z",
        1_765_000_000_000_001,
    )
    assert event["bids"] == [["100.10", "0.50000000"], ["99", "0"]]  # as received, never float
    decoded = m.decode(m.encode(event))
    assert decoded == event
    jsonschema.validate(decoded, m.load_schema())
    broken = {**event, "bids": [[100.1, "0.5"]]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, m.load_schema())


def test_a_snapshot_of_the_book_is_exact_text_and_reverifies_its_checksum():
    book = _book()
    bids, asks = m.book_levels(book)
    assert asks[0] == ["100.2", "0.00000001"]  # never 1E-8
    assert bids == [["100.1", "0.50000000"], ["100.0", "2.00000000"]]
    rebuilt = KrakenBook("BTC/USD", 10, 1, 8)
    item = {
        "symbol": "BTC/USD",
        "bids": [{"price": p, "qty": q} for p, q in bids],
        "asks": [{"price": p, "qty": q} for p, q in asks],
        "checksum": book.checksum(),
    }
    assert rebuilt.apply_snapshot(item)
    assert m.levels_as_decimals(asks)[0] == (Decimal("100.2"), Decimal("0.00000001"))


def test_other_events_validate_against_the_schema():
    schema = m.load_schema()
    trade = m.feed_event(
        "trade",
        "BTC/USD",
        "s1",
        0,
        "update",
        {"symbol": "BTC/USD", "price": "100.1", "qty": 3, "side": "buy", "trade_id": 7},
        5,
    )
    assert trade["data"]["qty"] == "3" and trade["data"]["trade_id"] == 7
    status = m.status_event("s1", 0, "exchange", "maintenance", "online", 9)
    halt = m.halt_event(
        "s1", 1, {"reason": "checksum_mismatch", "detail": "x", "mismatches": 5}, 10
    )
    for event in (trade, status, {**halt, "critical_errors": 0}):
        jsonschema.validate(m.decode(m.encode(event)), schema)


def test_encoding_writes_the_same_bytes_as_compact_json_dumps():
    """The encoder is an implementation detail: the bytes on the wire are the format's compact
    JSON (what ``json.dumps(separators=(",", ":"))`` writes), key order included."""
    book = m.book_event(
        "BTC/USD", 3, 41, "update", m.level_list([("100.10", "0.5"), (99, 0)]),
        m.level_list([("100.2", "1E-8")]), 4294967295, 10, 1, 8, None, 1_765_000_000_000_001,
    )  # fmt: skip
    trade = m.feed_event("trade", "ETH/USD", "s1", 2, "update", {"price": 1, "qty": "2"}, 5)
    halt = m.halt_event("s1", 1, {"reason": "r", "detail": 'a "quoted"\nline'}, 10)
    for event in (book, trade, m.status_event("s1", 0, "connection", None, "online", 9), halt):
        assert m.encode(event) == json.dumps(event, separators=(",", ":")).encode()
        assert m.decode(m.encode(event)) == event


def test_decode_names_what_is_wrong():
    with pytest.raises(m.MessageError, match="not JSON"):
        m.decode(b"{")
    with pytest.raises(m.MessageError, match="format version 2"):
        m.decode(b'{"v": 2, "kind": "book"}')
    with pytest.raises(m.MessageError, match="unknown kind 'quote'"):
        m.decode(b'{"v": 1, "kind": "quote"}')


def test_each_epoch_starts_at_seq_zero_and_snapshots_every_n_updates():
    seqs = m.SnapshotSequencer(snapshot_every=3)
    assert seqs.update("BTC/USD") is None  # nothing before a snapshot
    assert seqs.new_epoch("BTC/USD") == m.Slot(1, 0)
    assert seqs.update("BTC/USD") == (m.Slot(1, 1), False)
    assert seqs.update("BTC/USD") == (m.Slot(1, 2), False)
    assert seqs.update("BTC/USD") == (m.Slot(1, 3), True)
    assert seqs.snapshot("BTC/USD") == m.Slot(1, 4)
    assert seqs.update("BTC/USD") == (m.Slot(1, 5), False)
    seqs.end("BTC/USD")  # a mismatch: no update until a new epoch starts with a snapshot
    assert seqs.update("BTC/USD") is None
    assert seqs.new_epoch("BTC/USD") == m.Slot(2, 0)


def test_epochs_never_repeat_one_the_bus_already_holds():
    seqs = m.SnapshotSequencer(snapshot_every=10)
    seqs.floor("BTC/USD", 41)  # a previous run of the stream published epoch 41
    assert seqs.new_epoch("BTC/USD").epoch == 42
    seqs.floor("BTC/USD", 5)  # an older floor changes nothing
    assert seqs.new_epoch("BTC/USD").epoch == 43
    with pytest.raises(ValueError, match="snapshot_every"):
        m.SnapshotSequencer(0)


def test_trade_and_ohlc_seqs_are_gapless_per_kind_and_pair():
    feeds = m.FeedSequencer()
    assert [feeds.next("trade", "BTC/USD") for _ in range(3)] == [0, 1, 2]
    assert feeds.next("ohlc", "BTC/USD") == 0
    assert feeds.next("trade", "ETH/USD") == 0
