"""Writing the stream log: `StreamLog`, which appends rows and rolls them into segments.

Segments roll when a kind's buffer reaches ``max_rows``, when it is ``max_seconds`` old, and at
the UTC day boundary (a segment never spans two days), and each is written atomically: a hidden
temporary file in the target directory, fsync, ``os.replace``, fsync of the directory. A writer
killed at any point leaves either no segment or a complete one. Rows reach a segment from the
stream's event loop by appending one tuple to a list; the Arrow conversion and the write happen
on one background thread, converted in chunks so the event loop never waits long for the GIL.
(The format, and reading it back, is `log`.)

The root may be an fsspec URL (``s3://bucket/stream/kraken``). There a segment is serialized
whole in memory and sent as ONE whole-object PUT to its final key (`core.object_store`): the
store shows an object only once its upload has completed, so a writer killed mid-upload leaves
no segment, never a partial one, and there are no temporary objects to sweep.
"""

from __future__ import annotations

import collections
import threading
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
from upath import UPath

from ingest_platform.core import object_store
from ingest_platform.core.durable import parquet_bytes, write_parquet_atomically
from ingest_platform.core.object_store import Root
from ingest_platform.streaming.kraken.log.segments import (
    FORMAT_VERSION,
    KINDS,
    day_of,
    rows_to_table,
    segment_name,
    sweep_temporary_files,
)
from ingest_platform.streaming.kraken.protocol.clock import SYSTEM_CLOCK, Clock
from ingest_platform.streaming.kraken.protocol.rows import SinkError

_DAY_US = 86_400_000_000


class LogWriteError(SinkError):
    """A segment could not be written: the stream can no longer promise a replayable log."""


# ---- atomic files ----------------------------------------------------------------------------


def write_table_atomically(table: pa.Table, final: Path | UPath) -> int:
    """Write ``table`` to ``final`` atomically and durably (zstd); return its size.

    A local file goes through a temporary file and a rename; an object is one whole PUT.
    """
    if isinstance(final, Path):
        return write_parquet_atomically(table, final, compression="zstd")
    return object_store.put_object(final, parquet_bytes(table, compression="zstd"))


# ---- the writer ------------------------------------------------------------------------------


class _Buffer:
    """Rows of one kind not yet in a segment, and where the current segment stands."""

    __slots__ = ("day_end_us", "first_recv_us", "first_seq", "kind", "next_seq", "opened", "rows")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.rows: list[tuple] = []
        self.next_seq = 0
        self.first_seq = 0
        self.first_recv_us = 0
        self.day_end_us = 0  # end of the UTC day of the segment being filled
        self.opened = 0  # monotonic ns of its first row


@dataclass
class LogStats:
    """What the writer has published (rows and files per kind) and queued."""

    rows_written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    segments_written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    bytes_written: int = 0
    write_seconds: float = 0.0  # conversion + write + fsync, on the writer thread
    files: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=1000))
    """The most recent segment paths (bounded: the writer may run for months)."""


class StreamLog:
    """Append-only, segment-rolling writer of the stream's record kinds.

    The ``book``/``trade``/... methods are called from the client's event loop: each appends
    one tuple and returns the row's seq. Rolled segments are written by one background thread
    (in order); `close` flushes everything and waits, and must run in ``finally``. Segment age
    is read from ``clock`` (the stream's, so a test can age a segment without waiting).

    On start it sweeps the temporary files a killed writer left in the newest day folders,
    once they are ``stale_temp_seconds`` old (younger ones may belong to a live writer).
    """

    def __init__(
        self,
        root: Root,
        session: str | None = None,
        max_rows: int = 50_000,
        max_seconds: float = 300.0,
        background: bool = True,
        clock: Clock = SYSTEM_CLOCK,
        stale_temp_seconds: float = 3600.0,
    ) -> None:
        if max_rows < 1:
            raise ValueError(f"max_rows must be >= 1, got {max_rows}")
        if max_seconds <= 0:
            raise ValueError(f"max_seconds must be > 0, got {max_seconds}")
        self.root = object_store.resolve(root)
        self.session = session or new_session_id()
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.clock = clock
        self.stats = LogStats()
        self._buffers = {kind: _Buffer(kind) for kind in KINDS}
        self._executor = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="kraken-log")
            if background
            else None
        )
        self._pending: list[Future[None]] = []
        self._lock = threading.Lock()
        self._error: BaseException | None = None
        self._closed = False
        if isinstance(self.root, Path):  # an object store needs no folders, leaves no temps
            self.root.mkdir(parents=True, exist_ok=True)
        self.swept = sweep_temporary_files(self.root, stale_temp_seconds, recent_days=2)

    # -- appends (hot path) ------------------------------------------------------------------

    def _append(self, buf: _Buffer, recv_us: int, row_tail: tuple) -> int:
        if self._error is not None:
            raise LogWriteError(f"the stream log cannot write segments: {self._error}")
        rows = buf.rows
        if rows and recv_us >= buf.day_end_us:
            self._roll(buf)
            rows = buf.rows
        seq = buf.next_seq
        buf.next_seq = seq + 1
        if not rows:
            buf.first_seq = seq
            buf.first_recv_us = recv_us
            buf.day_end_us = (recv_us // _DAY_US + 1) * _DAY_US
            buf.opened = self.clock.monotonic_ns()
        rows.append((seq, recv_us, *row_tail))
        if len(rows) >= self.max_rows:
            self._roll(buf)
        return seq

    def book(
        self,
        recv_us: int,
        exch_ts: str | None,
        symbol: str,
        kind: str,
        bids: Sequence[Any],
        asks: Sequence[Any],
        checksum: int,
        checksum_ok: bool,
        depth: int,
        price_precision: int,
        qty_precision: int,
    ) -> int:
        """One ``book`` item, levels as received (``(price, qty)`` text); returns its seq."""
        return self._append(
            self._buffers["book"],
            recv_us,
            (
                exch_ts,
                symbol,
                kind,
                bids,
                asks,
                checksum,
                checksum_ok,
                depth,
                price_precision,
                qty_precision,
            ),
        )

    def book_top(
        self,
        recv_us: int,
        symbol: str,
        book_seq: int,
        checksum: int,
        bids: list[dict[str, str]],
        asks: list[dict[str, str]],
    ) -> int:
        return self._append(
            self._buffers["book_top"], recv_us, (symbol, book_seq, checksum, bids, asks)
        )

    def trade(self, recv_us: int, kind: str, item: dict[str, Any]) -> int:
        get = item.get
        return self._append(
            self._buffers["trade"],
            recv_us,
            (
                get("timestamp"),
                get("symbol"),
                kind,
                get("side"),
                get("price"),
                get("qty"),
                get("ord_type"),
                get("trade_id"),
            ),
        )

    def ohlc(self, recv_us: int, kind: str, item: dict[str, Any]) -> int:
        get = item.get
        return self._append(
            self._buffers["ohlc"],
            recv_us,
            (
                get("timestamp"),
                get("symbol"),
                kind,
                get("interval"),
                get("interval_begin"),
                get("open"),
                get("high"),
                get("low"),
                get("close"),
                get("vwap"),
                get("volume"),
                get("trades"),
            ),
        )

    def gap(
        self,
        recv_us: int,
        symbol: str,
        channel: str,
        reason: str,
        start_us: int,
        end_us: int | None,
        last_book_seq: int | None,
        resume_book_seq: int | None,
        detail: str = "",
    ) -> int:
        return self._append(
            self._buffers["gap"],
            recv_us,
            (symbol, channel, reason, start_us, end_us, last_book_seq, resume_book_seq, detail),
        )

    def next_seq(self, kind: str) -> int:
        """The seq the next row of ``kind`` will get."""
        return self._buffers[kind].next_seq

    # -- rolling -----------------------------------------------------------------------------

    def tick(self) -> None:
        """Roll every segment older than ``max_seconds`` (call about once a second)."""
        if self._error is not None:
            raise LogWriteError(f"the stream log cannot write segments: {self._error}")
        limit = self.clock.monotonic_ns() - int(self.max_seconds * 1e9)
        for buf in self._buffers.values():
            if buf.rows and buf.opened <= limit:
                self._roll(buf)

    def flush(self, wait: bool = True) -> None:
        """Roll every non-empty buffer into a segment; with ``wait``, until all are on disk."""
        for buf in self._buffers.values():
            if buf.rows:
                self._roll(buf)
        if wait:
            self._wait()

    def _roll(self, buf: _Buffer) -> None:
        rows, buf.rows = buf.rows, []
        path = (
            self.root
            / buf.kind
            / day_of(buf.first_recv_us)
            / segment_name(buf.first_recv_us, self.session, buf.first_seq)
        )
        if self._executor is None:
            self._write(buf.kind, rows, path)
            return
        with self._lock:
            self._pending = [f for f in self._pending if not f.done()]
            try:
                self._pending.append(self._executor.submit(self._write, buf.kind, rows, path))
                return
            except RuntimeError:
                # The executor refuses work once the interpreter is exiting (a run cancelled
                # mid-event stops the stream from atexit): write on this thread instead.
                pass
        self._write(buf.kind, rows, path)

    def _write(self, kind: str, rows: list[tuple], path: Path | UPath) -> None:
        started = self.clock.monotonic_ns()
        try:
            pause = _yield_gil if self._executor is not None else None
            table = rows_to_table(kind, self.session, rows, pause)
            table = table.replace_schema_metadata(
                {"kraken_log_format": FORMAT_VERSION, "kind": kind, "session": self.session}
            )
            size = write_table_atomically(table, path)
        except Exception as exc:
            self._error = exc
            raise LogWriteError(f"cannot write {kind} segment {path}: {exc}") from exc
        except BaseException as exc:
            self._error = exc
            raise
        with self._lock:
            self.stats.rows_written[kind] += len(rows)
            self.stats.segments_written[kind] += 1
            self.stats.bytes_written += size
            self.stats.write_seconds += (self.clock.monotonic_ns() - started) / 1e9
            self.stats.files.append(str(path))

    def _wait(self) -> None:
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            future.exception()  # wait; errors are recorded in self._error
        if self._error is not None:
            raise LogWriteError(f"the stream log cannot write segments: {self._error}")

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Write every buffered row and wait for the writer thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._error is None:
                self.flush(wait=True)
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)

    def __enter__(self) -> StreamLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _yield_gil() -> None:
    """Let a thread waiting for the GIL have it now (the writer thread, between chunks).

    A thread that wants the GIL while another runs Python waits up to the interpreter's switch
    interval (5 ms) before it may take it. For the event loop that is 5 ms added to every
    message arriving while a segment converts; a short sleep releases the GIL at once.
    """
    time.sleep(_YIELD_SECONDS)


_YIELD_SECONDS = 0.0001


def new_session_id() -> str:
    """A short, unique, filename-safe id for one writer session."""
    return uuid.uuid4().hex[:12]
