"""When a connection counts as dead: the liveness limits, checked against an injected clock.

A WebSocket can stay open long after the exchange stopped talking on it, so the protocol
judges the connection by what arrives, not by the socket: nothing at all for ``max_silence``,
no heartbeat for ``max_heartbeat_interval`` (even while data flows), a ping unanswered for
``max_silence``, or a subscription without its snapshot for ``snapshot_timeout``. Snapshots
are not expected while the exchange is in maintenance.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ingest_platform.streaming.kraken.protocol.settings import ProtocolSettings


@dataclass(frozen=True)
class Breach:
    """Why a connection must be dropped; ``critical`` breaches count toward a halt."""

    reason: str
    detail: str = ""
    critical: bool = False

    def __str__(self) -> str:
        return f"{self.reason} {self.detail}".strip()


class Liveness:
    """One connection's freshness: last message, last heartbeat, pings in flight."""

    def __init__(self, settings: ProtocolSettings) -> None:
        self.silence_ns = int(settings.max_silence * 1e9)
        self.heartbeat_ns = int(settings.max_heartbeat_interval * 1e9)
        self.snapshot_ns = int(settings.snapshot_timeout * 1e9)
        self.ping_ns = int(settings.ping_interval * 1e9)
        self.connected_ns = 0
        self.last_message_ns = 0
        self.last_heartbeat_ns = 0
        self.next_ping_ns = 0
        self.pings: dict[int, int] = {}  # req_id -> when it was sent
        self.instruments_ready = False
        self.maintenance = False

    def connected(self, now_ns: int) -> None:
        """A new connection: everything counts from now."""
        self.connected_ns = self.last_message_ns = self.last_heartbeat_ns = now_ns
        self.next_ping_ns = now_ns + self.ping_ns
        self.pings.clear()
        self.instruments_ready = False
        self.maintenance = False  # a new connection starts with a status message of its own

    def ping_due(self, now_ns: int) -> bool:
        if not self.ping_ns or now_ns < self.next_ping_ns:
            return False
        self.next_ping_ns = now_ns + self.ping_ns
        return True

    def pong(self, req_id: int, now_ns: int) -> float | None:
        """The round trip of an answered ping, in milliseconds (None: not one of ours)."""
        sent = self.pings.pop(req_id, None)
        return None if sent is None else (now_ns - sent) / 1e6

    def breach(self, now_ns: int, awaiting: Iterable[tuple[str, int | None]]) -> Breach | None:
        """The first limit broken at ``now_ns``; ``awaiting`` is (symbol, snapshot due since)."""
        if now_ns - self.last_message_ns > self.silence_ns:
            return Breach("silence")
        if now_ns - self.last_heartbeat_ns > self.heartbeat_ns:
            return Breach("heartbeat_timeout")
        if any(now_ns - sent > self.silence_ns for sent in self.pings.values()):
            return Breach("pong_timeout")
        if self.maintenance:
            return None
        if not self.instruments_ready and now_ns - self.connected_ns > self.snapshot_ns:
            return Breach("instrument_timeout", critical=True)
        late = [
            s for s, since in awaiting if since is not None and now_ns - since > self.snapshot_ns
        ]
        if late:
            return Breach("snapshot_timeout", f"{late}", critical=True)
        return None
