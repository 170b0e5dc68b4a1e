"""FRED observations with their vintages, on release schedules, from the seed.

Values are generated on a fixed grid (2015-2035), so a value never depends on ``as_of``:
``as_of`` only decides which observations and vintages exist yet. Related series are built
from each other, as the real ones are: T10Y2Y is DGS10 minus DGS2 (each rounded as published),
FEDFUNDS the monthly mean of DFF, the 3-month bill follows the funds rate, the mortgage rate
the 10-year yield. Treasury yields are missing ('.') on U.S. bond-market holidays.

Vintages land on release dates (see `fred_catalogue`): an observation's first release is the
first date of its release's schedule at least `lag_days` after its period ends, each revision
the first release date at least `revisions[k]` days after that. Every revision changes the
value, and the first release misses the final value by more than later ones.
"""

from __future__ import annotations

import datetime as dt
from bisect import bisect_right
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from ingest_platform.sandbox.data._helpers import _series_rng, ou_path
from ingest_platform.sandbox.data.fred_catalogue import FRED_SERIES, FredRelease, FredSeriesSpec

#: Open-ended realtime period end, as FRED writes it.
FRED_FAR_FUTURE = dt.date(9999, 12, 31)
#: Observations are generated on a fixed grid so a value never depends on as_of.
_FRED_START, _FRED_END = dt.date(2015, 1, 1), dt.date(2035, 12, 31)
#: Release schedules run a little before the grid and long after it (GDP's third estimate).
_SCHEDULE_START, _SCHEDULE_END = dt.date(2014, 12, 1), dt.date(2037, 12, 31)


@dataclass(frozen=True)
class FredVintages:
    """Every observation of a series with its vintages: (first day valid, value or None)."""

    spec: FredSeriesSpec
    dates: tuple[dt.date, ...]
    vintages: tuple[tuple[tuple[dt.date, float | None], ...], ...]

    @cached_property
    def _all_vintage_dates(self) -> list[dt.date]:
        return sorted({start for versions in self.vintages for start, _ in versions})

    def vintage_dates(self, as_of: dt.date) -> list[dt.date]:
        """The days on which any value of the series appeared or changed, up to `as_of`."""
        every = self._all_vintage_dates
        return every[: bisect_right(every, as_of)]


@dataclass(frozen=True)
class FredRow:
    """One observation row as FRED returns it: value None is FRED's ``"."``."""

    date: dt.date
    realtime_start: dt.date
    realtime_end: dt.date
    value: float | None


# ---- release schedules -----------------------------------------------------------------------


@lru_cache(maxsize=1)
def _holidays() -> pd.DatetimeIndex:
    return USFederalHolidayCalendar().holidays(_SCHEDULE_START, _SCHEDULE_END)


@lru_cache(maxsize=1)
def _business_days() -> pd.DatetimeIndex:
    days = pd.bdate_range(_SCHEDULE_START, _SCHEDULE_END)
    return days[~days.isin(_holidays())]


def _next_business_days(days: pd.DatetimeIndex) -> pd.DatetimeIndex:
    business = _business_days()
    return business[np.searchsorted(business, days)]


@lru_cache(maxsize=64)
def release_schedule(release: FredRelease) -> np.ndarray:
    """Every scheduled date of `release` (datetime64[D], ascending, unique)."""
    kind, _, arg = release.schedule.partition(":")
    if kind == "business_days":
        days = _business_days()
    elif kind == "weekly":
        weekdays = pd.date_range(_SCHEDULE_START, _SCHEDULE_END, freq="D")
        days = _next_business_days(weekdays[weekdays.dayofweek == int(arg)])
    elif kind == "monthly":
        months = pd.date_range(_SCHEDULE_START, _SCHEDULE_END, freq="MS")
        days = _next_business_days(months + pd.Timedelta(days=int(arg) - 1))
    elif kind == "first_friday":
        months = pd.date_range(_SCHEDULE_START, _SCHEDULE_END, freq="MS")
        days = _next_business_days(
            pd.DatetimeIndex([m + pd.Timedelta(days=(4 - m.dayofweek) % 7) for m in months])
        )
    else:
        raise ValueError(f"release {release.id}: unknown schedule {release.schedule!r}")
    return np.unique(days.to_numpy().astype("datetime64[D]"))


# ---- final values ----------------------------------------------------------------------------


def _fred_grid(spec: FredSeriesSpec) -> pd.DatetimeIndex:
    return _grid(spec.grid)


@lru_cache(maxsize=16)
def _grid(freq: str) -> pd.DatetimeIndex:
    return pd.date_range(_FRED_START, _FRED_END, freq=freq)  # "B" takes ~0.1 s: built once


def _period_ends(spec: FredSeriesSpec, grid: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The last day each observation covers (a month, a quarter, or the day itself)."""
    if spec.grid == "MS":
        return grid + pd.offsets.MonthEnd(0)
    if spec.grid == "QS":
        return grid + pd.offsets.QuarterEnd(0)
    return grid


def _dff_path(rng: np.random.Generator, n: int) -> np.ndarray:
    """A policy-rate-like step path: moves of 25 bp, about eight meetings a year, plus noise."""
    level, out = 0.12, np.empty(n)
    moves = rng.random(n)
    direction = rng.standard_normal(n)
    for i in range(n):
        if moves[i] < 8 / 365 / 2:
            level = min(max(level + (0.25 if direction[i] > -0.2 else -0.25), 0.08), 5.33)
        out[i] = level
    return out + np.round(rng.standard_normal(n) * 0.01, 2)


def _on_bond_days(values: np.ndarray, grid: pd.DatetimeIndex) -> np.ndarray:
    """`values` with NaN (FRED's '.') on U.S. bond-market holidays."""
    out = np.array(values, dtype=float)
    out[grid.isin(_holidays())] = np.nan
    return out


#: Level series: (start level, monthly/quarterly log drift, log volatility), compounded.
_GROWTH = {
    "CPIAUCSL": (234.0, 0.0022, 0.002),
    "CPILFESL": (240.0, 0.0022, 0.0012),
    "PCEPI": (98.0, 0.0018, 0.0015),
    "PCEPILFE": (98.5, 0.0017, 0.0009),
    "CES0500000003": (24.7, 0.0028, 0.002),
    "RSAFS": (440_000.0, 0.004, 0.008),
    "M2SL": (11_700.0, 0.005, 0.004),
    "CSUSHPINSA": (170.0, 0.0045, 0.004),
    "GDP": (17_900.0, 0.012, 0.006),
    "GDPC1": (18_200.0, 0.006, 0.005),
}
#: Mean-reverting series: (mean, shock, persistence, start, floor, round to).
_REVERTING = {
    "UNRATE": (4.6, 0.15, 0.97, 5.7, 3.2, None),
    "INDPRO": (101.0, 0.5, 0.95, 101.5, -np.inf, None),
    "CIVPART": (62.8, 0.12, 0.97, 62.7, 60.0, None),
    "JTSJOL": (7_500.0, 250.0, 0.95, 5_500.0, 3_000.0, 0),
    "UMCSENT": (80.0, 3.0, 0.9, 95.0, 50.0, None),
    "HOUST": (1_350.0, 70.0, 0.85, 1_100.0, 800.0, 0),
    "PERMIT": (1_400.0, 50.0, 0.9, 1_150.0, 800.0, 0),
}


@lru_cache(maxsize=64)
def _final_series(seed: int, series_id: str) -> pd.Series:
    """Final (fully revised) values of a series on its grid; NaN where FRED prints '.'."""
    spec = FRED_SERIES[series_id]
    grid = _fred_grid(spec)
    n = len(grid)
    rng = _series_rng(seed, "fred", series_id)

    def on_grid(values: np.ndarray) -> pd.Series:
        return pd.Series(values, index=grid)

    def bond(other: str) -> np.ndarray:
        return _final_series(seed, other).reindex(grid).to_numpy()

    if series_id in _GROWTH:
        level, drift, vol = _GROWTH[series_id]
        return on_grid(level * np.exp(np.cumsum(drift + vol * rng.standard_normal(n))))
    if series_id in _REVERTING:
        mean, sd, phi, start, floor, digits = _REVERTING[series_id]
        values = np.maximum(ou_path(rng, n, mean, sd, phi, start), floor)
        return on_grid(np.round(values, digits) if digits is not None else values)
    if series_id == "DFF":
        return on_grid(_dff_path(rng, n))
    if series_id == "FEDFUNDS":
        return _final_series(seed, "DFF").resample("MS").mean().reindex(grid)
    if series_id == "DGS10":
        return on_grid(_on_bond_days(np.maximum(ou_path(rng, n, 3.0, 0.05, 0.999, 2.1), 0.4), grid))
    if series_id == "DGS3MO":
        dff = _final_series(seed, "DFF").reindex(grid).to_numpy()
        return on_grid(
            _on_bond_days(np.maximum(dff + ou_path(rng, n, 0.05, 0.02, 0.98, 0.0), 0.01), grid)
        )
    if series_id == "DGS2":
        blend = 0.5 * bond("DGS3MO") + 0.5 * bond("DGS10")
        return on_grid(np.maximum(blend + ou_path(rng, n, 0.0, 0.04, 0.99, 0.0), 0.1))
    if series_id == "DGS30":
        return on_grid(bond("DGS10") + ou_path(rng, n, 0.45, 0.02, 0.995, 0.5))
    if series_id in ("T10Y2Y", "T10Y3M"):
        short = "DGS2" if series_id == "T10Y2Y" else "DGS3MO"
        return on_grid(np.round(bond("DGS10"), 2) - np.round(bond(short), 2))
    if series_id == "T10YIE":
        return on_grid(_on_bond_days(ou_path(rng, n, 2.1, 0.03, 0.995, 1.8), grid))
    if series_id == "BAMLH0A0HYM2":
        return on_grid(_on_bond_days(np.maximum(ou_path(rng, n, 4.0, 0.06, 0.995, 4.5), 2.5), grid))
    if series_id == "DTWEXBGS":
        return on_grid(_on_bond_days(110 * np.exp(ou_path(rng, n, 0.0, 0.0035, 0.9995, 0.0)), grid))
    if series_id == "MORTGAGE30US":
        ten_year = _final_series(seed, "DGS10").ffill().reindex(grid, method="ffill").to_numpy()
        return on_grid(ten_year + 1.8 + ou_path(rng, n, 0.0, 0.05, 0.95, 0.0))
    if series_id == "ICSA":
        return on_grid(np.round(220_000 * np.exp(ou_path(rng, n, 0.0, 0.04, 0.97, 0.0)), -3))
    if series_id == "WALCL":
        return on_grid(
            np.round(4_500_000 * np.exp(np.cumsum(0.0008 + 0.006 * rng.standard_normal(n))))
        )
    if series_id == "PAYEMS":
        return on_grid(np.round(140_600 + np.cumsum(150 + 120 * rng.standard_normal(n))))
    raise KeyError(f"no value model for FRED series {series_id!r}")


# ---- vintages --------------------------------------------------------------------------------


def build_fred_vintages(seed: int, spec: FredSeriesSpec) -> FredVintages:
    """Each observation's first release and revisions, on its release's schedule."""
    grid = _fred_grid(spec)
    final = _final_series(seed, spec.id).reindex(grid).to_numpy()
    rng = _series_rng(seed, "fred-revisions", spec.id)
    errors = rng.standard_normal((len(grid), len(spec.revisions))) * spec.revision_scale
    unit = 10.0**-spec.decimals
    schedule = release_schedule(spec.release)

    def on_or_after(days: np.ndarray) -> np.ndarray:
        return schedule[np.searchsorted(schedule, days)]

    ready = _period_ends(spec, grid).to_numpy().astype("datetime64[D]") + spec.lag_days
    first = on_or_after(ready)
    later, previous = [], first
    for offset in spec.revisions:  # each revision strictly after the vintage before it
        previous = on_or_after(np.maximum(first + offset, previous + 1))
        later.append(previous)
    starts_per_observation = zip(first.tolist(), *(r.tolist() for r in later), strict=True)
    count = len(spec.revisions)
    vintages = []
    for i, starts in enumerate(starts_per_observation):
        values: list[float | None]
        if np.isnan(final[i]):
            values = [None] * len(starts)
        else:
            final_value = round(float(final[i]), spec.decimals)
            values = []
            for k in range(count):
                # Earlier vintages miss by more; a miss is never zero after rounding.
                miss = round(float(errors[i, k]) * (count - k), spec.decimals)
                values.append(round(final_value + (miss or unit), spec.decimals))
            values.append(final_value)
        vintages.append(tuple(zip(starts, values, strict=True)))
    return FredVintages(spec, tuple(grid.date.tolist()), tuple(vintages))


def fred_rows(
    vintages: FredVintages,
    as_of: dt.date,
    realtime_start: dt.date,
    realtime_end: dt.date,
    observation_start: dt.date | None = None,
    observation_end: dt.date | None = None,
) -> list[FredRow]:
    """FRED's observation rows: one per (date, vintage) overlapping the realtime period.

    Vintages published after `as_of` do not exist yet; the current vintage runs to 9999-12-31.
    Each row's realtime period is the vintage's validity clipped to the requested period.
    """
    rows: list[FredRow] = []
    lo = observation_start or dt.date.min
    hi = observation_end or dt.date.max
    for day, versions in zip(vintages.dates, vintages.vintages, strict=True):
        if day < lo or day > hi:
            continue
        known = [(start, value) for start, value in versions if start <= as_of]
        for k, (start, value) in enumerate(known):
            end = known[k + 1][0] - dt.timedelta(days=1) if k + 1 < len(known) else FRED_FAR_FUTURE
            if start <= realtime_end and end >= realtime_start:
                rows.append(FredRow(day, max(start, realtime_start), min(end, realtime_end), value))
    return rows
