"""The Kraken stream's replayable log: Parquet segments per record kind and UTC day.

Layout under the log root (``<data dir>/stream/kraken`` by default)::

    <root>/<kind>/<YYYY-MM-DD>/<first recv time>-<session>-<first seq>.parquet
    <root>/heartbeat.json

Kinds (each with its own Arrow schema, `SCHEMAS`):

- ``book``: one row per ``book`` message item (one symbol): the levels exactly as received
  (``list<struct<price: string, qty: string>>``, the JSON number text, never float), the
  message checksum, whether the live book matched it, and the pair precisions and depth the
  book used. Replay re-applies these rows and re-verifies every checksum bit for bit; the
  minute bars take their mid and spread from that replayed book (computing the top of book
  live would cost the hot path a third of its time). Updates that arrive while a book is out
  of sync are counted but not logged: the gap row covers them.
- ``book_top``: a periodic top-N picture of each verified book (plus its checksum and the
  ``book`` seq it follows), a second, independent check for replay and a cheap way to look at
  the book without replaying.
- ``trade`` and ``ohlc``: every trade and every OHLC bar message item (numbers as exact text).
- ``gap``: every interval in which a book (or a trade/ohlc subscription) was not known to be
  complete: reconnects, checksum resyncs, maintenance, rejected subscriptions, with reason,
  start, end (null when still open at shutdown) and the ``book`` seqs around it.

Every row carries the writer ``session`` (one per client start) and a ``seq`` that is
consecutive per (session, kind), so a deleted row is a visible hole, not a silent loss.

Segments are written by `log_writer.StreamLog`, each atomically (a hidden temporary file in
the target directory, renamed into place), and never span two UTC days. This module is the
format and its reading side: readers skip the hidden ``.*.tmp`` files a killed writer leaves.

The root may also be an fsspec URL (``s3://bucket/stream/kraken``): there each segment is one
whole-object PUT (`core.object_store`), so there are no temporary objects to skip or sweep;
readers list the store afresh (never from fsspec's listing cache) and fetch each segment whole.

The heartbeat file beside the kinds is the running stream's, not the log's (`heartbeat`).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from upath import UPath

from ingest_platform.core import object_store
from ingest_platform.core.durable import TEMP_PREFIX, TEMP_SUFFIX
from ingest_platform.core.object_store import Root

FORMAT_VERSION = "1"
SUFFIX = ".parquet"
_TEMP_PREFIX = TEMP_PREFIX  # the same hidden temp files as the lake's (core.durable)
_TEMP_SUFFIX = TEMP_SUFFIX
_CONVERT_CHUNK = 1024  # rows per Arrow conversion: well under 1 ms of GIL each
_SEGMENT_NAME = re.compile(r"^(\d{8}T\d{6}\d{6}Z)-([0-9a-zA-Z]+)-(\d{12})\.parquet$")
_DAY_NAME = re.compile(r"^\d{4}-\d{2}-\d{2}$")

LEVEL = pa.struct([("price", pa.string()), ("qty", pa.string())])
LEVELS = pa.list_(LEVEL)
TS = pa.timestamp("us", tz="UTC")

#: Leading columns of every kind, in this order.
_COMMON = [
    pa.field("session", pa.string(), nullable=False),
    pa.field("seq", pa.int64(), nullable=False),
    pa.field("recv_ts", TS, nullable=False),
]

SCHEMAS: dict[str, pa.Schema] = {
    "book": pa.schema(
        [
            *_COMMON,
            pa.field("exch_ts", TS),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("type", pa.string(), nullable=False),  # snapshot | update
            pa.field("bids", LEVELS, nullable=False),
            pa.field("asks", LEVELS, nullable=False),
            pa.field("checksum", pa.int64(), nullable=False),
            pa.field("checksum_ok", pa.bool_(), nullable=False),
            pa.field("depth", pa.int32(), nullable=False),
            pa.field("price_precision", pa.int32(), nullable=False),
            pa.field("qty_precision", pa.int32(), nullable=False),
        ]
    ),
    "book_top": pa.schema(
        [
            *_COMMON,
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("book_seq", pa.int64(), nullable=False),
            pa.field("checksum", pa.int64(), nullable=False),
            pa.field("bids", LEVELS, nullable=False),
            pa.field("asks", LEVELS, nullable=False),
        ]
    ),
    "trade": pa.schema(
        [
            *_COMMON,
            pa.field("exch_ts", TS),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("type", pa.string(), nullable=False),
            pa.field("side", pa.string()),
            pa.field("price", pa.string(), nullable=False),
            pa.field("qty", pa.string(), nullable=False),
            pa.field("ord_type", pa.string()),
            pa.field("trade_id", pa.int64()),
        ]
    ),
    "ohlc": pa.schema(
        [
            *_COMMON,
            pa.field("exch_ts", TS),
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("type", pa.string(), nullable=False),
            pa.field("interval", pa.int32()),
            pa.field("interval_begin", TS),
            pa.field("open", pa.string()),
            pa.field("high", pa.string()),
            pa.field("low", pa.string()),
            pa.field("close", pa.string()),
            pa.field("vwap", pa.string()),
            pa.field("volume", pa.string()),
            pa.field("trades", pa.int64()),
        ]
    ),
    "gap": pa.schema(
        [
            *_COMMON,
            pa.field("symbol", pa.string(), nullable=False),
            pa.field("channel", pa.string(), nullable=False),
            pa.field("reason", pa.string(), nullable=False),
            pa.field("start_ts", TS, nullable=False),
            pa.field("end_ts", TS),  # null: still open when the writer stopped
            pa.field("last_book_seq", pa.int64()),  # last verified book row of the symbol before
            pa.field("resume_book_seq", pa.int64()),  # the snapshot that closed it
            pa.field("detail", pa.string()),
        ]
    ),
}
KINDS = tuple(SCHEMAS)


# ---- paths and names -------------------------------------------------------------------------


def day_of(recv_us: int) -> str:
    """The UTC day (``YYYY-MM-DD``) of a receive time in microseconds since the epoch."""
    return dt.datetime.fromtimestamp(recv_us // 1_000_000, dt.UTC).strftime("%Y-%m-%d")


def segment_name(first_recv_us: int, session: str, first_seq: int) -> str:
    """``20261122T110512123456Z-<session>-<seq>.parquet``: sorts by time, then seq."""
    stamp = dt.datetime.fromtimestamp(first_recv_us // 1_000_000, dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}{first_recv_us % 1_000_000:06d}Z-{session}-{first_seq:012d}{SUFFIX}"


@dataclass(frozen=True, order=True)
class Segment:
    """A published segment file, ordered by (day, session, first seq)."""

    day: str
    session: str
    first_seq: int
    kind: str = field(compare=False)
    path: Path | UPath = field(compare=False)


def list_segments(root: Root, kind: str, days: Iterable[str] | None = None) -> list[Segment]:
    """Published segments of ``kind`` (optionally only the given UTC days), in write order.

    Hidden temporary files (a writer killed mid-write) and anything not named like a segment
    are ignored.
    """
    if kind not in SCHEMAS:
        raise ValueError(f"unknown log kind {kind!r}; known: {list(KINDS)}")
    base = object_store.resolve(root) / kind
    wanted = None if days is None else set(days)
    found: list[Segment] = []
    for day in _day_folders(base):
        if wanted is not None and day not in wanted:
            continue
        for name in _names(base / day):
            match = _SEGMENT_NAME.match(name)
            if match is None:
                continue
            path = base / day / name
            found.append(Segment(day, match.group(2), int(match.group(3)), kind, path))
    # Sessions in order of their first segment, then each session's segments by seq.
    first_seen: dict[str, tuple[str, str]] = {}
    for seg in sorted(found, key=lambda s: s.path.name):
        first_seen.setdefault(seg.session, (seg.day, seg.path.name))
    return sorted(found, key=lambda s: (first_seen[s.session], s.first_seq))


def _day_folders(base: Path | UPath) -> list[str]:
    """The day folders under a kind's folder, sorted (on a store: the key prefixes)."""
    if isinstance(base, Path):
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    return [name for name in object_store.list_names(base) if _DAY_NAME.match(name)]


def _names(folder: Path | UPath) -> list[str]:
    if isinstance(folder, Path):
        return [p.name for p in folder.iterdir()]
    return object_store.list_names(folder)


def _source(path: Path | UPath) -> Path | pa.BufferReader:
    """What pyarrow opens: a local file by path, an object fetched whole in one GET."""
    if isinstance(path, Path):
        return path
    return pa.BufferReader(object_store.get_object(path))


class LogReadError(RuntimeError):
    """A segment cannot be read (corrupt or truncated); the message names the file."""

    def __init__(self, path: Path | UPath, reason: BaseException) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path


def _read_segment(seg: Segment, schema: pa.Schema, columns: list[str] | None) -> pa.Table:
    try:
        return pq.read_table(_source(seg.path), columns=columns, schema=schema)
    except (pa.ArrowException, OSError) as exc:
        raise LogReadError(seg.path, exc) from exc


def read_kind(
    root: Root,
    kind: str,
    days: Iterable[str] | None = None,
    columns: Sequence[str] | None = None,
) -> pa.Table:
    """Every published row of ``kind`` (optionally for some days, some columns), in log order.

    Raises `LogReadError`, naming the file, when a segment is corrupt or truncated.
    """
    schema = SCHEMAS[kind]
    segments = list_segments(root, kind, days)
    wanted = list(columns) if columns is not None else None
    tables = [_read_segment(seg, schema, wanted) for seg in segments]
    if not tables:
        if wanted is None:
            return schema.empty_table()
        return pa.schema([schema.field(c) for c in wanted]).empty_table()
    return pa.concat_tables(tables)


def iter_batches(
    root: Root,
    kind: str,
    days: Iterable[str] | None = None,
    columns: Sequence[str] | None = None,
) -> Iterator[tuple[Segment, pa.RecordBatch]]:
    """Rows of ``kind`` segment by segment, batch by batch: replay without loading a day.

    Raises `LogReadError`, naming the file, when a segment is corrupt or truncated.
    """
    for seg in list_segments(root, kind, days):
        try:
            parquet = pq.ParquetFile(_source(seg.path))
            for batch in parquet.iter_batches(columns=list(columns) if columns else None):
                yield seg, batch
        except (pa.ArrowException, OSError) as exc:
            raise LogReadError(seg.path, exc) from exc


def temporary_files(root: Root, recent_days: int | None = None) -> list[Path]:
    """Hidden temporary files under the log root (left by writers that were killed).

    ``recent_days`` limits the search to the root and the newest day folders of each kind,
    where a writer can have been: a months-long log has hundreds of thousands of segments.
    An object store has none (each segment is one PUT).
    """
    base = object_store.resolve(root)
    if not isinstance(base, Path) or not base.is_dir():
        return []
    pattern = f"{_TEMP_PREFIX}*{_TEMP_SUFFIX}"
    if recent_days is None:
        candidates = list(base.rglob(pattern))
    else:
        folders = [base]
        for kind in KINDS:
            if (base / kind).is_dir():
                days = sorted(p for p in (base / kind).iterdir() if p.is_dir())
                folders += days[-recent_days:] if recent_days else []
        candidates = [p for folder in folders for p in folder.glob(pattern)]
    return [p for p in candidates if p.is_file() and p.name.startswith(_TEMP_PREFIX)]


def sweep_temporary_files(
    root: Root, older_than_seconds: float = 3600, recent_days: int | None = None
) -> int:
    """Delete temporary files older than the threshold (a live writer's file is younger).

    Compared with the files' modification times, which the OS stamps from the wall clock.
    """
    cutoff = time.time() - older_than_seconds
    removed = 0
    for path in temporary_files(root, recent_days):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            pass
    return removed


# ---- row conversion --------------------------------------------------------------------------


def _levels_array(values: list[Any]) -> pa.Array:
    """Levels as received, each a ``(price, qty)`` pair (or a ``{"price", "qty"}`` dict).

    Numbers that arrived as JSON integers are made text first.
    """
    try:
        return pa.array(values, type=LEVELS)
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        fixed = [[_level_text(level) for level in levels or ()] for levels in values]
        return pa.array(fixed, type=LEVELS)


def _level_text(level: Any) -> tuple[str | None, str | None]:
    if isinstance(level, dict):
        level = (level.get("price"), level.get("qty"))
    price, qty = level
    return (None if price is None else str(price), None if qty is None else str(qty))


def _text_array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in values], type=pa.string())


def _ts_us_array(values: list[Any]) -> pa.Array:
    return pa.array(values, type=pa.int64()).cast(TS)


def _ts_text_array(values: list[Any] | pa.Array) -> pa.Array:
    """RFC 3339 text (``...Z``) to timestamps; text that does not parse becomes null."""
    texts = values if isinstance(values, pa.Array) else _text_array(values)
    try:
        return texts.cast(TS)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out = []
        for v in texts.to_pylist():
            try:
                out.append(None if v is None else dt.datetime.fromisoformat(v))
            except ValueError:
                out.append(None)
        return pa.array(out, type=TS)


def _converter(dtype: pa.DataType, name: str) -> Callable[[list[Any]], pa.Array]:
    if dtype == LEVELS:
        return _levels_array
    if dtype == TS:
        # Columns ending in _us in the row tuple are integers; the rest arrive as text.
        return _ts_us_array if name in _US_COLUMNS else _ts_text_array
    if dtype == pa.string():
        return _text_array
    return lambda values: pa.array(values, type=dtype)


_US_COLUMNS = {"recv_ts", "start_ts", "end_ts"}
_CONVERTERS = {
    kind: [(f.name, _converter(f.type, f.name)) for f in schema if f.name != "session"]
    for kind, schema in SCHEMAS.items()
}


def _row_type(schema: pa.Schema) -> pa.StructType:
    """A row tuple's shape as one Arrow struct: the schema without ``session``, timestamps as
    they arrive (``*_us`` integers, the rest RFC 3339 text), cast after conversion."""
    fields = []
    for f in schema:
        if f.name == "session":
            continue
        if f.type == TS:
            fields.append(pa.field(f.name, pa.int64() if f.name in _US_COLUMNS else pa.string()))
        else:
            fields.append(pa.field(f.name, f.type))
    return pa.struct(fields)


_ROW_TYPES = {kind: _row_type(schema) for kind, schema in SCHEMAS.items()}


def _chunk_arrays(kind: str, chunk: list[tuple]) -> list[pa.Array]:
    """A chunk's columns (``session`` aside). The rows go to Arrow whole, as one struct array:
    one C call with no Python per value. Rows Arrow will not take as they are (a number where
    text belongs, malformed levels) go column by column through the lenient converters."""
    converters = _CONVERTERS[kind]
    try:
        rows = pa.array(chunk, type=_ROW_TYPES[kind])
    except (pa.ArrowTypeError, pa.ArrowInvalid, TypeError, ValueError):
        columns = list(zip(*chunk, strict=True)) if chunk else [()] * len(converters)
        return [convert(list(col)) for (_, convert), col in zip(converters, columns, strict=True)]
    arrays = []
    for (_, convert), array in zip(converters, rows.flatten(), strict=True):
        if convert is _ts_us_array:
            array = array.cast(TS)
        elif convert is _ts_text_array:
            array = _ts_text_array(array)
        arrays.append(array)
    return arrays


def rows_to_table(
    kind: str, session: str, rows: list[tuple], pause: Callable[[], object] | None = None
) -> pa.Table:
    """Row tuples (every column but ``session``, in schema order) as a table of ``kind``.

    Converted in chunks; ``pause`` runs between them (the writer thread sleeps there, so a
    thread waiting for the GIL, the stream's event loop, gets it after one chunk at most
    instead of after the interpreter's 5 ms switch interval).
    """
    schema = SCHEMAS[kind]
    batches = []
    for start in range(0, len(rows), _CONVERT_CHUNK):
        if pause is not None and start:
            pause()
        chunk = rows[start : start + _CONVERT_CHUNK]
        arrays = [pa.repeat(pa.scalar(session, pa.string()), len(chunk))]
        arrays += _chunk_arrays(kind, chunk)
        batches.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
    if not batches:
        return schema.empty_table()
    return pa.Table.from_batches(batches, schema=schema)
