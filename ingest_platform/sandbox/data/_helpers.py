"""Small deterministic helpers every generator shares: keyed randomness and date coercion.

Random draws are keyed by (seed, stream, symbol, calendar year) through ``zlib.crc32``, never
Python's salted ``hash()``, and indexed by day of year. A given day's bar therefore depends
neither on the requested range nor on ``as_of``: moving ``as_of`` forward only appends bars.
"""

from __future__ import annotations

import datetime as dt
import zlib
from itertools import accumulate
from typing import overload

import numpy as np
import pandas as pd


def stable_hash(*parts: object) -> int:
    """CRC32 of the parts joined by ``|``: stable across processes, unlike ``hash()``."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


@overload
def as_date(value: dt.date | str | pd.Timestamp) -> dt.date: ...
@overload
def as_date(value: None) -> None: ...
@overload
def as_date(value: dt.date | str | pd.Timestamp | None) -> dt.date | None: ...


def as_date(value: dt.date | str | pd.Timestamp | None) -> dt.date | None:
    """A calendar date from a date, datetime, ISO string or Timestamp (None stays None)."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def daily_draws(
    seed: int, key: tuple[object, ...], dates: np.ndarray, columns: int, uniform: bool = False
) -> np.ndarray:
    """Random numbers per date, shape ``(len(dates), columns)``, that depend only on the date.

    One generator per calendar year (seeded from `seed`, `key` and the year) draws a 366-row
    block indexed by day of year, so the number for a day never depends on which other days are
    asked for.
    """
    out = np.empty((len(dates), columns))
    if len(dates) == 0:
        return out
    years = dates.astype("datetime64[Y]")
    day_of_year = (dates - years.astype("datetime64[D]")).astype(np.int64)
    year_numbers = years.astype(np.int64) + 1970
    stream = stable_hash(seed, *key)
    for year in np.unique(year_numbers):
        rng = np.random.default_rng([stream, int(year)])
        block = rng.random((366, columns)) if uniform else rng.standard_normal((366, columns))
        mask = year_numbers == year
        out[mask] = block[day_of_year[mask]]
    return out


def _series_rng(seed: int, *key: object) -> np.random.Generator:
    return np.random.default_rng(stable_hash(seed, *key))


def ou_path(
    rng: np.random.Generator, n: int, mean: float, sd: float, phi: float, start: float
) -> np.ndarray:
    """An AR(1) path reverting to `mean` (persistence `phi`, shock `sd`) from `start`."""
    shocks = rng.standard_normal(n) * sd
    return np.fromiter(
        accumulate(shocks, lambda x, e: mean + phi * (x - mean) + e, initial=start), float, n + 1
    )[1:]
