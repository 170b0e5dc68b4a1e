"""Content hashes of dataset rows, the same wherever the rows are held.

The same partition lives in several copies: the Parquet file, the rows Dagster recorded when it
was written, the warehouse table. To say that two copies agree, each is reduced to a hash of
its *values*, not of its bytes: a Parquet file and a SQL table never share bytes, and neither do
two pandas frames with the same numbers in different dtypes. So every frame goes through the
dataset's Arrow schema first, each column is put in one canonical form (instants as UTC
microseconds, dates as days, floats as float64 with one NaN, strings as UTF-8), rows are
hashed, and the sorted row hashes are hashed again: the result ignores row order and storage,
and changes when any value, row or column changes.

Microseconds: SQL drivers hold no finer instants, so a nanosecond in the lake is not a
disagreement.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow
import pyarrow.compute as pc

_NULL_INT = np.iinfo(np.int64).min
_NULL_TEXT = "\x00null"
#: Printed for an empty partition, so "no rows" is a hash like any other.
EMPTY = hashlib.sha256(b"").hexdigest()[:32]


def _canonical(array: pyarrow.ChunkedArray | pyarrow.Array) -> pd.Series:
    """One Arrow column as a pandas Series in canonical form (see the module docstring)."""
    kind = array.type
    if pyarrow.types.is_timestamp(kind):
        utc = array.cast(pyarrow.timestamp(kind.unit, tz="UTC")) if kind.tz else array
        micros = pc.cast(
            pc.cast(utc, pyarrow.timestamp("us", tz="UTC" if kind.tz else None), safe=False),
            pyarrow.int64(),
        )
        return pd.Series(micros.fill_null(_NULL_INT).to_numpy(zero_copy_only=False))
    if pyarrow.types.is_date(kind):
        days = pc.cast(pc.cast(array.cast(pyarrow.date32()), pyarrow.int32()), pyarrow.int64())
        return pd.Series(days.fill_null(_NULL_INT).to_numpy(zero_copy_only=False))
    if pyarrow.types.is_integer(kind):
        values = pc.cast(array, pyarrow.int64())
        return pd.Series(values.fill_null(_NULL_INT).to_numpy(zero_copy_only=False))
    if pyarrow.types.is_floating(kind):
        values = pc.cast(array, pyarrow.float64()).to_numpy(zero_copy_only=False)
        values = np.where(np.isnan(values), np.nan, values + 0.0)  # -0.0 -> 0.0, one NaN
        return pd.Series(values)
    if pyarrow.types.is_boolean(kind):
        values = pc.cast(array, pyarrow.int8()).fill_null(2)
        return pd.Series(values.to_numpy(zero_copy_only=False).astype(np.int64))
    text = pc.cast(array, pyarrow.string()).fill_null(_NULL_TEXT)
    # As a categorical: pandas hashes it exactly as the strings themselves (it hashes the
    # distinct values and takes them by code, as it does for an object column), without a
    # Python string per row (a symbol repeated over a million bars is a few distinct values).
    return pd.Series(pc.dictionary_encode(text).to_pandas())


def row_hashes(table: pyarrow.Table) -> np.ndarray:
    """A 64-bit hash per row of `table`, from its canonical values and column names."""
    columns = {name: _canonical(table.column(name)) for name in table.column_names}
    frame = pd.DataFrame(columns)
    if frame.empty:
        return np.zeros(0, dtype=np.uint64)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


def _digest(names: list[str], hashes: np.ndarray) -> str:
    if len(hashes) == 0:
        return EMPTY
    digest = hashlib.sha256("\x1f".join(names).encode())
    digest.update(np.sort(hashes).tobytes())
    return digest.hexdigest()[:32]


def as_table(frame: pd.DataFrame, schema: pyarrow.Schema) -> pyarrow.Table:
    """`frame` in the dataset's Arrow schema (what the lake writes), columns in schema order."""
    return pyarrow.Table.from_pandas(frame[schema.names], schema=schema, preserve_index=False)


def content_hash(frame: pd.DataFrame, schema: pyarrow.Schema) -> str:
    """The hash of `frame`'s rows as `schema` holds them (order-independent)."""
    return _digest(schema.names, row_hashes(as_table(frame, schema)))


def partition_hashes(
    frame: pd.DataFrame, keys: pd.Series | np.ndarray, schema: pyarrow.Schema
) -> dict[str, tuple[int, str]]:
    """(rows, content hash) per partition key of `frame`'s rows (`keys`: one key per row).

    One conversion and one hashing pass over all rows, then a digest per partition: hashing
    783 partitions one call at a time would cost more than the rows themselves.
    """
    if len(frame) == 0:
        return {}
    hashes = row_hashes(as_table(frame, schema))
    labels = np.asarray(keys)
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    bounds = np.flatnonzero(sorted_labels[1:] != sorted_labels[:-1]) + 1
    out: dict[str, tuple[int, str]] = {}
    for part in np.split(order, bounds):
        key = str(labels[part[0]])
        out[key] = (len(part), _digest(schema.names, hashes[part]))
    return out


def hashes_of(frames: Mapping[str, pd.DataFrame], schema: pyarrow.Schema) -> dict[str, str]:
    """The content hash of each of several frames (empty ones included), in one pass."""
    sizes = {k: len(f) for k, f in frames.items()}
    filled = [f for f in frames.values() if len(f)]
    if not filled:
        return dict.fromkeys(sizes, EMPTY)
    stacked = pd.concat([f[schema.names] for f in filled], ignore_index=True)
    return table_hashes(as_table(stacked, schema), sizes)


def table_hashes(table: pyarrow.Table, sizes: Mapping[str, int]) -> dict[str, str]:
    """The content hash of each consecutive slice of `table` (in the dataset's Arrow schema):
    `sizes` gives each slice's key and rows, in table order (0 rows: `EMPTY`).

    For a caller that already holds the rows as one table (`Dataset.write` converts them once
    to write them): hashing them again from pandas frames would hold a second copy."""
    if sum(sizes.values()) != table.num_rows:
        raise ValueError(f"slices of {sum(sizes.values())} rows for a table of {table.num_rows}")
    hashes = row_hashes(table) if table.num_rows else np.zeros(0, dtype=np.uint64)
    out: dict[str, str] = {}
    offset = 0
    for key, rows in sizes.items():
        out[key] = _digest(table.schema.names, hashes[offset : offset + rows])
        offset += rows
    return out


def digest(states: Mapping[str, str]) -> str:
    """One hash for a whole dataset from its partitions' hashes (key order), for a document
    such as metadata.json that describes the dataset, not each partition."""
    text = "\n".join(f"{key}:{states[key]}" for key in sorted(states))
    return hashlib.sha256(text.encode()).hexdigest()[:32]
