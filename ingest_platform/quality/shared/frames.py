"""The column contracts of the frames checks take, and the integer encodings they compute on.

Checks run on frames that may never have been validated (CI over the lake, a merged
partition), so each names the columns it needs and fails with the missing ones listed. Dates
become whole days since the epoch and keys become integer codes once, so every check after
that is numpy on int64 arrays: grouping by strings row by row would miss the 3-second budget.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import TypeAlias

import numpy as np
import pandas as pd

DayLike: TypeAlias = dt.date | str | pd.Timestamp | np.datetime64


def require_columns(frame: pd.DataFrame, columns: Iterable[str], what: str) -> None:
    """Raise ValueError naming the columns `frame` lacks (and those it has)."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} frame lacks column(s) {missing}; it has {list(frame.columns)}")


def day_numbers(values: pd.Series | pd.Index) -> np.ndarray:
    """Whole days since 1970-01-01 (int64) of dates or timestamps; a UTC day for aware ones.

    NaT becomes the smallest int64, which sorts first and matches no real day.
    """
    series = pd.Series(values) if isinstance(values, pd.Index) else values
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC").dt.tz_localize(None)
    elif not pd.api.types.is_datetime64_dtype(series.dtype):
        series = pd.to_datetime(series)
    days = series.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]")
    return days.astype(np.int64)


def as_day(value: DayLike) -> int:
    """One date (date, ISO string, Timestamp) as days since the epoch."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return int(np.datetime64(stamp.normalize().to_datetime64(), "D").astype(np.int64))


def day_to_date(day: int) -> dt.date:
    """Days since the epoch as a calendar date."""
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day))


def to_dates(days: np.ndarray | Sequence[int]) -> pd.DatetimeIndex:
    """Days since the epoch as midnight-naive datetimes (the lake's date columns)."""
    return pd.DatetimeIndex(
        np.asarray(days, dtype=np.int64).astype("datetime64[D]"), dtype="M8[ns]"
    )


def utc_timestamp(value: dt.datetime | pd.Timestamp, what: str) -> pd.Timestamp:
    """A timezone-aware instant in UTC; a naive one is refused, as its meaning is a guess."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")
    return stamp.tz_convert("UTC")


def encode(keys: pd.Series, vocabulary: pd.Index | None = None) -> tuple[np.ndarray, pd.Index]:
    """Integer codes of `keys` in `vocabulary` (sorted unique keys when None).

    Keys outside a given vocabulary are appended to it, so every row gets a code and callers
    can tell them apart by ``code >= len(original vocabulary)``.
    """
    if vocabulary is None:
        codes, uniques = pd.factorize(keys, sort=True)
        codes, vocabulary = codes.astype(np.int64), pd.Index(uniques)
    else:
        codes = vocabulary.get_indexer(keys).astype(np.int64)
    unknown = codes < 0
    if unknown.any():  # null keys, or keys outside the vocabulary (rare: factorize only those)
        extra_codes, extra = pd.factorize(keys[unknown], sort=True, use_na_sentinel=False)
        codes[unknown] = len(vocabulary) + extra_codes
        vocabulary = vocabulary.append(pd.Index(extra))
    return codes, vocabulary


def consecutive_runs(days: np.ndarray, order: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) of each run of `days` whose `order` positions step by one: the runs a
    summary names as ranges (missing days, missing minutes)."""
    if len(days) == 0:
        return []
    starts = np.concatenate(([0], np.flatnonzero(np.diff(order) != 1) + 1))
    ends = np.concatenate((starts[1:] - 1, [len(days) - 1]))
    return list(zip(days[starts].tolist(), days[ends].tolist(), strict=True))


def pair_keys(codes: np.ndarray, days: np.ndarray) -> np.ndarray:
    """One int64 per (code, day), comparable across frames: the pair's identity for joins and
    duplicate tests. Days must be real dates (drop NaT first)."""
    return codes.astype(np.int64) * _DAY_SPAN + (days.astype(np.int64) + _DAY_OFFSET)


_DAY_OFFSET = 2**31  # days since the epoch fit in 32 bits either side of 1970 ...
_DAY_SPAN = 2**32  # ... so a code and a day share one int64 without overlapping
