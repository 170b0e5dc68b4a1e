"""Every sandbox WebSocket fault, five times over, against one running client.

After each injection the client must not crash (its task keeps running, nothing halts, no
handler error), the affected books must verify a fresh snapshot and the updates after it, and
the log must hold a gap for it. At the end the whole log replays with every checksum verified.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest

from ingest_platform.sandbox.control import WS_FAULTS
from ingest_platform.streaming.kraken.io.connection import open_stream
from ingest_platform.streaming.kraken.log.replay import replay
from ingest_platform.streaming.kraken.log.segments import read_kind

REPEAT = 5
PAIRS = ("BTC/USD", "ETH/USD")


@dataclass(frozen=True)
class Case:
    rules: tuple[dict[str, Any], ...]
    affected: tuple[str, ...]
    reason: str  # the reason of the gap each injection must leave in the log
    in_detail: str = ""  # ... and what its detail must mention


CASES = {
    "drop_after": Case(({"kind": "drop_after", "params": {"messages": 5}},), PAIRS, "reconnect"),
    "stop_heartbeats": Case(({"kind": "stop_heartbeats"},), PAIRS, "reconnect", "heartbeat"),
    "corrupt_checksum": Case(
        ({"kind": "corrupt_checksum", "symbol": "BTC/USD"},), ("BTC/USD",), "checksum_mismatch"
    ),
    "malformed_json": Case(({"kind": "malformed_json"},), PAIRS, "malformed_message"),
    "maintenance": Case(
        ({"kind": "maintenance", "params": {"seconds": 0.3}},), PAIRS, "maintenance"
    ),
    "reject_subscription": Case(
        (
            {"kind": "reject_subscription", "endpoint": "kraken.book", "symbol": "BTC/USD"},
            {"kind": "drop_after", "params": {"messages": 1}},  # the resubscribe gets rejected
        ),
        ("BTC/USD",),
        "reconnect",
        "subscription_rejected",
    ),
    "restart": Case(({"kind": "restart", "params": {"down": 0.3}},), PAIRS, "reconnect"),
}


def test_every_ws_fault_kind_is_covered():
    assert set(CASES) == WS_FAULTS


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(CASES))
def test_fault_heals_with_a_verified_book_and_a_recorded_gap(
    kind, tmp_path, sandbox, fast_config, wait
):
    case = CASES[kind]
    server = sandbox()
    root = tmp_path / "log"

    async def scenario():
        client = open_stream(fast_config(pairs=PAIRS), server.url, root)
        task = asyncio.create_task(client.run())
        symbols = client.protocol.stats.symbols
        await wait(lambda: all(symbols[p].verified_since_snapshot >= 5 for p in PAIRS))
        for round_ in range(1, REPEAT + 1):
            snapshots = {p: symbols[p].snapshots for p in case.affected}
            gaps = client.protocol.stats.gaps
            server.faults.extend([{**rule, "times": 1} for rule in case.rules])

            def healed(gaps: int = gaps, snapshots: dict[str, int] = snapshots) -> bool:
                return client.protocol.stats.gaps > gaps and all(
                    symbols[p].snapshots > snapshots[p]
                    and client.protocol.is_synced(p)
                    and symbols[p].verified_since_snapshot >= 5
                    for p in case.affected
                )

            await wait(lambda: healed() or task.done(), timeout=10, what=f"{kind} #{round_}")
            assert not task.done(), f"the client stopped after {kind} #{round_}"
            assert client.halt is None
            assert "handler_error" not in client.protocol.stats.errors
            assert server.faults.active() == [], f"{kind} #{round_} did not fire"
        client.request_stop()
        return await asyncio.wait_for(task, 5)

    result = asyncio.run(scenario())
    assert result.outcome == "stopped"
    assert server.counters.get(f"kraken.fault.{kind}") == REPEAT

    gaps = [
        g
        for g in read_kind(root, "gap").to_pylist()
        if g["channel"] == "book" and g["symbol"] == "BTC/USD"
    ]
    matching = [g for g in gaps if g["reason"] == case.reason and case.in_detail in g["detail"]]
    assert len(matching) >= REPEAT, gaps
    assert all(g["end_ts"] is not None and g["end_ts"] >= g["start_ts"] for g in matching)
    assert all(g["resume_book_seq"] is not None for g in matching)

    report = replay(root)
    assert report.ok, report.summary()
    assert report.mismatches == 0
    expected_rejected = REPEAT if kind == "corrupt_checksum" else 0
    assert report.rejected_live == expected_rejected
    assert report.verified == read_kind(root, "book").num_rows - expected_rejected
    if kind == "reject_subscription":
        assert result.stats["rejected_subscriptions"] == REPEAT
