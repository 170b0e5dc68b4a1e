"""The Kraken v2 sandbox server, over real WebSockets on loopback.

Book streams are verified by `ShadowBook`, a third implementation written here (plain dicts
of ``Decimal``, full sorts, the checksum rule spelled out with ``format`` and ``zlib``). It
shares no code with the sandbox's integer-tick simulation nor with the platform's
``streaming/kraken/book.py``, so the three cross-check each other. Every receive has a
timeout; servers are stopped by fixtures even when a test fails.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from ingest_platform.sandbox.control import WS_FAULTS, FaultPlan, RequestCounters
from ingest_platform.sandbox.kraken_ws import HANDLED_FAULTS, KrakenSandboxServer

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ALL_DEPTHS = (10, 25, 100, 500, 1000)

# --- an independent book -------------------------------------------------------------------


def checksum_field(value: Decimal, precision: int) -> str:
    return format(value, f".{precision}f").replace(".", "").lstrip("0")


class ShadowBook:
    """A client's copy of one symbol's book: apply every level, then truncate to depth."""

    def __init__(self, depth: int, price_precision: int, qty_precision: int, truncate=True):
        self.depth = depth
        self.pp = price_precision
        self.qp = qty_precision
        self.truncate = truncate
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.truncated = 0  # levels dropped by truncation: pushed out without a delete

    def load(self, data: dict[str, Any]) -> None:
        self.bids = {lvl["price"]: lvl["qty"] for lvl in data["bids"]}
        self.asks = {lvl["price"]: lvl["qty"] for lvl in data["asks"]}

    def apply(self, data: dict[str, Any]) -> None:
        for side, levels in ((self.bids, data["bids"]), (self.asks, data["asks"])):
            for lvl in levels:
                if lvl["qty"] == 0:
                    assert lvl["price"] in side, f"delete of a level the client never had: {lvl}"
                    del side[lvl["price"]]
                else:
                    side[lvl["price"]] = lvl["qty"]
        if self.truncate:
            for side, best_first in ((self.bids, True), (self.asks, False)):
                for price in sorted(side, reverse=best_first)[self.depth :]:
                    del side[price]
                    self.truncated += 1

    def top(self, n: int) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        bids = sorted(self.bids.items(), reverse=True)[:n]
        asks = sorted(self.asks.items())[:n]
        return bids, asks

    def checksum(self) -> int:
        bids, asks = self.top(10)
        text = "".join(
            checksum_field(p, self.pp) + checksum_field(q, self.qp) for p, q in asks + bids
        )
        return zlib.crc32(text.encode())


# --- client helpers ------------------------------------------------------------------------


def parse(raw: str | bytes) -> dict[str, Any]:
    return json.loads(raw, parse_float=Decimal)


def recv(ws: ClientConnection, timeout: float = 3.0) -> dict[str, Any]:
    return parse(ws.recv(timeout=timeout))


def send(ws: ClientConnection, method: str, req_id: int | None = None, **params: Any) -> None:
    message: dict[str, Any] = {"method": method}
    if params:
        message["params"] = params
    if req_id is not None:
        message["req_id"] = req_id
    ws.send(json.dumps(message))


def receive_until(
    ws: ClientConnection, done: Callable[[list[dict]], bool], timeout: float = 5.0
) -> list[dict[str, Any]]:
    """Messages (heartbeats left out) until ``done(messages)``; fails after ``timeout``."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while not done(messages):
        left = deadline - time.monotonic()
        assert left > 0, f"timed out; last messages: {messages[-3:]}"
        message = recv(ws, timeout=left)
        if message.get("channel") != "heartbeat":
            messages.append(message)
    return messages


def is_ack(message: dict, method: str = "subscribe") -> bool:
    return message.get("method") == method and "success" in message


def subscribe(
    ws: ClientConnection, req_id: int, channel: str, symbols: list[str] | None = None, **params
) -> list[dict[str, Any]]:
    """Subscribe and return everything up to the last ack and snapshot it implies."""
    request = {"channel": channel, **params}
    if symbols is not None:
        request["symbol"] = symbols
    send(ws, "subscribe", req_id, **request)
    acks_needed = len(symbols or [None])

    def done(messages: list[dict]) -> bool:
        acks = [m for m in messages if is_ack(m) and m.get("req_id") == req_id]
        ok = sum(1 for m in acks if m["success"])
        snapshots = sum(
            1 for m in messages if m.get("channel") == channel and m.get("type") == "snapshot"
        )
        return len(acks) == acks_needed and (not params.get("snapshot", True) or snapshots >= ok)

    return receive_until(ws, done)


def instrument_precisions(ws: ClientConnection) -> dict[str, tuple[int, int]]:
    messages = subscribe(ws, 900, "instrument")
    snapshot = next(m for m in messages if m.get("channel") == "instrument")
    return {
        p["symbol"]: (p["price_precision"], p["qty_precision"]) for p in snapshot["data"]["pairs"]
    }


@pytest.fixture
def make_server() -> Iterator[Callable[..., KrakenSandboxServer]]:
    servers: list[KrakenSandboxServer] = []

    def factory(**kwargs: Any) -> KrakenSandboxServer:
        kwargs.setdefault("heartbeat_interval", 5.0)
        server = KrakenSandboxServer(**kwargs)
        server.start()
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@contextlib.contextmanager
def open_ws(server: KrakenSandboxServer) -> Iterator[ClientConnection]:
    """A client connection whose status message has been read."""
    with connect(server.url, open_timeout=5, close_timeout=1, max_queue=None) as ws:
        status = recv(ws)
        assert status["channel"] == "status", status
        yield ws


class StreamChecker:
    """Feeds book messages to one `ShadowBook` per symbol and checks every checksum."""

    def __init__(self, precisions: dict[str, tuple[int, int]], depth: int) -> None:
        self.precisions = precisions
        self.depth = depth
        self.books: dict[str, ShadowBook] = {}
        self.naive: dict[str, ShadowBook] = {}  # the same book without truncation
        self.updates = 0
        self.naive_mismatches = 0

    def feed(self, message: dict[str, Any]) -> None:
        assert message["channel"] == "book"
        (data,) = message["data"]
        symbol = data["symbol"]
        pp, qp = self.precisions[symbol]
        if message["type"] == "snapshot":
            assert len(data["bids"]) == len(data["asks"]) == self.depth
            self.books[symbol] = ShadowBook(self.depth, pp, qp)
            self.naive[symbol] = ShadowBook(self.depth, pp, qp, truncate=False)
            self.books[symbol].load(data)
            self.naive[symbol].load(data)
        else:
            assert RFC3339.match(data["timestamp"]), data["timestamp"]
            self.books[symbol].apply(data)
            self.naive[symbol].apply(data)
            self.updates += 1
        book = self.books[symbol]
        assert len(book.bids) == len(book.asks) == self.depth, (symbol, len(book.bids))
        bids, asks = book.top(1)
        assert bids[0][0] < asks[0][0], f"crossed book {bids[0]} / {asks[0]}"
        assert book.checksum() == data["checksum"], f"{symbol} depth {self.depth}: {message}"
        if self.naive[symbol].checksum() != data["checksum"]:
            self.naive_mismatches += 1

    @property
    def truncated(self) -> int:
        return sum(b.truncated for b in self.books.values())


def book_messages(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m.get("channel") == "book"]


# --- connection basics ---------------------------------------------------------------------


def test_status_on_connect_then_ping_pong(make_server):
    server = make_server(seed=3)
    with connect(server.url, open_timeout=5) as ws:
        status = recv(ws)
        assert status["channel"] == "status" and status["type"] == "update"
        (info,) = status["data"]
        assert info["system"] == "online" and info["api_version"] == "v2"
        assert info["version"].startswith("2.0.")
        assert isinstance(info["connection_id"], int) and info["connection_id"] > 0
        send(ws, "ping", 42)
        pong = recv(ws)
        assert pong["method"] == "pong" and pong["req_id"] == 42
        assert RFC3339.match(pong["time_in"]) and RFC3339.match(pong["time_out"])
        assert pong["time_in"] <= pong["time_out"]
    assert server.counters.get("kraken.connect") == 1
    assert server.counters.get("kraken.ping") == 1


def test_other_paths_are_refused(make_server):
    server = make_server()
    with pytest.raises(InvalidStatus) as refused:
        connect(server.url.replace("/v2", "/v1"), open_timeout=5)
    assert refused.value.response.status_code == 404


def test_an_idle_connection_gets_heartbeats_and_nothing_else(make_server):
    """(Their cadence is wall-clock timing: the stream client's liveness limits are tested
    against it end to end, and a test here would only measure how loaded the machine is.)"""
    server = make_server(heartbeat_interval=0.05)
    with open_ws(server) as ws:
        messages = [recv(ws, timeout=5) for _ in range(5)]
    assert messages == [{"channel": "heartbeat"}] * 5
    assert server.counters.get("kraken.sent.heartbeat") >= 5


def test_instrument_snapshot_carries_precisions(make_server):
    server = make_server()
    with open_ws(server) as ws:
        messages = subscribe(ws, 1, "instrument")
    ack, snapshot = messages
    assert ack["success"] and ack["result"]["channel"] == "instrument"
    assert snapshot["type"] == "snapshot"
    pairs = {p["symbol"]: p for p in snapshot["data"]["pairs"]}
    assert {"BTC/USD", "ETH/USD", "XRP/USD"} <= set(pairs)
    btc = pairs["BTC/USD"]
    assert (btc["price_precision"], btc["qty_precision"]) == (1, 8)
    assert btc["price_increment"] == Decimal("0.1") and btc["tick_size"] == Decimal("0.1")
    assert btc["qty_increment"] == Decimal("0.00000001")
    assert btc["base"] == "BTC" and btc["quote"] == "USD" and btc["status"] == "online"
    assert len({p["price_precision"] for p in pairs.values()}) >= 3
    for pair in pairs.values():
        assert pair["price_increment"] == Decimal(1).scaleb(-pair["price_precision"])
    assets = {a["id"] for a in snapshot["data"]["assets"]}
    assert {"BTC", "USD"} <= assets


def test_subscribe_acks_one_per_symbol_and_errors_in_kraken_form(make_server):
    server = make_server(rate=0)
    with open_ws(server) as ws:
        messages = subscribe(ws, 7, "book", ["BTC/USD", "XYZ/USD"], depth=25)
        acks = [m for m in messages if is_ack(m)]
        ok = next(a for a in acks if a["success"])
        assert ok["req_id"] == 7
        assert ok["result"] == {
            "channel": "book",
            "depth": 25,
            "snapshot": True,
            "symbol": "BTC/USD",
        }
        assert RFC3339.match(ok["time_in"]) and RFC3339.match(ok["time_out"])
        bad = next(a for a in acks if not a["success"])
        assert bad["error"] == "Currency pair not supported XYZ/USD"
        assert bad["symbol"] == "XYZ/USD" and bad["method"] == "subscribe" and bad["req_id"] == 7
        (snapshot,) = book_messages(messages)
        assert snapshot["data"][0]["symbol"] == "BTC/USD"

        (depth_error,) = subscribe(ws, 8, "book", ["ETH/USD"], depth=20)
        assert not depth_error["success"]
        assert depth_error["error"] == "Subscription depth not supported"
        assert depth_error["symbol"] == "ETH/USD"
        (duplicate,) = subscribe(ws, 9, "book", ["BTC/USD"], depth=25)
        assert not duplicate["success"] and duplicate["error"] == "Already subscribed"
        (interval_error,) = subscribe(ws, 10, "ohlc", ["BTC/USD"], interval=7)
        assert not interval_error["success"]

        send(ws, "subscribe", 11, channel="nonsense", symbol=["BTC/USD"])
        assert not recv(ws)["success"]
        ws.send("this is not json")
        assert recv(ws)["error"] == "Malformed request"
    assert server.counters.by_symbol("kraken.subscribe.book") == {
        "BTC/USD": 2,
        "XYZ/USD": 1,
        "ETH/USD": 1,
    }


def test_unsubscribe_acks_then_stops_that_symbol_only(make_server):
    server = make_server(rate=400)
    with open_ws(server) as ws:
        subscribe(ws, 1, "book", ["BTC/USD", "ETH/USD"])
        receive_until(ws, lambda ms: len(book_messages(ms)) >= 20)
        send(ws, "unsubscribe", 2, channel="book", symbol=["BTC/USD"])
        receive_until(ws, lambda ms: any(is_ack(m, "unsubscribe") for m in ms))
        after = receive_until(ws, lambda ms: len(ms) >= 60)
        symbols = {m["data"][0]["symbol"] for m in book_messages(after)}
        assert symbols == {"ETH/USD"}
        send(ws, "unsubscribe", 3, channel="book", symbol=["BTC/USD"])
        again = receive_until(ws, lambda ms: any(is_ack(m, "unsubscribe") for m in ms))
        assert again[-1]["success"] is False and again[-1]["error"] == "Subscription Not Found"


# --- the book stream -----------------------------------------------------------------------


@pytest.mark.parametrize("depth", ALL_DEPTHS)
def test_book_stream_verifies_at_every_depth(make_server, depth):
    """Every checksum matches an independent book that applies, then truncates to depth."""
    server = make_server(seed=depth, rate=1500)
    symbols = ["BTC/USD", "ADA/EUR"]  # price precision 1 and 6
    with open_ws(server) as ws:
        checker = StreamChecker(instrument_precisions(ws), depth)
        for message in book_messages(subscribe(ws, 1, "book", symbols, depth=depth)):
            checker.feed(message)
        deadline = time.monotonic() + 15
        while checker.updates < 400:
            assert time.monotonic() < deadline
            message = recv(ws)
            if message.get("channel") == "book":
                checker.feed(message)
    # levels pushed out of the view arrived without deletes: only truncation removed them
    assert checker.truncated > 0


def test_every_pair_verifies_and_truncation_is_necessary(make_server):
    """All precisions verify; a client that does not truncate to depth diverges."""
    server = make_server(seed=5, rate=2000)
    with open_ws(server) as ws:
        precisions = instrument_precisions(ws)
        checker = StreamChecker(precisions, 10)
        for message in book_messages(subscribe(ws, 1, "book", sorted(precisions), depth=10)):
            checker.feed(message)
        deadline = time.monotonic() + 15
        while checker.updates < 1500:
            assert time.monotonic() < deadline
            message = recv(ws)
            if message.get("channel") == "book":
                checker.feed(message)
    assert len(checker.books) == len(precisions) >= 5
    assert checker.truncated > 0
    assert checker.naive_mismatches > 0


def test_connections_share_one_market_at_different_depths(make_server):
    server = make_server(seed=9, rate=0)
    with open_ws(server) as shallow, open_ws(server) as deep:
        precisions = instrument_precisions(shallow)
        checkers = {10: StreamChecker(precisions, 10), 100: StreamChecker(precisions, 100)}
        for ws, depth in ((shallow, 10), (deep, 100)):
            for message in book_messages(subscribe(ws, 1, "book", ["ETH/USD"], depth=depth)):
                checkers[depth].feed(message)
        server.set_rate(1000)
        checksums: dict[int, list[tuple[str, int]]] = {10: [], 100: []}
        for ws, depth in ((shallow, 10), (deep, 100)):
            for message in book_messages(receive_until(ws, lambda ms: len(ms) >= 150)):
                checkers[depth].feed(message)
                data = message["data"][0]
                checksums[depth].append((data["timestamp"], data["checksum"]))
    # the top ten is the same whatever the depth, so are the checksums, update for update
    assert checksums[10][:100] == checksums[100][:100]


def test_trades_and_candles_are_well_formed_and_at_the_touch(make_server):
    server = make_server(seed=4, rate=2000)
    with open_ws(server) as ws:
        precisions = instrument_precisions(ws)
        checker = StreamChecker(precisions, 10)
        subscribe(ws, 2, "trade", ["BTC/USD"])
        subscribe(ws, 3, "ohlc", ["BTC/USD"], interval=1)
        for message in book_messages(subscribe(ws, 1, "book", ["BTC/USD"])):
            checker.feed(message)
        touch_before: dict[str, tuple[Decimal, Decimal]] = {}
        touch = checker.books["BTC/USD"].top(1)
        trades: list[dict] = []
        candles: list[dict] = []
        deadline = time.monotonic() + 15
        while len(trades) < 20 or len(candles) < 20:
            assert time.monotonic() < deadline
            message = recv(ws)
            channel = message.get("channel")
            if channel == "book":
                timestamp = message["data"][0]["timestamp"]
                (best_bid, _), (best_ask, _) = touch[0][0], touch[1][0]
                touch_before[timestamp] = (best_bid, best_ask)
                checker.feed(message)
                touch = checker.books["BTC/USD"].top(1)
            elif channel == "trade":
                assert message["type"] == "update"
                trades.extend(message["data"])
                for trade in message["data"]:
                    bid, ask = touch_before[trade["timestamp"]]
                    assert trade["price"] == (bid if trade["side"] == "sell" else ask), trade
            elif channel == "ohlc":
                assert message["type"] == "update"
                candles.extend(message["data"])
    pp, qp = precisions["BTC/USD"]
    ids = [t["trade_id"] for t in trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    for trade in trades:
        assert trade["symbol"] == "BTC/USD" and trade["ord_type"] in {"market", "limit"}
        assert trade["qty"] > 0 and -trade["qty"].as_tuple().exponent <= qp
        assert -trade["price"].as_tuple().exponent <= pp
        assert RFC3339.match(trade["timestamp"])
    for candle in candles:
        assert candle["interval"] == 1 and candle["symbol"] == "BTC/USD"
        assert candle["low"] <= min(candle["open"], candle["close"])
        assert candle["high"] >= max(candle["open"], candle["close"])
        assert candle["low"] <= candle["vwap"] <= candle["high"]
        assert candle["trades"] >= 1 and candle["volume"] > 0
        begin = datetime.fromisoformat(candle["interval_begin"].replace("Z", "+00:00"))
        assert begin.second == 0 and begin.microsecond == 0
    # a new subscriber gets the recent trades as a snapshot
    with open_ws(server) as late:
        messages = subscribe(late, 1, "trade", ["BTC/USD"])
    snapshot = next(m for m in messages if m.get("type") == "snapshot")
    assert 1 <= len(snapshot["data"]) <= 50


# --- faults --------------------------------------------------------------------------------


def test_every_websocket_fault_kind_is_handled():
    assert HANDLED_FAULTS == WS_FAULTS


@pytest.mark.parametrize("close_frame", [False, True])
def test_drop_after_closes_the_connection_after_n_messages(make_server, close_frame):
    faults = FaultPlan()
    faults.add("drop_after", endpoint="kraken", times=1, messages=6, close_frame=close_frame)
    server = make_server(rate=200, faults=faults)
    received = []
    with connect(server.url, open_timeout=5, close_timeout=1) as ws:
        send(ws, "subscribe", 1, channel="book", symbol=["BTC/USD"])
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                received.append(recv(ws))
    # status, ack, snapshot, then updates: six messages, counted from the connection's start
    assert len(received) == 6
    assert [m.get("channel") for m in received[:1]] == ["status"]
    if close_frame:
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    else:
        assert isinstance(closed.value, ConnectionClosedError) and closed.value.rcvd is None
    assert server.counters.get("kraken.fault.drop_after") == 1
    with open_ws(server) as again:  # the rule is spent; a reconnect works
        send(again, "ping", 1)
        assert receive_until(again, lambda ms: len(ms) >= 1)[0]["method"] == "pong"


@pytest.mark.slow
def test_stop_heartbeats_for_a_while_then_resume(make_server):
    faults = FaultPlan()
    server = make_server(heartbeat_interval=0.05, faults=faults)
    with open_ws(server) as ws:
        assert recv(ws, timeout=1)["channel"] == "heartbeat"
        faults.add("stop_heartbeats", endpoint="kraken", times=1, seconds=0.6)
        last = time.monotonic()
        longest = 0.0
        start = last
        while time.monotonic() - start < 1.5:
            if recv(ws, timeout=2)["channel"] == "heartbeat":
                now = time.monotonic()
                longest = max(longest, now - last)
                last = now
        assert longest >= 0.45, longest
        assert time.monotonic() - last < 0.3  # heartbeats came back


def test_stop_heartbeats_silent_stalls_everything_but_loses_nothing(make_server):
    faults = FaultPlan()
    server = make_server(heartbeat_interval=0.05, rate=300, faults=faults)
    with open_ws(server) as ws:
        precisions = instrument_precisions(ws)
        checker = StreamChecker(precisions, 10)
        for message in book_messages(subscribe(ws, 1, "book", ["SOL/USD"])):
            checker.feed(message)
        for message in book_messages(receive_until(ws, lambda ms: len(ms) >= 20)):
            checker.feed(message)
        faults.add("stop_heartbeats", symbol="SOL/USD", times=1, seconds=0.5, silent=True)
        last, longest = time.monotonic(), 0.0
        while checker.updates < 250:
            message = recv(ws, timeout=2)
            now = time.monotonic()
            longest, last = max(longest, now - last), now
            if message.get("channel") == "book":
                checker.feed(message)  # nothing was lost during the stall
    assert longest >= 0.35, longest


def test_corrupt_checksum_once_then_a_resubscribe_heals(make_server):
    faults = FaultPlan()
    server = make_server(seed=2, rate=500, faults=faults)
    with open_ws(server) as ws:
        precisions = instrument_precisions(ws)
        pp, qp = precisions["XRP/USD"]
        books: dict[str, ShadowBook] = {"XRP/USD": ShadowBook(10, pp, qp)}
        (snapshot,) = book_messages(subscribe(ws, 1, "book", ["XRP/USD"]))
        books["XRP/USD"].load(snapshot["data"][0])
        faults.add("corrupt_checksum", endpoint="kraken", symbol="XRP/USD", times=1)
        mismatches = []
        resubscribed = False
        good_after = 0
        deadline = time.monotonic() + 10
        while good_after < 50:
            assert time.monotonic() < deadline
            message = recv(ws)
            if message.get("channel") != "book":
                continue
            data = message["data"][0]
            if message["type"] == "snapshot":
                books["XRP/USD"] = ShadowBook(10, pp, qp)
                books["XRP/USD"].load(data)
            elif "XRP/USD" not in books:
                continue  # updates queued before the unsubscribe ack
            else:
                books["XRP/USD"].apply(data)
            book = books["XRP/USD"]
            if book.checksum() != data["checksum"]:
                # the levels are right: only the checksum is off (by one)
                assert (book.checksum() + 1) % 2**32 == data["checksum"]
                mismatches.append(message)
                del books["XRP/USD"]
                send(ws, "unsubscribe", 2, channel="book", symbol=["XRP/USD"])
                send(ws, "subscribe", 3, channel="book", symbol=["XRP/USD"])
                resubscribed = True
            elif resubscribed:
                good_after += 1
    assert len(mismatches) == 1
    assert server.counters.get("kraken.fault.corrupt_checksum", "XRP/USD") == 1


def test_malformed_json_is_one_frame_then_the_stream_goes_on(make_server):
    faults = FaultPlan()
    server = make_server(rate=300, faults=faults)
    with open_ws(server) as ws:
        subscribe(ws, 1, "book", ["BTC/USD"])
        faults.add("malformed_json", endpoint="kraken", times=1)
        bad, good = 0, 0
        deadline = time.monotonic() + 5
        while good < 40:
            assert time.monotonic() < deadline
            raw = ws.recv(timeout=2)
            try:
                parse(raw)
            except ValueError:
                bad += 1
            else:
                good += bad > 0
    assert bad == 1
    assert server.counters.get("kraken.sent.malformed") == 1


def test_maintenance_pauses_book_data_then_online_again(make_server):
    faults = FaultPlan()
    server = make_server(seed=8, rate=400, faults=faults)
    with open_ws(server) as ws:
        precisions = instrument_precisions(ws)
        checker = StreamChecker(precisions, 25)
        for message in book_messages(subscribe(ws, 1, "book", ["ETH/USD"], depth=25)):
            checker.feed(message)
        faults.add("maintenance", times=1, seconds=0.5)
        stream: list[str] = []  # "maintenance", "online" or "book", in arrival order
        status_times: list[float] = []
        deadline = time.monotonic() + 6
        while "online" not in stream or stream[-40:] != ["book"] * 40:
            assert time.monotonic() < deadline
            message = recv(ws)
            if message.get("channel") == "status":
                stream.append(message["data"][0]["system"])
                status_times.append(time.monotonic())
            elif message.get("channel") == "book":
                checker.feed(message)  # the same book carries on afterwards, verified
                stream.append("book")
    assert [s for s in stream if s != "book"] == ["maintenance", "online"]
    down, up = stream.index("maintenance"), stream.index("online")
    assert up == down + 1  # no book data while in maintenance
    assert status_times[1] - status_times[0] >= 0.4


def test_reject_subscription_then_a_retry_succeeds(make_server):
    faults = FaultPlan()
    faults.add("reject_subscription", endpoint="kraken", symbol="ETH/USD", times=1)
    server = make_server(rate=0, faults=faults)
    with open_ws(server) as ws:
        acks = [m for m in subscribe(ws, 1, "book", ["BTC/USD", "ETH/USD"]) if is_ack(m)]
        by_symbol = {a.get("symbol") or a["result"]["symbol"]: a for a in acks}
        assert by_symbol["BTC/USD"]["success"] is True
        assert by_symbol["ETH/USD"]["success"] is False and by_symbol["ETH/USD"]["error"]
        retry = subscribe(ws, 2, "book", ["ETH/USD"])
        assert retry[0]["success"] is True and retry[1]["type"] == "snapshot"


def test_restart_fault_drops_everyone_and_comes_back_on_the_same_url(make_server):
    faults = FaultPlan()
    server = make_server(rate=100, faults=faults)
    url = server.url
    with open_ws(server) as ws:
        subscribe(ws, 1, "book", ["BTC/USD"])
        faults.add("restart", times=1, down=0.6)
        with pytest.raises(ConnectionClosed):
            for _ in range(10_000):
                recv(ws)
    dropped = time.monotonic()
    with pytest.raises(OSError):  # nobody listens while it is down
        connect(url, open_timeout=1)
    while True:
        try:
            with connect(url, open_timeout=1) as ws:
                assert time.monotonic() - dropped >= 0.4
                assert recv(ws)["channel"] == "status"
                messages = subscribe(ws, 1, "book", ["BTC/USD"])
                assert book_messages(messages)[0]["type"] == "snapshot"
                break
        except OSError:
            assert time.monotonic() < dropped + 5
            time.sleep(0.05)
    assert server.url == url
    assert server.counters.get("kraken.restart") == 1


def test_restart_and_stop_methods(make_server):
    server = make_server(rate=100)
    port = server.port
    with open_ws(server) as ws:
        started = time.monotonic()
        server.restart(down_seconds=0.3)  # returns once listening again
        assert time.monotonic() - started >= 0.3
        with pytest.raises(ConnectionClosed):
            for _ in range(1000):
                recv(ws)
    assert server.port == port
    with open_ws(server) as again:
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 5
        with pytest.raises(ConnectionClosed) as closed:
            for _ in range(1000):
                recv(again)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    server.stop()  # idempotent


def test_serve_forever_in_the_foreground_with_a_subset_of_pairs():
    server = KrakenSandboxServer(pairs=["XRP/USD"], heartbeat_interval=5)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while not server.port:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        with open_ws(server) as ws:
            assert set(instrument_precisions(ws)) == {"XRP/USD"}
            (error,) = subscribe(ws, 1, "book", ["BTC/USD"])
            assert error["error"] == "Currency pair not supported BTC/USD"
    finally:
        server.stop()
        thread.join(timeout=5)
    assert not thread.is_alive()


# --- determinism, rate, counters -----------------------------------------------------------


def scripted_session(seed: int, messages: int = 400) -> list[str]:
    """One client script: subscribe while paused, then read the first ``messages`` frames."""
    server = KrakenSandboxServer(seed=seed, rate=0, heartbeat_interval=30)
    server.start()
    try:
        raws: list[str] = []
        with connect(server.url, open_timeout=5) as ws:
            raws.append(ws.recv(timeout=3))
            for req_id, params in enumerate(
                [
                    {"channel": "book", "symbol": ["BTC/USD", "XRP/USD"], "depth": 25},
                    {"channel": "trade", "symbol": ["BTC/USD"]},
                    {"channel": "ohlc", "symbol": ["XRP/USD"], "interval": 5},
                ]
            ):
                ws.send(json.dumps({"method": "subscribe", "params": params, "req_id": req_id}))
                for _ in range(2 * len(params["symbol"])):  # ack + snapshot per symbol
                    raws.append(ws.recv(timeout=3))
            server.set_rate(2000)
            while len(raws) < messages:
                raw = ws.recv(timeout=3)
                if raw != '{"channel":"heartbeat"}':
                    raws.append(raw)
        return raws
    finally:
        server.stop()


@pytest.mark.slow
def test_same_seed_same_bytes_different_seed_different():
    first, second, other = scripted_session(11), scripted_session(11), scripted_session(12)
    assert first == second
    assert {parse(r).get("channel") for r in first} >= {"status", "book", "trade", "ohlc"}
    assert first[0] != other[0]  # connection_id
    assert [r for r in first if '"book"' in r] != [r for r in other if '"book"' in r]


def test_rate_is_book_updates_per_second_per_symbol(make_server):
    """Every round of the market updates each subscribed symbol once, and rounds are ``1/rate``
    apart on the exchange clock: the rate is per symbol, not shared out among them.

    Only the exchange's timestamps are checked here; how many rounds a second the server keeps
    up on a given machine is measured by ``benchmarks/kraken_sandbox_rate.py``.
    """
    server = make_server(rate=300)
    with open_ws(server) as ws:
        subscribe(ws, 1, "book", ["BTC/USD", "ETH/USD"])
        updates = [
            m
            for m in receive_until(ws, lambda ms: len(book_messages(ms)) >= 300)
            if m.get("channel") == "book" and m["type"] == "update"
        ]
        stamps: dict[str, list[datetime]] = {}
        for message in updates:
            (item,) = message["data"]
            when = datetime.fromisoformat(item["timestamp"].replace("Z", "+00:00"))
            stamps.setdefault(item["symbol"], []).append(when)
        btc, eth = stamps["BTC/USD"], stamps["ETH/USD"]
        rounds = min(len(btc), len(eth))
        assert rounds >= 100 and btc[:rounds] == eth[:rounds]  # one update each per round
        steps = {(b - a).total_seconds() for a, b in itertools.pairwise(btc)}
        assert steps == {round(1e6 / 300) / 1e6}  # 300 rounds per exchange second

        server.set_rate(0)
        time.sleep(0.1)
        subscribe(ws, 2, "instrument")  # a fence: everything before it has arrived
        with pytest.raises(TimeoutError):
            while True:
                assert recv(ws, timeout=0.3).get("channel") != "book"


def test_counters_match_what_the_client_saw(make_server):
    counters = RequestCounters()
    server = make_server(rate=500, counters=counters)
    with open_ws(server) as ws:
        messages = subscribe(ws, 1, "book", ["BTC/USD", "SOL/USD"])
        messages += subscribe(ws, 2, "trade", ["SOL/USD"])
        messages += receive_until(ws, lambda ms: len(ms) >= 200)
        send(ws, "unsubscribe", 3, channel="book", symbol=["BTC/USD", "SOL/USD"])
        send(ws, "unsubscribe", 4, channel="trade", symbol=["SOL/USD"])
        send(ws, "ping", 5)
        messages += receive_until(ws, lambda ms: any(m.get("method") == "pong" for m in ms))
    books = Counter(m["data"][0]["symbol"] for m in book_messages(messages))
    assert counters.by_symbol("kraken.sent.book") == dict(books)
    trades = sum(1 for m in messages if m.get("channel") == "trade")
    assert counters.get("kraken.sent.trade", "SOL/USD") == trades
    assert counters.by_symbol("kraken.sent.subscribe") == {"BTC/USD": 1, "SOL/USD": 2}
    assert counters.by_symbol("kraken.sent.unsubscribe") == {"BTC/USD": 1, "SOL/USD": 2}
    assert counters.get("kraken.connect") == 1
    assert counters.by_symbol("kraken.subscribe.book") == {"BTC/USD": 1, "SOL/USD": 1}
    assert counters.by_symbol("kraken.unsubscribe.trade") == {"SOL/USD": 1}
    assert counters.get("kraken.sent.status") == counters.get("kraken.sent.pong") == 1
