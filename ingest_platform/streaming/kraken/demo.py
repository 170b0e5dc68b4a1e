"""README command 1's stream part: run the client for a few seconds and show what was logged.

`run_stream_for` streams from any URL (the sandbox's, usually) into a log root, then reads the
log back and replays it, so what it prints is what is on disk and verified, not what the client
believes it wrote. `run_sandbox_stream_for` starts a local Kraken sandbox first.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest_platform.streaming.kraken.client import open_client
from ingest_platform.streaming.kraken.config import StreamConfig
from ingest_platform.streaming.kraken.log import KINDS, list_segments, read_kind
from ingest_platform.streaming.kraken.replay import ReplayReport, replay

DEFAULT_PAIRS = ("BTC/USD", "ETH/USD", "SOL/USD")


@dataclass
class StreamSummary:
    """What a short stream run left on disk, and whether it replays cleanly."""

    url: str
    log_root: str
    seconds: float
    outcome: str
    halt: dict[str, Any] | None
    stats: dict[str, Any]
    rows: dict[str, int]
    segments: list[str] = field(default_factory=list)
    replay: ReplayReport | None = None

    @property
    def ok(self) -> bool:
        return self.halt is None and self.replay is not None and self.replay.ok

    def lines(self) -> list[str]:
        stats = self.stats
        latency = stats.get("latency_ms") or {}
        out = [
            f"Kraken stream: {self.url} for {self.seconds:g} s -> {self.outcome}",
            f"  messages {stats.get('messages_total', 0)} {stats.get('messages', {})}",
            f"  reconnects {stats.get('reconnects', 0)}, resyncs {stats.get('resyncs', 0)}, "
            f"gaps {stats.get('gaps', 0)}, checksum failures {stats.get('checksum_failures', 0)}",
        ]
        if latency:
            out.append(
                "  latency socket->book->log: "
                + ", ".join(f"{k} {v:.3f} ms" for k, v in latency.items())
            )
        out.append(f"  log {self.log_root}: " + ", ".join(f"{k} {n}" for k, n in self.rows.items()))
        out += [f"    {path}" for path in self.segments[:12]]
        if len(self.segments) > 12:
            out.append(f"    … {len(self.segments) - 12} more segment(s)")
        if self.replay is not None:
            r = self.replay
            out.append(
                f"  replay: {r.verified} checksums re-verified, {r.mismatches} mismatches, "
                f"{r.gaps} gaps, tops {r.tops_checked} checked -> {'OK' if r.ok else 'FAILED'}"
            )
        if self.halt:
            out.append(f"  HALTED: {self.halt.get('reason')}: {self.halt.get('detail')}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def run_stream_for(
    seconds: float,
    url: str,
    log_root: str | os.PathLike[str],
    pairs: Sequence[str] = DEFAULT_PAIRS,
    depth: int = 10,
    **config: Any,
) -> StreamSummary:
    """Stream ``pairs`` from ``url`` for ``seconds`` into ``log_root``; summarise and replay.

    Extra keyword arguments are `StreamConfig` fields (validated as usual).
    """
    settings = {"top_interval": max(0.5, min(5.0, seconds / 4)), **config}
    stream_config = StreamConfig(url=url, pairs=tuple(pairs), depth=depth, **settings)
    root = Path(log_root)
    client = open_client(stream_config, root)
    result = asyncio.run(client.run(duration=seconds))
    rows = {kind: read_kind(root, kind).num_rows for kind in KINDS}
    segments = [
        str(seg.path.relative_to(root)) for kind in KINDS for seg in list_segments(root, kind)
    ]
    return StreamSummary(
        url=url,
        log_root=str(root),
        seconds=seconds,
        outcome=result.outcome,
        halt=result.halt.as_dict() if result.halt else None,
        stats=result.stats,
        rows=rows,
        segments=segments,
        replay=replay(root),
    )


def run_sandbox_stream_for(
    seconds: float,
    log_root: str | os.PathLike[str],
    pairs: Sequence[str] = DEFAULT_PAIRS,
    depth: int = 10,
    rate: float = 50.0,
    seed: int = 7,
) -> StreamSummary:
    """`run_stream_for` against a Kraken sandbox started (and stopped) here."""
    from ingest_platform.sandbox.kraken_ws import KrakenSandboxServer

    with KrakenSandboxServer(seed=seed, rate=rate) as server:
        return run_stream_for(seconds, server.url, log_root, pairs=pairs, depth=depth)
