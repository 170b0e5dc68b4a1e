"""The README's 20-line consumer (nats-py and the standard library only), run exactly as printed
against a real server fed by the stream: the format stands on its own."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import pytest

from ingest_platform.core.settings import project_root
from ingest_platform.streaming.kraken import consume
from ingest_platform.streaming.kraken.fanout import message as m
from ingest_platform.streaming.kraken.fanout.bus import JetStreamBus
from ingest_platform.streaming.kraken.fanout.process import FanoutProcess
from ingest_platform.streaming.kraken.fanout.publisher import FanoutSettings
from ingest_platform.streaming.kraken.io.connection import open_stream

# A real stream against a real nats-server for seconds: CI's, not the inner loop's.
pytestmark = pytest.mark.slow

PAIRS = ("BTC/USD", "ETH/USD")


def _readme_consumer() -> str:
    text = (project_root() / "README.md").read_text()
    block = re.search(
        r"<!-- fanout-consumer -->\n```python\n(.*?)```\n<!-- /fanout-consumer -->", text, re.S
    )
    assert block, "README has no fan-out consumer between its markers"
    return block.group(1)


def test_the_readme_consumer_reverifies_the_stream_on_its_own(
    tmp_path, sandbox, fast_config, nats_server
):
    code = _readme_consumer()
    assert len(code.splitlines()) <= 45 and "ingest_platform" not in code
    script = tmp_path / "consumer.py"
    script.write_text(code)
    server = sandbox(rate=300.0)
    publisher = FanoutProcess(
        JetStreamBus(nats_server.url), PAIRS, FanoutSettings(snapshot_every=30)
    )

    async def stream():
        client = open_stream(fast_config(), server.url, tmp_path / "log", fanout=publisher)
        return await client.run(2.0)

    assert asyncio.run(stream()).outcome == "stopped"
    tailed = asyncio.run(
        consume.tail(nats_server.url, pair="BTC/USD", from_start=True, idle_seconds=1.0)
    )
    count = tailed.events["book"]
    assert count > 100
    run = subprocess.run(
        [sys.executable, str(script), nats_server.url, str(count)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == f"{count} of {count} events re-verified"

    last = tailed.rebuilder.pairs["BTC/USD"]  # one more update, with a wrong checksum
    bad = m.book_event("BTC/USD", last.epoch, last.next_seq, "update", [], [], 1, 10, 1, 8,
                       None, 0)  # fmt: skip

    async def publish_bad():
        bus = JetStreamBus(nats_server.url)
        await bus.connect()
        msg_id = m.book_msg_id("BTC/USD", bad["epoch"], bad["seq"])
        await asyncio.wait_for(
            await bus.publish(m.subject("book", "BTC/USD"), m.encode(bad), msg_id), 5
        )
        await bus.close()

    asyncio.run(publish_bad())
    run = subprocess.run(
        [sys.executable, str(script), nats_server.url, str(count + 1)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode != 0 and f"mismatch at {bad['seq']}" in run.stderr
