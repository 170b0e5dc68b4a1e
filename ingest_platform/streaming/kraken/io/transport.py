"""The socket end of the stream: opening a WebSocket whose frames carry their arrival time.

``websockets`` options are chosen for a stream whose liveness the protocol judges itself
(no library pings), whose instrument snapshot is several MB, and which must never block on a
slow consumer for long (a bounded receive queue).
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import Opcode

from ingest_platform.streaming.kraken.protocol.clock import SYSTEM_CLOCK, Clock

_MAX_MESSAGE_BYTES = 32 * 2**20  # the full instrument snapshot is several MB on the real API


class StampedConnection(ClientConnection):
    """A ClientConnection that notes when each data frame's bytes arrived from the socket.

    ``recv`` only says when the consumer got a message; the stamp taken in ``data_received``
    also counts the time a message waited in websockets' queue, so the latency reported is
    socket-to-log, not merely parse-to-log. `stamped_connection` binds the clock.
    """

    now_ns: Callable[[], int] = staticmethod(SYSTEM_CLOCK.monotonic_ns)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: collections.deque[int] = collections.deque()
        self._chunk_ns = 0

    def data_received(self, data: bytes) -> None:
        self._chunk_ns = self.now_ns()
        super().data_received(data)

    def process_event(self, event: Any) -> None:
        if (
            self.response is not None
            and getattr(event, "fin", False)
            and event.opcode in (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)
        ):
            self.arrivals.append(self._chunk_ns)
        super().process_event(event)


def stamped_connection(clock: Clock) -> type[StampedConnection]:
    """A `StampedConnection` class that stamps arrivals with ``clock``."""
    if clock is SYSTEM_CLOCK:
        return StampedConnection
    return type(
        "StampedConnection", (StampedConnection,), {"now_ns": staticmethod(clock.monotonic_ns)}
    )


async def open_websocket(url: str, connect_timeout: float, clock: Clock) -> StampedConnection:
    """Connect to ``url``; raises what ``websockets.connect`` raises (OSError, InvalidStatus...)."""
    ws = await connect(
        url,
        open_timeout=connect_timeout,
        ping_interval=None,  # liveness is the protocol's: heartbeats, silence, app-level ping
        close_timeout=1,
        max_size=_MAX_MESSAGE_BYTES,
        max_queue=1024,
        create_connection=stamped_connection(clock),
    )
    assert isinstance(ws, StampedConnection)
    return ws


def abort(ws: ClientConnection) -> None:
    """Drop the connection now: no close handshake, nothing more to read or send."""
    transport = ws.transport
    if transport is not None:
        with contextlib.suppress(Exception):
            transport.abort()
