"""Fixtures for the Kraken stream tests: a fake clock, a sandbox server per test, fast settings.

The protocol session and the log read time from a `Clock`: tests of their rules drive a
`FakeClock` forward instead of sleeping. End-to-end tests run against `KrakenSandboxServer`
on loopback with short intervals (heartbeats every 0.1 s, liveness limits of 0.5 s, backoff
capped at 0.3 s), so a fault is detected and healed in well under a second, and every wait
has a deadline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from ingest_platform.core.settings import SANDBOX_KRAKEN_URL_ENV
from ingest_platform.sandbox.kraken_market import (
    PAIRS_BY_SYMBOL,
    SimClock,
    SymbolMarket,
    book_snapshot_text,
    book_update_parts,
    candle_item_text,
    channel_text,
    trade_item_text,
)
from ingest_platform.sandbox.kraken_ws import KrakenSandboxServer
from ingest_platform.streaming.kraken.book import KrakenBook, parse_message
from ingest_platform.streaming.kraken.heartbeat import HEARTBEAT_FILE
from ingest_platform.streaming.kraken.io.settings import StreamSettings
from ingest_platform.streaming.kraken.log.writer import StreamLog
from ingest_platform.streaming.kraken.protocol.settings import ProtocolSettings
from ingest_platform.streaming.kraken.resources import KrakenStream
from ingest_platform_tests.core.s3_server import s3_bucket, s3_server

__all__ = ["s3_bucket", "s3_server"]  # a local S3 (moto on loopback) for the log's S3 tests

PAIRS = ("BTC/USD", "ETH/USD")
FAST = dict(
    heartbeat_interval=0.1,
    max_silence=0.5,
    max_heartbeat_interval=0.5,
    ping_interval=0.2,
    connect_timeout=2.0,
    snapshot_timeout=3.0,
    backoff_base=0.05,
    backoff_cap=0.3,
    status_interval=0.1,
    report_interval=0.5,
    top_interval=0.3,
    max_mismatches=1000,
    max_critical_errors=1000,
)


class FakeClock:
    """A `Clock` that moves only when told to (`advance`)."""

    def __init__(self, wall_ns: int = 1_793_620_800_000_000_000) -> None:  # 2026-11-02 12:00
        self.wall = wall_ns
        self.mono = 5_000_000_000

    def monotonic_ns(self) -> int:
        return self.mono

    def time_ns(self) -> int:
        return self.wall

    def advance(self, seconds: float) -> None:
        step = round(seconds * 1e9)
        self.wall += step
        self.mono += step


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


#: Fast `KrakenStream` settings for Dagster runs (the resource never freezes pytest's GC).
FAST_RESOURCE: dict[str, Any] = dict(
    heartbeat_interval=0.1,
    max_silence=0.5,
    max_heartbeat_interval=0.5,
    ping_interval=0.2,
    snapshot_timeout=3.0,
    backoff_base=0.05,
    backoff_cap=0.3,
    report_interval=0.3,
    top_interval=0.3,
    freeze_gc=False,
)


@pytest.fixture
def stream_resource(monkeypatch) -> Callable[..., KrakenStream]:
    """``make(url, log_root, **overrides)``: a fast `KrakenStream` for two pairs, streaming from
    ``url``, which (as in a deployment) the environment names, not the resource."""

    def make(url: str, root: Any, **overrides: Any) -> KrakenStream:
        monkeypatch.setenv(SANDBOX_KRAKEN_URL_ENV, url)
        values = {"pairs": ["BTC/USD", "ETH/USD"], "log_root": str(root)}
        return KrakenStream(**{**values, **FAST_RESOURCE, **overrides})

    return make


@pytest.fixture
def run_config() -> Callable[..., dict[str, Any]]:
    """``make(seconds)``: run config for `kraken_stream_job` (stop after ``seconds``)."""

    def make(seconds: float | None = None) -> dict[str, Any]:
        config = {} if seconds is None else {"run_seconds": seconds}
        return {"ops": {"kraken_stream": {"config": config}}}

    return make


@pytest.fixture
def sandbox() -> Iterator[Callable[..., KrakenSandboxServer]]:
    """Start sandboxes on demand (heartbeats every 0.1 s); all are stopped at teardown."""
    servers: list[KrakenSandboxServer] = []

    def start(**kwargs: Any) -> KrakenSandboxServer:
        kwargs.setdefault("rate", 200.0)
        kwargs.setdefault("heartbeat_interval", 0.1)
        server = KrakenSandboxServer(**kwargs)
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def fast_settings(**overrides: Any) -> StreamSettings:
    """`FAST` settings for two pairs at depth 10 with ``overrides``, each given by its flat
    name (as in `StreamConfig`) and put where it belongs: the protocol's or the driver's."""
    values: dict[str, Any] = {"pairs": PAIRS, "depth": 10, **FAST, **overrides}
    protocol = {f.name for f in dataclasses.fields(ProtocolSettings)}
    return StreamSettings(
        ProtocolSettings(**{k: v for k, v in values.items() if k in protocol}),
        **{k: v for k, v in values.items() if k not in protocol},
    )


@pytest.fixture
def fast_config() -> Callable[..., StreamSettings]:
    """``make(**overrides)``: `fast_settings`, for the connection (``open_stream``)."""
    return fast_settings


@pytest.fixture
def fast_protocol() -> Callable[..., ProtocolSettings]:
    """``make(**overrides)``: the protocol's part of `fast_settings`."""
    return lambda **overrides: fast_settings(**overrides).protocol


def read_heartbeat(root: Any) -> dict[str, Any] | None:
    """The heartbeat file's whole document (None when there is none), as a test inspects it."""
    path = Path(root) / HEARTBEAT_FILE
    return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture
def heartbeat() -> Callable[[Any], dict[str, Any] | None]:
    return read_heartbeat


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    """Poll ``condition`` every 10 ms; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        await asyncio.sleep(0.01)


@pytest.fixture
def wait() -> Callable[..., Any]:
    return wait_until


class _Feed:
    """Kraken v2 frames for one pair, rendered by the sandbox's market model."""

    def __init__(self, symbol: str = "BTC/USD") -> None:
        self.pair = PAIRS_BY_SYMBOL[symbol]
        self.market = SymbolMarket(self.pair, seed=3)
        self.clock = SimClock(1_700_000_000_000_000, 20_000)
        self.index = 0
        self.last_trade = None

    def snapshot(self, depth: int = 10) -> str:
        bids, asks = self.market.snapshot_text(depth)
        ts = self.clock.text(self.clock.at(self.index))
        return book_snapshot_text(self.pair.symbol, bids, asks, self.market.checksum(), ts)

    def update(self, depth: int = 10, corrupt: bool = False) -> str:
        """Advance one event; return the book update (a trade, if any, is kept for later)."""
        self.index += 1
        now = self.clock.at(self.index)
        before = self.market.boundaries([depth])
        trade = self.market.step(now)
        if trade is not None:
            self.last_trade = trade
        bids, asks = self.market.update_text(depth, before[depth])
        head, tail = book_update_parts(self.pair.symbol, bids, asks, self.clock.text(now))
        return f"{head}{self.market.checksum() + (1 if corrupt else 0)}{tail}"

    def trade(self) -> str:
        while self.last_trade is None:
            self.update()
        item = trade_item_text(self.pair, self.last_trade, self.clock)
        return channel_text("trade", "update", [item])

    def ohlc(self) -> str:
        while not self.market.candles:
            self.update()
        candle = self.market.candles[1]
        item = candle_item_text(self.pair, candle, self.clock.at(self.index), self.clock)
        return channel_text("ohlc", "update", [item])


@pytest.fixture
def market_feed() -> Callable[..., _Feed]:
    """Kraken v2 frames rendered by the sandbox's market model, without a server."""
    return _Feed


def write_book_log(
    root: Any,
    frames: list[str],
    recv_times_us: list[int],
    session: str = "s1",
    depth: int = 10,
    **log_options: Any,
) -> list[bool]:
    """Log book frames as the client would, but at chosen receive times; return each verdict.

    ``log_options`` go to `StreamLog` (``max_rows``, ``background``...).
    """
    books: dict[str, KrakenBook] = {}
    verdicts = []
    options = {"background": False, **log_options}
    with StreamLog(root, session=session, **options) as log:
        for raw, recv_us in zip(frames, recv_times_us, strict=True):
            msg = parse_message(raw, numbers_as_text=True)
            for item in msg["data"]:
                symbol = item["symbol"]
                pair = PAIRS_BY_SYMBOL[symbol]
                book = books.setdefault(
                    symbol, KrakenBook(symbol, depth, pair.price_precision, pair.qty_precision)
                )
                apply = book.apply_snapshot if msg["type"] == "snapshot" else book.apply_update
                ok = apply(item)
                verdicts.append(ok)
                log.book(
                    recv_us,
                    item.get("timestamp"),
                    symbol,
                    msg["type"],
                    tuple((lv["price"], lv["qty"]) for lv in item["bids"]),
                    tuple((lv["price"], lv["qty"]) for lv in item["asks"]),
                    item["checksum"],
                    ok,
                    depth,
                    pair.price_precision,
                    pair.qty_precision,
                )
    return verdicts


@pytest.fixture
def book_log_writer() -> Callable[..., list[bool]]:
    return write_book_log
