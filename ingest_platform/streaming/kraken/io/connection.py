"""The connection driver: owns the WebSocket, drives the protocol over it, reconnects.

`KrakenConnection.run` loops: **connect** (``CONNECTING``), then the socket's read callback
hands every received message to the `KrakenProtocol` (`KrakenConnection._on_message`: no
queue, no coroutine per message, see `transport`), sends its `data_to_send` and acts on its
`events_received` (``SUBSCRIBING`` until `BooksSynced`, then ``STREAMING``), while a watchdog
asks the protocol a few times a second whether the connection still looks alive and the run's
task waits for the connection to end. A failed connect or a lost
connection waits out a full-jitter exponential delay (`ingest_platform.core.backoff.Backoff`,
reset once every book verified again) in ``BACKOFF`` and connects again. A halt (``HALTED``)
or a stop ends the loop.

Off the hot path, a periodic task rolls log segments by age, writes ``book_top`` rows, the
heartbeat file (which the Dagster sensor reads) and statistics reports.

Cancellation: `run` closes the socket, writes open gaps, flushes and closes the log and writes
the final heartbeat in ``finally``, so a cancelled task (or a Dagster run cancelled while
`StreamRunner` hosts the connection) never leaves a torn log or an open socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ingest_platform.core.backoff import Backoff
from ingest_platform.core.metrics import StreamMetrics
from ingest_platform.streaming.kraken.book import KrakenBook
from ingest_platform.streaming.kraken.fanout.bus import StreamConfigMismatch
from ingest_platform.streaming.kraken.fanout.process import StreamFanout
from ingest_platform.streaming.kraken.fanout.sink import FanoutSink
from ingest_platform.streaming.kraken.heartbeat import heartbeat_document, write_heartbeat
from ingest_platform.streaming.kraken.io.metrics import StreamMetricsExporter
from ingest_platform.streaming.kraken.io.settings import StreamSettings
from ingest_platform.streaming.kraken.io.status import (
    ConnectionState,
    ConnectionStats,
    StreamResult,
)
from ingest_platform.streaming.kraken.io.transport import (
    HandshakeFailed,
    HandshakeRejected,
    InvalidURL,
    StreamSocket,
    connect,
)
from ingest_platform.streaming.kraken.log.writer import LogWriteError, StreamLog
from ingest_platform.streaming.kraken.protocol.clock import SYSTEM_CLOCK, Clock
from ingest_platform.streaming.kraken.protocol.events import (
    BooksSynced,
    ExchangeStatusChanged,
    Halted,
    ProtocolEvent,
)
from ingest_platform.streaming.kraken.protocol.halts import Halt
from ingest_platform.streaming.kraken.protocol.protocol import KrakenProtocol

logger = logging.getLogger(__name__)


class KrakenConnection:
    """Streams the configured pairs from ``url`` until stopped, cancelled or halted.

    ``log`` receives every book item, trade, bar, gap and periodic top-of-book; ``fanout``
    (None: off) publishes every verified event, status change and halt to a bus; ``status_root``
    (usually the log root) gets the heartbeat file; ``on_report`` is called (on the event loop)
    with a statistics dict every ``report_interval`` and once at the end.
    """

    def __init__(
        self,
        settings: StreamSettings,
        url: str,
        *,
        log: StreamLog | None = None,
        status_root: str | os.PathLike[str] | None = None,
        run_id: str | None = None,
        on_report: Callable[[dict[str, Any]], None] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        rng: random.Random | None = None,
        fanout: StreamFanout | None = None,
        metrics: StreamMetrics | None = None,
    ) -> None:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError(f"the Kraken stream URL must be ws:// or wss://, got {url!r}")
        self.settings = settings
        self.url = url
        self.log = log
        self.status_root = Path(status_root) if status_root is not None else None
        self.run_id = run_id
        self.on_report = on_report
        self.clock = clock
        rng = rng or random.Random()
        self.fanout = fanout
        sink = FanoutSink(log, fanout, self._verified_book) if fanout is not None else log
        self.protocol = KrakenProtocol(settings.protocol, sink=sink, clock=clock, rng=rng)
        self.metrics = (
            StreamMetricsExporter(metrics, self.protocol, fanout) if metrics is not None else None
        )
        self.stats = ConnectionStats()
        self.backoff = Backoff(settings.protocol.backoff_base, settings.protocol.backoff_cap, rng)
        self._state = ConnectionState.IDLE
        self._ws: StreamSocket | None = None
        self._stop_requested = False
        self._wake: asyncio.Event | None = None
        self._disconnect_reason: str | None = None
        self._last_error: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing: asyncio.Task[None] | None = None

    # -- public ------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        return ConnectionState.HALTED if self.protocol.halt is not None else self._state

    @property
    def halt(self) -> Halt | None:
        return self.protocol.halt

    @property
    def log_session(self) -> str | None:
        """The log's writer session id (one per stream start; every log row carries it)."""
        return self.log.session if self.log is not None else None

    def request_stop(self) -> None:
        """Ask `run` to finish: close the connection politely and return (on the run's loop)."""
        self._stop_requested = True
        if self._wake is not None:
            self._wake.set()
        ws = self._ws
        if ws is not None:
            ws.delivering = False  # nothing more reaches the protocol, as the close begins
        if ws is not None and self._loop is not None and self._closing is None:
            self._closing = self._loop.create_task(self._close_politely(ws))

    def report(self) -> dict[str, Any]:
        """Statistics now, with latency percentiles and the state and halt, JSON-ready."""
        protocol = self.protocol
        out = {**protocol.stats.snapshot(protocol.latency), **self.stats.snapshot()}
        out["state"] = self.state.value
        out["session"] = self.log_session
        out["halt"] = protocol.halt.as_dict() if protocol.halt else None
        out["open_gaps"] = len(protocol.open_gaps())
        out["last_error"] = self._last_error
        out["bus"] = self.fanout.report() if self.fanout is not None else None
        if self.log is not None:
            out["log_rows"] = dict(self.log.stats.rows_written)
            out["log_segments"] = dict(self.log.stats.segments_written)
            out["log_write_seconds"] = round(self.log.stats.write_seconds, 3)
        return out

    async def run(self, duration: float | None = None) -> StreamResult:
        """Stream until `request_stop`, ``duration`` seconds, a halt, or cancellation."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._wake = asyncio.Event()
        if self._stop_requested:
            self._wake.set()
        timer = loop.call_later(duration, self.request_stop) if duration is not None else None
        periodic = asyncio.create_task(self._periodic(), name="kraken-periodic")
        fanout = self.fanout
        publishing = (
            asyncio.create_task(fanout.run(), name="kraken-fanout") if fanout is not None else None
        )
        try:
            while not self._stop_requested and self.protocol.halt is None:
                await self._connect_once()
                if self._stop_requested or self.protocol.halt is not None:
                    break
                self._state = ConnectionState.BACKOFF
                delay = self.backoff.next_delay()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            if timer is not None:
                timer.cancel()
            periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await periodic
            if fanout is not None:
                await self._close_fanout(fanout, publishing)
            self._shutdown()
        halt = self.protocol.halt
        if halt is not None:
            self._last_error = f"halted: {halt.reason}: {halt.detail}"
        return StreamResult(
            outcome="halted" if halt is not None else "stopped",
            halt=halt,
            stats=self.report(),
            log_session=self.log_session,
            log_root=str(self.log.root) if self.log is not None else None,
            subscribed=self.protocol.stats.subscriptions > 0,
            last_error=self._last_error,
        )

    # -- one connection ----------------------------------------------------------------------

    async def _connect_once(self) -> None:
        self._state = ConnectionState.CONNECTING
        stats = self.stats
        try:
            ws = await connect(
                self.url, self.settings.connect_timeout, self.clock, self._on_message
            )
        except HandshakeRejected as exc:
            stats.connect_failures += 1
            status = exc.status
            self._last_error = f"connect to {self.url}: HTTP {status}"
            if 400 <= status < 500:
                self.protocol.critical("handshake_rejected", f"HTTP {status} from {self.url}")
            logger.warning("Kraken handshake failed: HTTP %s", status)
            return
        except (OSError, TimeoutError, HandshakeFailed, InvalidURL) as exc:
            stats.connect_failures += 1
            self._last_error = f"connect to {self.url}: {type(exc).__name__}: {exc}"
            logger.warning("Kraken connect failed: %s: %s", type(exc).__name__, exc)
            return
        self._ws = ws
        stats.connections += 1
        self._disconnect_reason = None
        protocol = self.protocol
        protocol.connection_made()
        self._state = ConnectionState.SUBSCRIBING
        watchdog = asyncio.create_task(self._watchdog(ws), name="kraken-watchdog")
        try:
            self._flush()
            if self._stop_requested:  # stopped while connecting
                return
            # From here on the socket's read callback drives the protocol (`_on_message`);
            # this task only waits for the connection to end.
            ws.start()
            await ws.wait_closed()
            if self._disconnect_reason is None:
                self._disconnect_reason = f"closed: {ws.close_reason}"
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
            closing, self._closing = self._closing, None
            if closing is not None:
                await asyncio.gather(closing, return_exceptions=True)
            ws.abort()
            self._ws = None
            reason = self._disconnect_reason or "closed"
            stopping = self._stop_requested or protocol.halt is not None
            if not stopping:
                self._last_error = f"connection lost: {reason}"
                if self.fanout is not None:
                    self.fanout.status("connection", "reconnecting", None)
            protocol.connection_lost(reason, stopping)

    def _on_message(self, raw: str | bytes, arrival_ns: int) -> None:
        """The hot path, called from the socket's read callback for every whole message."""
        protocol = self.protocol
        protocol.receive(raw, arrival_ns)
        if protocol.outgoing or protocol.events:
            self._flush()
        if protocol.halt is not None:
            ws = self._ws
            if ws is not None:
                ws.abort()

    def _flush(self) -> None:
        """Queue the protocol's frames for the sender, and act on its events."""
        ws = self._ws
        frames = self.protocol.data_to_send()
        if ws is not None:
            for text in frames:
                ws.send(text)
        for event in self.protocol.events_received():
            if isinstance(event, BooksSynced):
                self._on_synced()
            if self.fanout is not None:
                self._publish_event(self.fanout, event)

    def _verified_book(self, symbol: str) -> KrakenBook | None:
        """A pair's book while it is verified (the fan-out snapshots it), else None."""
        protocol = self.protocol
        return protocol.book(symbol) if protocol.is_synced(symbol) else None

    @staticmethod
    def _publish_event(fanout: StreamFanout, event: ProtocolEvent) -> None:
        """Status changes and halts go on the bus too (``kraken.status``, ``kraken.halt``)."""
        if isinstance(event, BooksSynced):
            fanout.status("connection", "streaming", None)
        elif isinstance(event, ExchangeStatusChanged):
            fanout.status("exchange", event.status, event.previous)
        elif isinstance(event, Halted):
            fanout.halt(event.halt.as_dict())

    async def _close_fanout(self, fanout: StreamFanout, task: asyncio.Task[None] | None) -> None:
        """Before the log closes: the last events (a halt among them) go out, what the bus
        never acknowledged is written down as bus gaps; a misconfigured stream is an error."""
        for event in self.protocol.events:  # a halt raised off the receive path
            self._publish_event(fanout, event)
        if self.protocol.halt is None:
            fanout.status("connection", "stopped", None)
        try:
            await fanout.close(task)
        except Exception:
            logger.exception("Kraken fan-out: close failed")
        if task is not None and task.done() and not task.cancelled():
            exc = task.exception()
            if isinstance(exc, StreamConfigMismatch):
                self._last_error = str(exc)

    async def _close_politely(self, ws: StreamSocket) -> None:
        """A close frame (bounded by a second), then the transport goes either way."""
        with contextlib.suppress(Exception):
            await ws.close()

    def _on_synced(self) -> None:
        """Every book verified a snapshot: the connection is healthy, reset the backoff."""
        if self._ws is not None:
            self._state = ConnectionState.STREAMING
        self.backoff.reset()

    async def _watchdog(self, ws: StreamSocket) -> None:
        limits = self.settings.protocol
        tick = max(0.01, min(limits.max_silence, limits.max_heartbeat_interval, 1.0) / 5)
        protocol = self.protocol
        while True:
            await asyncio.sleep(tick)
            breach = protocol.check()
            self._flush()
            if breach is not None:
                self._disconnect_reason = breach
                logger.warning("Kraken liveness: %s; reconnecting", breach)
                ws.abort()
                return
            if protocol.halt is not None:
                ws.abort()
                return

    # -- off the hot path --------------------------------------------------------------------

    async def _periodic(self) -> None:
        """Heartbeat file, segment age rolls, top-of-book rows and reports."""
        cfg = self.settings
        tick = min(cfg.status_interval, 0.5)
        now_ns = self.clock.monotonic_ns
        next_status = next_report = next_top = now_ns()
        next_report += int(cfg.report_interval * 1e9)
        next_top += int(cfg.top_interval * 1e9)
        while True:
            await asyncio.sleep(tick)
            now = now_ns()
            try:
                if self.log is not None:
                    self.log.tick()
                    if cfg.top_interval and now >= next_top:
                        next_top = now + int(cfg.top_interval * 1e9)
                        self.protocol.log_tops()
            except LogWriteError as exc:
                self._halt("log_write_failed", str(exc))
                return
            if self.metrics is not None:
                self.metrics.sync()
            if now >= next_status:
                next_status = now + int(cfg.status_interval * 1e9)
                self._write_status()
            if now >= next_report:
                next_report = now + int(cfg.report_interval * 1e9)
                self._emit_report()

    def _halt(self, reason: str, detail: str) -> None:
        self.protocol.halt_now(reason, detail)
        if self._wake is not None:
            self._wake.set()
        if self._ws is not None:
            self._ws.abort()

    def _emit_report(self) -> None:
        if self.on_report is None:
            return
        try:
            self.on_report(self.report())
        except Exception:
            logger.exception("Kraken stream report callback failed")

    def heartbeat_payload(self) -> dict[str, Any]:
        """What the heartbeat file holds now (see `heartbeat`)."""
        protocol = self.protocol
        stats = self.stats
        now_wall = self.clock.time_ns() / 1e9
        now_ns = self.clock.monotonic_ns()

        def wall(ns: int) -> float | None:
            return now_wall - (now_ns - ns) / 1e9 if ns else None

        stats.last_message_at = wall(protocol.liveness.last_message_ns)
        stats.last_heartbeat_at = wall(protocol.liveness.last_heartbeat_ns)
        return heartbeat_document(
            run_id=self.run_id,
            session=self.log_session,
            state=self.state.value,
            updated_at=now_wall,
            started_at=protocol.stats.started_at,
            last_message_at=stats.last_message_at,
            last_heartbeat_at=stats.last_heartbeat_at,
            last_error=self._last_error,
            halt=protocol.halt.as_dict() if protocol.halt else None,
            stats={**protocol.stats.snapshot(), **stats.snapshot()},
            bus=self.fanout.report() if self.fanout is not None else None,
        )

    def _write_status(self) -> None:
        if self.status_root is None:
            return
        try:
            write_heartbeat(self.status_root, self.heartbeat_payload())
        except OSError as exc:
            logger.warning("Kraken heartbeat file not written: %s", exc)

    def _shutdown(self) -> None:
        """Runs in ``finally``: socket, open gaps, log, final heartbeat and report."""
        ws = self._ws
        if ws is not None:
            ws.abort()
        if self.protocol.halt is None:
            self._state = ConnectionState.STOPPED
        ending = "halted" if self.protocol.halt is not None else "stopped"
        self.protocol.close_open_gaps(f"still open when the stream {ending}")
        try:
            if self.log is not None:
                self.log.close()
        except LogWriteError as exc:
            logger.error("Kraken stream log: final flush failed: %s", exc)
            self.protocol.halt_now("log_write_failed", str(exc))
        finally:
            if self.metrics is not None:
                self.metrics.sync()
            self._write_status()
            self._emit_report()


def open_stream(
    settings: StreamSettings,
    url: str,
    log_root: str | os.PathLike[str] | None,
    *,
    run_id: str | None = None,
    on_report: Callable[[dict[str, Any]], None] | None = None,
    background_log: bool = True,
    clock: Clock = SYSTEM_CLOCK,
    status_root: str | os.PathLike[str] | None = None,
    fanout: StreamFanout | None = None,
    metrics: StreamMetrics | None = None,
) -> KrakenConnection:
    """A connection to ``url`` writing its log under ``log_root`` (None: no log) and its
    heartbeat under ``status_root``: a local folder, by default the log root itself (an
    object-store log root needs a local `status_root`: see `KrakenStream.heartbeat_path`)."""
    log = (
        StreamLog(
            log_root,
            max_rows=settings.segment_max_rows,
            max_seconds=settings.segment_max_seconds,
            background=background_log,
            clock=clock,
        )
        if log_root is not None
        else None
    )
    return KrakenConnection(
        settings,
        url,
        log=log,
        status_root=status_root if status_root is not None else log_root,
        run_id=run_id,
        on_report=on_report,
        clock=clock,
        fanout=fanout,
        metrics=metrics,
    )
