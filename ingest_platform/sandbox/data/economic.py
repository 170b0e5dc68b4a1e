"""Economic series: FRED observations with their vintages, and World Bank annual indicators.

Both are generated on a fixed grid of dates (FRED 2015-2035, World Bank 1960-2040), so a value
never depends on ``as_of``: ``as_of`` only decides which observations and vintages exist yet.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from itertools import accumulate

import numpy as np
import pandas as pd
from pandas.tseries.holiday import USFederalHolidayCalendar

from ingest_platform.sandbox.data._helpers import _series_rng

#: Open-ended realtime period end, as FRED writes it.
FRED_FAR_FUTURE = dt.date(9999, 12, 31)


# ---- FRED ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FredSeriesSpec:
    """A FRED series' metadata and how the sandbox generates and releases it."""

    id: str
    title: str
    frequency: str
    frequency_short: str
    units: str
    units_short: str
    seasonal_adjustment: str
    seasonal_adjustment_short: str
    decimals: int
    popularity: int
    notes: str
    release_lag: tuple[int, int]  # (months, days) from the observation date to first release
    revisions: tuple[int, ...]  # days after the first release at which each revision appears
    revision_scale: float  # size of the first-release error, in units of the series


_SA, _NSA = ("Seasonally Adjusted", "SA"), ("Not Seasonally Adjusted", "NSA")
_SAAR = ("Seasonally Adjusted Annual Rate", "SAAR")

FRED_SERIES: dict[str, FredSeriesSpec] = {
    s.id: s
    for s in (
        FredSeriesSpec(
            "DGS10", "Market Yield on U.S. Treasury Securities at 10-Year Constant Maturity, "
            "Quoted on an Investment Basis", "Daily", "D", "Percent", "%", *_NSA, 2, 97,
            "Missing values ('.') fall on U.S. bond-market holidays.", (0, 1), (30,), 0.02,
        ),
        FredSeriesSpec(
            "DFF", "Federal Funds Effective Rate", "Daily, 7-Day", "D", "Percent", "%", *_NSA,
            2, 95, "Published for every calendar day.", (0, 1), (30,), 0.01,
        ),
        FredSeriesSpec(
            "ICSA", "Initial Claims", "Weekly, Ending Saturday", "W", "Number", "Number", *_SA,
            0, 90, "Weekly initial claims for unemployment insurance.", (0, 5), (7,), 4000.0,
        ),
        FredSeriesSpec(
            "WALCL", "Assets: Total Assets: Total Assets (Less Eliminations from Consolidation): "
            "Wednesday Level", "Weekly, As of Wednesday", "W", "Millions of U.S. Dollars",
            "Mil. of U.S. $", *_NSA, 0, 88, "Federal Reserve balance sheet.", (0, 1), (7,),
            2500.0,
        ),
        FredSeriesSpec(
            "CPIAUCSL", "Consumer Price Index for All Urban Consumers: All Items in U.S. City "
            "Average", "Monthly", "M", "Index 1982-1984=100", "Index 1982-1984=100", *_SA, 3,
            95, "CPI-U, all items.", (1, 12), (30,), 0.08,
        ),
        FredSeriesSpec(
            "UNRATE", "Unemployment Rate", "Monthly", "M", "Percent", "%", *_SA, 1, 96,
            "Civilian unemployment rate.", (1, 6), (30,), 0.1,
        ),
        FredSeriesSpec(
            "PAYEMS", "All Employees, Total Nonfarm", "Monthly", "M", "Thousands of Persons",
            "Thous. of Persons", *_SA, 0, 92, "Nonfarm payrolls.", (1, 6), (30,), 60.0,
        ),
        FredSeriesSpec(
            "INDPRO", "Industrial Production: Total Index", "Monthly", "M", "Index 2017=100",
            "Index 2017=100", *_SA, 4, 85, "Industrial production index.", (1, 16), (30,), 0.3,
        ),
        FredSeriesSpec(
            "FEDFUNDS", "Federal Funds Effective Rate", "Monthly", "M", "Percent", "%", *_NSA,
            2, 93, "Monthly average of DFF.", (1, 1), (30,), 0.01,
        ),
        FredSeriesSpec(
            "GDP", "Gross Domestic Product", "Quarterly", "Q", "Billions of Dollars",
            "Bil. of $", *_SAAR, 3, 98, "Advance, second and third estimates.", (3, 29),
            (30, 60), 60.0,
        ),
        FredSeriesSpec(
            "GDPC1", "Real Gross Domestic Product", "Quarterly", "Q",
            "Billions of Chained 2017 Dollars", "Bil. of Chn. 2017 $", *_SAAR, 3, 94,
            "Advance, second and third estimates.", (3, 29), (30, 60), 50.0,
        ),
    )
}  # fmt: skip

#: Observations are generated on a fixed grid so a value never depends on as_of.
_FRED_START, _FRED_END = dt.date(2015, 1, 1), dt.date(2035, 12, 31)


@dataclass(frozen=True)
class FredVintages:
    """Every observation of a series with its vintages: (first day valid, value or None)."""

    spec: FredSeriesSpec
    dates: tuple[dt.date, ...]
    vintages: tuple[tuple[tuple[dt.date, float | None], ...], ...]


@dataclass(frozen=True)
class FredRow:
    """One observation row as FRED returns it: value None is FRED's ``"."``."""

    date: dt.date
    realtime_start: dt.date
    realtime_end: dt.date
    value: float | None


def _ou(rng: np.random.Generator, n: int, mean: float, sd: float, phi: float, start: float):
    shocks = rng.standard_normal(n) * sd
    return np.fromiter(
        accumulate(shocks, lambda x, e: mean + phi * (x - mean) + e, initial=start), float, n + 1
    )[1:]


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


def _fred_grid(spec: FredSeriesSpec) -> pd.DatetimeIndex:
    freq = {"DGS10": "B", "DFF": "D", "ICSA": "W-SAT", "WALCL": "W-WED"}.get(spec.id)
    freq = freq or {"M": "MS", "Q": "QS"}[spec.frequency_short]
    return pd.date_range(_FRED_START, _FRED_END, freq=freq)


def _fred_final_values(seed: int, spec: FredSeriesSpec, grid: pd.DatetimeIndex) -> np.ndarray:
    """Final (fully revised) values on the grid; NaN where FRED prints ``"."``."""
    n = len(grid)
    rng = _series_rng(seed, "fred", spec.id)
    if spec.id == "DGS10":
        values = np.maximum(_ou(rng, n, 3.0, 0.05, 0.999, 2.1), 0.4)
        holidays = USFederalHolidayCalendar().holidays(_FRED_START, _FRED_END)
        values[grid.isin(holidays)] = np.nan
        return values
    if spec.id in ("DFF", "FEDFUNDS"):
        days = pd.date_range(_FRED_START, _FRED_END, freq="D")
        dff = pd.Series(_dff_path(_series_rng(seed, "fred", "DFF"), len(days)), index=days)
        if spec.id == "DFF":
            return dff.to_numpy()
        return dff.resample("MS").mean().reindex(grid).to_numpy()
    if spec.id == "ICSA":
        return np.round(220_000 * np.exp(_ou(rng, n, 0.0, 0.04, 0.97, 0.0)), -3)
    if spec.id == "WALCL":
        return np.round(4_500_000 * np.exp(np.cumsum(0.0008 + 0.006 * rng.standard_normal(n))))
    if spec.id == "CPIAUCSL":
        return 234.0 * np.exp(np.cumsum(0.0022 + 0.002 * rng.standard_normal(n)))
    if spec.id == "UNRATE":
        return np.maximum(_ou(rng, n, 4.6, 0.15, 0.97, 5.7), 3.2)
    if spec.id == "PAYEMS":
        return np.round(140_600 + np.cumsum(150 + 120 * rng.standard_normal(n)))
    if spec.id == "INDPRO":
        return _ou(rng, n, 101.0, 0.5, 0.95, 101.5)
    growth = {"GDP": (0.012, 0.006, 17_900.0), "GDPC1": (0.006, 0.005, 18_200.0)}[spec.id]
    return growth[2] * np.exp(np.cumsum(growth[0] + growth[1] * rng.standard_normal(n)))


def build_fred_vintages(seed: int, spec: FredSeriesSpec) -> FredVintages:
    """Each observation's first release and revisions; the first release misses the final value."""
    grid = _fred_grid(spec)
    final = _fred_final_values(seed, spec, grid)
    rng = _series_rng(seed, "fred-revisions", spec.id)
    errors = rng.standard_normal((len(grid), len(spec.revisions))) * spec.revision_scale
    unit = 10.0**-spec.decimals
    months, days = spec.release_lag
    first_releases = grid + pd.DateOffset(months=months, days=days)
    dates, vintages = [], []
    for i, (stamp, released) in enumerate(zip(grid, first_releases, strict=True)):
        day, first = stamp.date(), released.date()
        starts = [first] + [first + dt.timedelta(days=d) for d in spec.revisions]
        value = final[i]
        values: list[float | None] = []
        if np.isnan(value):
            values = [None] * len(starts)
        else:
            final_value = round(float(value), spec.decimals)
            for k in range(len(spec.revisions)):
                # Earlier vintages miss by more; a miss is never zero after rounding.
                miss = round(float(errors[i, k]) * (len(spec.revisions) - k), spec.decimals)
                values.append(round(final_value + (miss or unit), spec.decimals))
            values.append(final_value)
        dates.append(day)
        vintages.append(tuple(zip(starts, values, strict=True)))
    return FredVintages(spec, tuple(dates), tuple(vintages))


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


# ---- World Bank ------------------------------------------------------------------------------

#: ISO3 -> (ISO2, name, GDP in current US$ for 2023 used to scale the simulated level).
WORLDBANK_COUNTRIES: dict[str, tuple[str, str, float]] = {
    "CAN": ("CA", "Canada", 2.14e12),
    "CHN": ("CN", "China", 1.78e13),
    "DEU": ("DE", "Germany", 4.53e12),
    "FRA": ("FR", "France", 3.03e12),
    "GBR": ("GB", "United Kingdom", 3.34e12),
    "ITA": ("IT", "Italy", 2.25e12),
    "JPN": ("JP", "Japan", 4.21e12),
    "USA": ("US", "United States", 2.77e13),
}
#: Indicator id -> (name, decimal, first year with data).
WORLDBANK_INDICATORS: dict[str, tuple[str, int, int]] = {
    "NY.GDP.MKTP.CD": ("GDP (current US$)", 0, 1960),
    "NY.GDP.MKTP.KD.ZG": ("GDP growth (annual %)", 1, 1961),
    "FP.CPI.TOTL.ZG": ("Inflation, consumer prices (annual %)", 1, 1960),
    "SL.UEM.TOTL.ZS": (
        "Unemployment, total (% of total labor force) (modeled ILO estimate)",
        1,
        1991,
    ),
}
_WB_FIRST_YEAR = 1960
_WB_GRID_END = 2040


def build_worldbank_values(seed: int, indicator: str, iso3: str) -> np.ndarray:
    """Annual values for 1960..2040 on a fixed grid (NaN before the indicator's first year)."""
    _, _, first = WORLDBANK_INDICATORS[indicator]
    years = np.arange(_WB_FIRST_YEAR, _WB_GRID_END + 1)
    rng = _series_rng(seed, "worldbank", indicator, iso3)
    n = len(years)
    if indicator == "NY.GDP.MKTP.CD":
        growth = (0.09 if iso3 == "CHN" else 0.05) + 0.05 * rng.standard_normal(n)
        level = np.exp(np.cumsum(growth))
        values = np.round(level / level[2023 - _WB_FIRST_YEAR] * WORLDBANK_COUNTRIES[iso3][2])
    elif indicator == "NY.GDP.MKTP.KD.ZG":
        values = (6.5 if iso3 == "CHN" else 1.9) + 2.0 * rng.standard_normal(n)
    elif indicator == "FP.CPI.TOTL.ZG":
        values = np.maximum((0.6 if iso3 == "JPN" else 2.6) + 1.6 * rng.standard_normal(n), -1.5)
    else:
        mean = {"USA": 5.6, "GBR": 5.8, "DEU": 6.5, "JPN": 3.4, "CHN": 4.6, "FRA": 9.0}
        values = np.maximum(_ou(rng, n, mean.get(iso3, 7.5), 0.5, 0.8, mean.get(iso3, 7.5)), 2.0)
    values = np.where(years >= first, values, np.nan)
    return values if indicator == "NY.GDP.MKTP.CD" else np.round(values, 9)
