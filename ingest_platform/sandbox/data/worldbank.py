"""World Bank annual indicators on a fixed 1960-2040 grid, so a value never depends on ``as_of``
(``as_of`` only decides which years are listed yet)."""

from __future__ import annotations

import numpy as np

from ingest_platform.sandbox.data._helpers import _series_rng, ou_path

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
        values = np.maximum(
            ou_path(rng, n, mean.get(iso3, 7.5), 0.5, 0.8, mean.get(iso3, 7.5)), 2.0
        )
    values = np.where(years >= first, values, np.nan)
    return values if indicator == "NY.GDP.MKTP.CD" else np.round(values, 9)
