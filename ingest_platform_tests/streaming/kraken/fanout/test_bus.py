"""`JetStreamBus` against a real ``nats-server``: publishes confirmed in groups settle exactly as
the stream stored them, through refusals (a full stream) and duplicates."""

from __future__ import annotations

import asyncio

import pytest

from ingest_platform.streaming.kraken.fanout.bus import BusError, JetStreamBus, StreamSpec

SUBJECT = "kraken.book.BTC_USD"
PAYLOAD = b'{"v":1,"kind":"book","pair":"BTC/USD","bids":[["50000.1","0.5"]],"asks":[]}' * 2


async def _stored_ids(bus: JetStreamBus, stream: str) -> list[str]:
    js = bus._require()
    info = await js.stream_info(stream)
    ids = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        ids.append(msg.headers["Nats-Msg-Id"])
    return ids


@pytest.mark.parametrize("every", [1, 16])
def test_grouped_publishes_settle_as_the_stream_stored_them(nats_server, every):
    async def main():
        bus = JetStreamBus(nats_server.url)
        await bus.connect()
        # room for about 40 of these messages; then JetStream refuses new ones
        await bus.ensure_stream(StreamSpec(max_bytes=12_000, discard="new"))
        before = [await bus.publish(SUBJECT, PAYLOAD, f"id{i}") for i in range(10)]
        await asyncio.gather(*before)
        futures = {}
        ids = [f"id{i}" for i in range(5, 105)]  # id5..id9 already stored
        for n, msg_id in enumerate(ids):
            confirm = n % every == every - 1 or n == len(ids) - 1
            futures[msg_id] = await bus.publish(SUBJECT, PAYLOAD, msg_id, confirm)
        async with asyncio.timeout(10):
            results = await asyncio.gather(*futures.values(), return_exceptions=True)
        stored = await _stored_ids(bus, "KRAKEN")
        await bus.close()
        return dict(zip(futures, results, strict=True)), stored, bus.resent

    results, stored, resent = asyncio.run(main())
    assert len(set(stored)) == len(stored)
    refused = [i for i, r in results.items() if isinstance(r, BusError)]
    assert refused, "the stream should have filled"
    for msg_id, result in results.items():
        if isinstance(result, BusError):
            assert msg_id not in stored, f"{msg_id} refused but stored"
            assert "maximum" in str(result) or "refused" in str(result)
        else:
            assert msg_id in stored, f"{msg_id} settled {result} but not stored"
            if msg_id in {f"id{i}" for i in range(5, 10)}:
                assert result.duplicate, msg_id  # stored before this burst
            elif every == 1:
                assert not result.duplicate, msg_id
            # (a publish sent again on its own is answered "duplicate" when its first send was
            # stored: the bus had it already)
    if every > 1:
        assert resent > 0  # the groups with duplicates or refusals were sent again one by one
    else:
        assert resent == 0
