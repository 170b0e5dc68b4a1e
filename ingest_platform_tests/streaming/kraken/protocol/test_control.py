"""`Control` on its own: requests become frames only on a connection, answers come back as
values and move the subscriptions' state machines; it calls nothing back."""

from __future__ import annotations

import json
import random
from typing import Any

from ingest_platform.streaming.kraken.protocol.control import (
    AlreadySubscribed,
    Control,
    Pong,
    Rejected,
    ServerError,
    Subscribed,
    Unrecognized,
    Unsubscribed,
)
from ingest_platform.streaming.kraken.protocol.settings import ProtocolSettings
from ingest_platform.streaming.kraken.protocol.subscriptions import SubscriptionState

SECOND_NS = 1_000_000_000
PAIRS = ("BTC/USD", "ETH/USD")


def connected(**overrides: Any) -> Control:
    control = Control(ProtocolSettings(pairs=PAIRS, **overrides), random.Random(1))
    control.connection_made()
    control.outgoing.clear()  # the instrument subscription
    return control


def sent(control: Control) -> list[dict[str, Any]]:
    frames = [json.loads(text) for text in control.outgoing]
    control.outgoing.clear()
    return frames


def ack(channel: str, symbol: str, method: str = "subscribe", success: bool = True) -> dict:
    return {"method": method, "success": success, "result": {"channel": channel, "symbol": symbol}}


def test_requests_go_out_only_on_a_connection_and_die_with_it():
    control = Control(ProtocolSettings(pairs=PAIRS), random.Random(1))
    control.subscribe("book", ["BTC/USD"], 0)
    assert control.outgoing == [] and control.subscriptions.state("book", "BTC/USD") is None
    control.connection_made()
    (instrument,) = sent(control)
    assert instrument["params"] == {"channel": "instrument", "snapshot": True}
    control.subscribe("book", list(PAIRS), 5)
    control.subscribe("ohlc", list(PAIRS), 5)
    book, ohlc = sent(control)
    assert book["params"] == {
        "channel": "book",
        "symbol": list(PAIRS),
        "snapshot": True,
        "depth": 10,
    }
    assert ohlc["params"]["interval"] == 1 and ohlc["req_id"] == book["req_id"] + 1
    assert dict(control.awaiting()) == {"BTC/USD": 5, "ETH/USD": 5}  # only books await snapshots
    assert control.subscriptions.state("book", "BTC/USD") is SubscriptionState.PENDING

    control.connection_lost()
    assert control.outgoing == [] and not control.connected
    assert dict(control.awaiting()) == {"BTC/USD": None, "ETH/USD": None}
    assert control.subscriptions.state("book", "BTC/USD") is None


def test_answers_come_back_as_values():
    control = connected()
    control.subscribe("trade", ["BTC/USD"], 0)
    control.subscribe("book", ["BTC/USD"], 0)
    assert control.answer(ack("trade", "BTC/USD"), 0) == Subscribed("trade", "BTC/USD", True)
    # A book is live only once its snapshot verifies, not on its ack.
    assert control.answer(ack("book", "BTC/USD"), 0) == Subscribed("book", "BTC/USD", False)
    assert control.snapshot_verified("BTC/USD")
    assert control.subscriptions.state("book", "BTC/USD") is SubscriptionState.ACTIVE
    instrument_ack = {"method": "subscribe", "success": True, "result": {"channel": "instrument"}}
    assert control.answer(instrument_ack, 0) is None
    assert control.answer({"method": "pong", "req_id": 7}, 0) == Pong(7)
    assert control.answer({"method": "pong"}, 0) is None
    error = {"method": "add_order", "success": False, "error": "EGeneral:Invalid arguments"}
    assert control.answer(error, 0) == ServerError("add_order: EGeneral:Invalid arguments")
    assert control.answer({"method": "frobnicate"}, 0) == Unrecognized()


def test_a_rejection_names_the_requests_symbols_and_schedules_their_retries():
    control = connected(backoff_base=1.0, backoff_cap=1.0)
    control.subscribe("book", list(PAIRS), 0)
    (request,) = sent(control)
    refusal = {"method": "subscribe", "success": False, "error": "Currency pair not supported"}
    answer = control.answer({**refusal, "req_id": request["req_id"]}, now_ns=0)
    # The error names no symbol and no channel: the request id does.
    assert answer == Rejected("book", PAIRS, "Currency pair not supported")
    assert dict(control.awaiting()) == {"BTC/USD": None, "ETH/USD": None}  # no snapshot coming
    assert control.due(0) == []
    assert sorted(control.due(SECOND_NS)) == [("book", "BTC/USD"), ("book", "ETH/USD")]


def test_already_subscribed_trusts_the_exchange_for_configured_pairs_only():
    control = connected()
    already = {"method": "subscribe", "success": False, "error": "Already subscribed"}
    answer = control.answer({**already, "symbol": "BTC/USD", "result": {"channel": "trade"}}, 0)
    assert answer == AlreadySubscribed("trade", ("BTC/USD",), "Already subscribed")
    assert control.subscriptions.state("trade", "BTC/USD") is SubscriptionState.ACTIVE
    answer = control.answer({**already, "symbol": "DOGE/USD", "result": {"channel": "trade"}}, 0)
    assert answer == AlreadySubscribed("trade", (), "Already subscribed")
    assert control.subscriptions.state("trade", "DOGE/USD") is None


def test_a_resync_unsubscribes_once_and_its_ack_asks_for_the_resubscribe():
    control = connected()
    control.subscribe("book", ["BTC/USD"], 0)
    assert not control.resync("BTC/USD", 1)  # its snapshot is on its way already
    control.snapshot_verified("BTC/USD")
    sent(control)
    assert control.resync("BTC/USD", 10)
    assert not control.resync("BTC/USD", 11)  # this resync is unsubscribing already
    (unsubscribe,) = sent(control)
    assert unsubscribe["method"] == "unsubscribe"
    assert unsubscribe["params"] == {"channel": "book", "symbol": ["BTC/USD"], "depth": 10}
    assert dict(control.awaiting())["BTC/USD"] == 10
    assert control.answer(ack("book", "BTC/USD", "unsubscribe"), 0) == Unsubscribed(
        "BTC/USD", True, True
    )
    # An unsubscribe ack for a book that is not resyncing asks for nothing.
    assert control.answer(ack("book", "ETH/USD", "unsubscribe", False), 0) == Unsubscribed(
        "ETH/USD", False, False
    )


def test_snapshots_held_back_by_maintenance_are_due_afresh():
    control = connected()
    control.subscribe("book", ["BTC/USD"], 5)
    control.maintenance_over(100)
    assert dict(control.awaiting()) == {"BTC/USD": 100, "ETH/USD": None}
    control.snapshot_verified("BTC/USD")
    assert dict(control.awaiting()) == {"BTC/USD": None, "ETH/USD": None}
