"""The socket end of the stream: a WebSocket that hands each message to a callback, stamped
with the time its bytes arrived.

Why ``picows`` and a callback rather than ``websockets`` and ``await recv()``: at 25,000
messages a second websockets' pure-Python frame parser, its receive queue and one ``recv``
coroutine per message cost about as much CPU as the whole Kraken protocol (py-spy: 37% of the
loop's samples, see docs/pages/performance.md). picows parses frames in C inside the asyncio
protocol's read callback and calls `StreamSocket.on_ws_frame` for each one; a whole message
goes to ``on_message`` (the connection's call into `KrakenProtocol.receive`) right there: no
queue, no task switch, no per-message coroutine.

What the stream relies on, and where it is kept:

- **Arrival stamp**: the clock is read once per socket read, at its first complete frame
  (``last_in_buffer`` of the frame before says a new read began), so a message that waited
  behind others of the same read carries that wait in its socket → book latency. Reads are
  capped at 16 KiB (`_ReadCap`): a backlog is worked off a slice at a time, each its own turn
  of the event loop, so the watchdog, the log's timers and the fan-out run in between.
- **Messages up to 32 MiB** (the instrument snapshot is several MB): picows limits each frame,
  `StreamSocket` reassembles continuation frames and limits the whole message; over the limit
  it closes with 1009.
- **No library pings**: liveness is the protocol's (heartbeats, silence, application pings);
  the peer's pings are still answered (picows' auto-pong).
- **Back-pressure**: there is no application queue. The read callback returns only after every
  frame of the read went through the protocol, so while the loop is busy the backlog waits in
  the kernel's socket receive buffer, and once that is full TCP's window stops the sender: a
  slow loop delays messages, it never drops them, and the client's memory does not grow with
  the backlog (it was a bounded queue of 1,024 messages with websockets, then the same TCP
  back-pressure).
- **Errors name what was wrong**: `connect` raises ``OSError``/``TimeoutError`` for the
  socket, `HandshakeRejected` (with the HTTP status) or `HandshakeFailed` for the upgrade and
  `InvalidURL`; why a connection ended is `StreamSocket.close_reason`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Callable
from typing import Any

from picows import (
    WSCloseCode,
    WSError,
    WSFrame,
    WSHandshakeError,
    WSInvalidURL,
    WSListener,
    WSMsgType,
    WSTransport,
    ws_connect,
)

from ingest_platform.streaming.kraken.protocol.clock import Clock

MAX_MESSAGE_BYTES = 32 * 2**20  # the full instrument snapshot is several MB on the real API
_CLOSE_WAIT = 1.0  # seconds a polite close waits for the server's close frame
#: Bytes read from the socket at most at a time: ~80 Kraken messages, ~1 ms of protocol work
#: (16 KiB against 64 KiB: p99 at 25k/s 21-28 against 36-53 ms loaded, the same CPU).
_READ_BYTES = 16 * 1024

OnMessage = Callable[[str | bytes, int], None]
"""Called with each whole message (text as ``str``, binary as ``bytes``) and the monotonic
time, in ns, at which its last bytes were read from the socket."""


class _ReadCap(asyncio.BufferedProtocol):
    """Stands between the socket transport and picows' protocol to cap each read at ``limit``
    bytes (picows doubles its read buffer whenever a read fills it, so behind a backlog one
    read took up to 9,000 messages at 25k/s, the loop's timers and tasks waiting ~100 ms for
    it, and every message of it stamped with the read's time)."""

    def __init__(self, inner: Any, limit: int) -> None:
        self._inner = inner
        self._limit = limit

    def get_buffer(self, sizehint: int) -> memoryview:
        buf = self._inner.get_buffer(sizehint)
        return buf[: self._limit] if len(buf) > self._limit else buf

    def buffer_updated(self, nbytes: int) -> None:
        self._inner.buffer_updated(nbytes)

    def connection_lost(self, exc: Exception | None) -> None:
        self._inner.connection_lost(exc)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()


class HandshakeFailed(Exception):
    """The server did not upgrade the connection to a WebSocket (the message says why)."""


class HandshakeRejected(HandshakeFailed):
    """The server answered the upgrade request with an HTTP status other than 101."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


class InvalidURL(ValueError):
    """The URL is not a ws:// or wss:// URL with a host."""


class StreamSocket(WSListener):
    """One open WebSocket: frames in (to ``on_message``), text frames out, closing.

    Created by `connect` once the handshake succeeded; lives on the loop that opened it.
    Messages reach ``on_message`` once `start` was called (the frames that came with the
    upgrade response wait until the caller is ready for them), and until `delivering` is
    cleared (a polite close or an abort begins).
    """

    def __init__(self, on_message: OnMessage, now_ns: Callable[[], int]) -> None:
        super().__init__()
        self.on_message = on_message
        self.now_ns = now_ns
        self.transport: WSTransport | None = None
        self.error: BaseException | None = None  # raised by on_message; ended the connection
        self.delivering = True
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._new_read = True
        self._arrival_ns = 0
        self._parts: list[bytes] = []
        self._parts_type = WSMsgType.TEXT
        self._parts_bytes = 0
        self._local_reason: str | None = None
        # Messages that came with the upgrade response, held until the connection is ready.
        self._held: list[tuple[str | bytes, int]] | None = []

    # -- picows callbacks (on the loop, inside the transport's read) -------------------------

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        if self._new_read:
            self._arrival_ns = self.now_ns()
        self._new_read = frame.last_in_buffer
        msg_type = frame.msg_type
        if msg_type is WSMsgType.TEXT and frame.fin and not self._parts:
            if self.delivering:
                try:
                    text = frame.get_payload_as_utf8_text()
                except UnicodeDecodeError as exc:
                    self.fail(WSCloseCode.INVALID_TEXT, f"invalid UTF-8 in a text message: {exc}")
                    return
                self._deliver(text)
        elif msg_type is WSMsgType.TEXT or msg_type is WSMsgType.BINARY:
            if self._parts:
                self.fail(WSCloseCode.PROTOCOL_ERROR, "a new message began inside a fragmented one")
            elif frame.fin:
                if self.delivering:
                    self._deliver(frame.get_payload_as_bytes())
            else:
                self._parts_type = msg_type
                self._add_part(frame)
        elif msg_type is WSMsgType.CONTINUATION:
            if not self._parts:
                if self._local_reason is None:  # (not the rest of a message already refused)
                    self.fail(WSCloseCode.PROTOCOL_ERROR, "a continuation frame with no message")
                return
            self._add_part(frame)
            if frame.fin:
                self._end_fragmented()
        elif msg_type is WSMsgType.CLOSE:
            # Answer the server's close frame (picows does not), then let TCP close.
            if not transport.is_close_frame_sent:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
            transport.disconnect()
        # PING is answered by picows (auto-pong); a PONG needs nothing.

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        # (`delivering` stays: messages held for `start` were received and still count.)
        if not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        """The stream sends a few small frames (subscriptions, pings); it does not throttle
        them (and without this method picows would log a warning)."""

    def resume_writing(self) -> None:
        """See `pause_writing`."""

    # -- messages ----------------------------------------------------------------------------

    def start(self) -> None:
        """Deliver messages from now on, first those that arrived before (see `connect`)."""
        held, self._held = self._held, None
        for payload, arrival_ns in held or ():
            if not self.delivering:
                return
            self._call(payload, arrival_ns)

    def _deliver(self, payload: str | bytes) -> None:
        if self._held is not None:
            self._held.append((payload, self._arrival_ns))
            return
        self._call(payload, self._arrival_ns)

    def _call(self, payload: str | bytes, arrival_ns: int) -> None:
        try:
            self.on_message(payload, arrival_ns)
        except Exception as exc:  # the stream ends with it: `wait_closed` raises it
            self.error = exc
            self.delivering = False
            self.abort()

    def _add_part(self, frame: WSFrame) -> None:
        self._parts_bytes += frame.payload_size
        if self._parts_bytes > MAX_MESSAGE_BYTES:
            self._parts.clear()
            self._parts_bytes = 0
            self.fail(WSCloseCode.MESSAGE_TOO_BIG, f"a message over {MAX_MESSAGE_BYTES} bytes")
            return
        self._parts.append(frame.get_payload_as_bytes())

    def _end_fragmented(self) -> None:
        payload = b"".join(self._parts)
        self._parts.clear()
        self._parts_bytes = 0
        if not self.delivering:
            return
        if self._parts_type is WSMsgType.BINARY:
            self._deliver(payload)
            return
        try:
            text = payload.decode()
        except UnicodeDecodeError as exc:
            self.fail(WSCloseCode.INVALID_TEXT, f"invalid UTF-8 in a text message: {exc}")
            return
        self._deliver(text)

    # -- sending and closing -----------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        transport = self.transport
        return (
            transport is not None
            and not transport.is_disconnected
            and not transport.is_close_frame_sent
        )

    def send(self, text: str) -> None:
        """Send a text frame now (it goes to the transport's buffer); dropped once closing."""
        transport = self.transport
        if transport is not None and self.is_open:
            transport.send(WSMsgType.TEXT, text.encode())

    def fail(self, code: WSCloseCode, reason: str) -> None:
        """Close because the server broke the protocol: a close frame naming it, then TCP."""
        self.delivering = False
        if self._local_reason is None:
            self._local_reason = f"{reason} (sent close {code.value})"
        transport = self.transport
        if transport is not None:
            if not transport.is_close_frame_sent:
                transport.send_close(code, reason.encode()[:120])
            transport.disconnect()

    async def close(self) -> None:
        """A polite close: stop delivering, send a close frame, wait (at most a second) for
        the server's, then drop the connection either way."""
        self.delivering = False
        transport = self.transport
        try:
            if transport is not None and not transport.is_disconnected:
                if not transport.is_close_frame_sent:
                    transport.send_close(WSCloseCode.OK)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(self._closed), _CLOSE_WAIT)
        finally:
            self.abort()

    def abort(self) -> None:
        """Drop the connection now: no close handshake, nothing more to read or send."""
        self.delivering = False
        transport = self.transport
        if transport is not None:
            with contextlib.suppress(Exception):
                transport.disconnect(graceful=False)

    async def wait_closed(self) -> None:
        """Until the connection is gone; raises what ``on_message`` raised, if it ended it."""
        await asyncio.shield(self._closed)
        if self.error is not None:
            raise self.error

    @property
    def close_reason(self) -> str:
        """Why the connection ended, in words: the close frames exchanged, or none."""
        if self._local_reason is not None:
            return self._local_reason
        transport = self.transport
        handshake = transport.close_handshake if transport is not None else None
        if handshake is None:
            return "no close frame received or sent"
        parts = []
        for verb, info in (("received", handshake.recv), ("sent", handshake.sent)):
            if info is not None:
                parts.append(f"{verb} {info.code.value} ({info.code.name}) {info.reason}".strip())
        if not handshake.recv_then_sent:
            parts.reverse()
        if handshake.recv is None:
            parts.append("no close frame received")
        return "; then ".join(parts)


async def connect(
    url: str,
    connect_timeout: float,
    clock: Clock,
    on_message: OnMessage,
    ssl_context: ssl.SSLContext | None = None,
) -> StreamSocket:
    """Open ``url``, TCP and TLS and the upgrade together bounded by ``connect_timeout``.

    Raises ``OSError`` (refused, unreachable, reset, ``ssl.SSLError`` for a certificate that
    does not verify), ``TimeoutError``, `HandshakeRejected`, `HandshakeFailed` or
    `InvalidURL`. A wss:// URL verifies the server with ``ssl_context``, by default the
    system's (`ssl.create_default_context`).
    """
    if ssl_context is None and url.startswith("wss://"):
        ssl_context = ssl.create_default_context()
    try:
        async with asyncio.timeout(connect_timeout):
            transport, listener = await ws_connect(
                lambda: StreamSocket(on_message, clock.monotonic_ns),
                url,
                ssl_context=ssl_context,
                # Also picows' own timer: a handshake cut short by the timeout above closes.
                websocket_handshake_timeout=connect_timeout,
                enable_auto_ping=False,  # liveness is the protocol's
                enable_auto_pong=True,
                max_frame_size=MAX_MESSAGE_BYTES,
                disconnect_on_exception=True,
                logger_name="kraken",
                # The loop's own transport: it reads once per readiness event, where
                # aiofastnet reads up to 256 KiB per loop cycle (p99 at 25k/s 3-5x worse).
                use_aiofastnet=False,
            )
    except WSInvalidURL as exc:
        raise InvalidURL(str(exc)) from exc
    except WSHandshakeError as exc:
        response = exc.response
        if response is not None and response.status != 101:
            raise HandshakeRejected(int(response.status), str(exc)) from exc
        raise HandshakeFailed(str(exc)) from exc
    except WSError as exc:
        raise HandshakeFailed(f"{type(exc).__name__}: {exc}") from exc
    underlying = transport.underlying_transport
    underlying.set_protocol(_ReadCap(underlying.get_protocol(), _READ_BYTES))
    if not isinstance(listener, StreamSocket):  # the server closed during the upgrade
        transport.disconnect(graceful=False)
        raise ConnectionResetError(f"{url} closed the connection during the WebSocket upgrade")
    listener.transport = transport
    return listener
