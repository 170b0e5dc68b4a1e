"""The connection driver against the sandbox: streaming, reconnects, backoff, halts, shutdown.

(Configuration is validated in `config`; the protocol rules are tested frame by frame, with a
fake clock, in protocol/test_protocol.py.)
"""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from ingest_platform.core.backoff import Backoff
from ingest_platform.streaming.kraken.io.connection import open_stream
from ingest_platform.streaming.kraken.log.segments import read_kind
from ingest_platform.streaming.kraken.protocol import protocol
from ingest_platform.streaming.kraken.protocol.halts import HALT_LOG_PREFIX

# ---- reconnect backoff --------------------------------------------------------------------------


def test_reconnect_backoff_is_exponential_capped_and_fully_jittered():
    backoff = Backoff(0.5, 4.0, random.Random(1))
    ceilings, delays = [], []
    for _ in range(8):
        ceilings.append(backoff.ceiling())
        delays.append(backoff.next_delay())
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert all(0 <= d <= c for d, c in zip(delays, ceilings, strict=True))
    many = [Backoff(1.0, 1.0, random.Random(i)).next_delay() for i in range(200)]
    assert min(many) < 0.1 and max(many) > 0.9  # full jitter: the whole [0, ceiling] window
    backoff.reset()
    assert backoff.ceiling() == 0.5


# ---- against the sandbox ---------------------------------------------------------------------


def test_streams_every_channel_and_stops_cleanly(tmp_path, sandbox, fast_config, wait, heartbeat):
    server = sandbox()
    config = fast_config(pairs=("BTC/USD", "ETH/USD", "ADA/EUR"), depth=25)

    async def scenario():
        client = open_stream(config, server.url, tmp_path)
        task = asyncio.create_task(client.run())
        await wait(
            lambda: (
                client.protocol.stats.trades > 5
                and client.protocol.stats.ohlc_bars > 5
                and all(
                    client.protocol.stats.symbols[p].verified_since_snapshot > 20
                    for p in config.protocol.pairs
                )
            ),
            what="books verified, trades and bars",
        )
        await wait(lambda: client.protocol.stats.last_rtt_ms is not None, what="a pong")
        await wait(lambda: client.log.next_seq("book_top") >= 3, what="top-of-book rows")
        client.request_stop()
        return client, await asyncio.wait_for(task, 5)

    client, result = asyncio.run(scenario())
    assert result.outcome == "stopped" and result.halt is None
    assert result.stats["checksum_failures"] == 0 and result.stats["gaps"] == 0
    assert result.stats["latency_ms"]["p50"] > 0
    assert server.counters.get("kraken.subscribe.book") == 3
    assert server.counters.get("kraken.subscribe.instrument") == 1
    assert server.counters.get("kraken.disconnect") == 1
    assert client.log.closed
    # Every book message received is on disk.
    assert read_kind(tmp_path, "book").num_rows == result.stats["book_messages"]
    assert read_kind(tmp_path, "book_top").num_rows > 0
    beat = heartbeat(tmp_path)
    assert beat["state"] == "stopped" and beat["session"] == result.log_session


def test_silence_and_missing_heartbeats_reconnect(tmp_path, sandbox, fast_config, wait):
    server = sandbox()
    config = fast_config()

    async def scenario():
        client = open_stream(config, server.url, tmp_path)
        task = asyncio.create_task(client.run())
        await wait(lambda: client.protocol.is_synced("BTC/USD"), what="first snapshot")
        server.faults.add("stop_heartbeats", times=1)  # data keeps flowing
        await wait(lambda: client.protocol.stats.reconnects == 1, what="heartbeat reconnect")
        server.faults.add("stop_heartbeats", times=1, silent=True)  # a stalled connection
        await wait(lambda: client.protocol.stats.reconnects == 2, what="silence reconnect")
        await wait(
            lambda: client.protocol.is_synced("BTC/USD") and client.protocol.is_synced("ETH/USD")
        )
        client.request_stop()
        return client, await asyncio.wait_for(task, 5)

    _, result = asyncio.run(scenario())
    assert result.stats["liveness_breaches"] == {"heartbeat_timeout": 1, "silence": 1}
    assert server.counters.get("kraken.connect") == 3
    assert result.stats["gaps"] >= 4  # both books, twice


@pytest.mark.slow
def test_reconnects_with_backoff_while_the_server_is_down(tmp_path, sandbox, fast_config, wait):
    server = sandbox()
    config = fast_config(backoff_base=0.05, backoff_cap=0.2)

    async def scenario():
        client = open_stream(config, server.url, tmp_path)
        task = asyncio.create_task(client.run())
        await wait(
            lambda: client.protocol.is_synced("BTC/USD") and client.protocol.is_synced("ETH/USD")
        )
        server.restart(down_seconds=1.2, wait=False)
        await wait(lambda: client.stats.connect_failures >= 3, what="refused connects")
        assert client.backoff.attempt >= 3  # growing delays while refused
        assert client.backoff.ceiling() <= 0.2  # ... but capped
        await wait(lambda: client.stats.connections == 2, timeout=10, what="reconnect")
        await wait(
            lambda: client.protocol.is_synced("BTC/USD") and client.protocol.is_synced("ETH/USD")
        )
        assert client.backoff.attempt == 0  # reset once every book verified again
        client.request_stop()
        return await asyncio.wait_for(task, 5)

    result = asyncio.run(scenario())
    assert result.halt is None and result.stats["reconnects"] == 1
    gaps = read_kind(tmp_path, "gap").to_pylist()
    book_gaps = [g for g in gaps if g["channel"] == "book"]
    assert {g["symbol"] for g in book_gaps} == {"BTC/USD", "ETH/USD"}
    assert all(g["reason"] == "reconnect" and g["end_ts"] > g["start_ts"] for g in book_gaps)
    assert all((g["end_ts"] - g["start_ts"]).total_seconds() >= 1.0 for g in book_gaps)


def test_rejected_subscription_is_retried_and_recorded(tmp_path, sandbox, fast_config, wait):
    server = sandbox()
    server.faults.add("reject_subscription", endpoint="kraken.book", symbol="ETH/USD", times=2)

    async def scenario():
        client = open_stream(fast_config(), server.url, tmp_path)
        task = asyncio.create_task(client.run())
        await wait(
            lambda: client.protocol.is_synced("ETH/USD"), what="ETH/USD after two rejections"
        )
        client.request_stop()
        return await asyncio.wait_for(task, 5)

    result = asyncio.run(scenario())
    assert result.stats["rejected_subscriptions"] == 2
    assert server.counters.get("kraken.subscribe.book", "ETH/USD") == 3
    (gap,) = read_kind(tmp_path, "gap").to_pylist()
    assert (gap["symbol"], gap["reason"]) == ("ETH/USD", "subscription_rejected")
    assert gap["end_ts"] is not None


def test_halts_after_too_many_mismatches(tmp_path, sandbox, fast_config, wait, caplog, heartbeat):
    server = sandbox()
    config = fast_config(max_mismatches=3, halt_window=60)

    async def scenario():
        client = open_stream(config, server.url, tmp_path)
        task = asyncio.create_task(client.run())
        await wait(lambda: client.protocol.is_synced("BTC/USD"))
        for n in range(1, 4):
            server.faults.add("corrupt_checksum", symbol="BTC/USD", times=1)
            await wait(lambda n=n: client.protocol.stats.checksum_failures >= n or task.done())
            await wait(lambda: client.protocol.is_synced("BTC/USD") or task.done())
        return await asyncio.wait_for(task, 5)

    with caplog.at_level(logging.ERROR, logger=protocol.__name__):
        result = asyncio.run(scenario())
    assert result.outcome == "halted"
    assert result.halt.reason == "checksum_mismatch" and result.halt.mismatches == 3
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any(line.startswith(f"{HALT_LOG_PREFIX} reason=checksum_mismatch") for line in lines)
    beat = heartbeat(tmp_path)
    assert beat["state"] == "halted" and beat["halt"]["reason"] == "checksum_mismatch"
    # The open gap of the halted book is written, with no end.
    gaps = read_kind(tmp_path, "gap").to_pylist()
    assert gaps[-1]["end_ts"] is None and "halted" in gaps[-1]["detail"]


def test_critical_errors_halt_too(tmp_path, sandbox, fast_config, wait):
    server = sandbox()
    config = fast_config(max_critical_errors=2)

    async def scenario():
        client = open_stream(config, server.url, tmp_path)
        task = asyncio.create_task(client.run())
        await wait(lambda: client.protocol.is_synced("BTC/USD"))
        server.faults.add("malformed_json", times=2)
        return await asyncio.wait_for(task, 5)

    result = asyncio.run(scenario())
    assert result.halt is not None and result.halt.reason == "malformed_json"
    assert result.halt.critical_errors == 2


def test_cancellation_closes_the_socket_and_flushes_the_log(
    tmp_path, sandbox, fast_config, wait, heartbeat
):
    server = sandbox()

    async def scenario():
        client = open_stream(fast_config(), server.url, tmp_path)
        task = asyncio.create_task(client.run())
        await wait(lambda: client.protocol.stats.symbols["BTC/USD"].verified_since_snapshot > 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(task, 5)
        return client

    client = asyncio.run(scenario())
    assert client.log.closed
    assert read_kind(tmp_path, "book").num_rows == client.protocol.stats.book_messages
    assert heartbeat(tmp_path)["state"] == "stopped"

    async def disconnected():
        await wait(lambda: server.counters.get("kraken.disconnect") == 1, 5, "server-side close")

    asyncio.run(disconnected())
