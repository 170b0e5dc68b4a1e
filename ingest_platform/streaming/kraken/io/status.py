"""Where the stream is (`ConnectionState`), what the driver counts (`ConnectionStats`) and
how a run of it ended (`StreamResult`).

They travel beyond the connection: the state and the counts into reports and the heartbeat
file, the result to the Dagster op, which fails the run on a halt or when nothing was ever
subscribed.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any

from ingest_platform.streaming.kraken.protocol.halts import Halt


class ConnectionState(enum.Enum):
    """Where the stream is in a connection's life (``state`` in reports and the heartbeat file).

    ``IDLE`` -> ``CONNECTING`` -> ``SUBSCRIBING`` -> ``STREAMING`` once every book has verified
    a snapshot; a failed connect or a lost connection goes through ``BACKOFF`` back to
    ``CONNECTING``; a halt sets ``HALTED`` from any state; `run` ending without one, ``STOPPED``.
    """

    IDLE = "idle"
    CONNECTING = "connecting"
    SUBSCRIBING = "subscribing"
    STREAMING = "streaming"
    BACKOFF = "backoff"
    HALTED = "halted"
    STOPPED = "stopped"


@dataclass
class ConnectionStats:
    """What only the driver knows, reported beside the protocol's `StreamStats`: connection
    attempts, and when the last message and heartbeat arrived in wall time (as of the last
    heartbeat file)."""

    connections: int = 0
    connect_failures: int = 0
    last_message_at: float | None = None
    last_heartbeat_at: float | None = None

    def snapshot(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class StreamResult:
    """How `KrakenConnection.run` ended: ``stopped`` (asked to) or ``halted``.

    ``subscribed`` is False when no data subscription ever succeeded (the exchange was never
    reached, or refused everything); ``last_error`` then says why. ``log_session`` is the
    log's writer session id (None without a log).
    """

    outcome: str
    halt: Halt | None
    stats: dict[str, Any]
    log_session: str | None
    log_root: str | None
    subscribed: bool
    last_error: str | None
