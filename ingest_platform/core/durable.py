"""Durable Parquet files: each appears whole or not at all, and outlives a power cut.

The lake's partitions and the Kraken stream log's segments are both written this way: to a
hidden temporary file in the target directory, flushed and fsynced, then renamed over the final
name (``os.replace`` is atomic on POSIX), then the directory is fsynced so the rename itself is
durable. A writer killed at any point leaves the previous file or the new one, plus at worst a
hidden ``.…tmp`` file that readers ignore and writers sweep.

Every data page carries a CRC32 checksum (``write_page_checksum``), and readers verify it, so a
flipped bit on disk is an error naming the file, never a silently different number.

Small documents beside the data (the lake's ``metadata.json`` and ``README.md``) take the same
path through `write_bytes_atomically`. On object storage there is no rename: `parquet_bytes`
serializes a file whole for the single PUT of `core.object_store`.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import pyarrow
import pyarrow.parquet as pq

TEMP_PREFIX = "."
TEMP_SUFFIX = ".tmp"


def is_temporary(name: str) -> bool:
    """Whether a file name is one of our in-flight temporary files."""
    return name.startswith(TEMP_PREFIX) and name.endswith(TEMP_SUFFIX)


def write_parquet_atomically(
    table: pyarrow.Table,
    final: str | os.PathLike[str],
    compression: str = "snappy",
    sync_directory: bool = True,
) -> int:
    """Write `table` to `final` atomically and durably; return the file's size in bytes.

    `sync_directory=False` lets a caller writing many files into one directory sync it once
    at the end (each rename is still atomic on its own).
    """

    def write(handle: BinaryIO) -> None:
        pq.write_table(table, handle, compression=compression, write_page_checksum=True)

    return _replace_atomically(final, write, sync_directory)


def write_bytes_atomically(
    data: bytes, final: str | os.PathLike[str], sync_directory: bool = True
) -> int:
    """Replace `final` with `data` atomically and durably; return the size in bytes."""
    return _replace_atomically(final, lambda handle: handle.write(data), sync_directory)


def parquet_bytes(table: pyarrow.Table, compression: str = "snappy") -> bytes:
    """`table` as one whole Parquet file in memory, page checksums included (for a PUT)."""
    sink = pyarrow.BufferOutputStream()
    pq.write_table(table, sink, compression=compression, write_page_checksum=True)
    return sink.getvalue().to_pybytes()


def _replace_atomically(
    final: str | os.PathLike[str], write: Callable[[BinaryIO], object], sync_directory: bool
) -> int:
    """Temporary file beside `final`, written by `write`, fsynced, renamed over `final`."""
    final = Path(final)
    directory = os.fspath(final.parent)
    os.makedirs(directory, exist_ok=True)
    temp = os.path.join(directory, f"{TEMP_PREFIX}{final.name}.{uuid.uuid4().hex}{TEMP_SUFFIX}")
    try:
        with open(temp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, final)
    finally:
        # Runs on cancellation too (DagsterExecutionInterruptedError is a BaseException).
        if os.path.exists(temp):
            os.unlink(temp)
    if sync_directory:
        fsync_directory(directory)
    return os.path.getsize(final)


def fsync_directory(directory: str | os.PathLike[str]) -> None:
    """Make renames in `directory` durable: without this a power cut can forget them."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
