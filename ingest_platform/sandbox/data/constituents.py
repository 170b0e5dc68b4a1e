"""S&P 500 constituents as Wikipedia's table lists them, and the changes applied to them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ingest_platform.sandbox.data._helpers import as_date, stable_hash


@dataclass(frozen=True)
class ConstituentChange:
    """An S&P 500 change effective on `effective`: a symbol added, removed, or both."""

    effective: dt.date
    added: str | None = None
    removed: str | None = None
    added_name: str | None = None
    added_sector: str | None = None
    reason: str = "Market capitalization change."

    @classmethod
    def coerce(cls, value: ConstituentChange | Sequence[Any]) -> ConstituentChange:
        """From the dataclass or a tuple ``(effective, added, removed[, name, sector, reason])``."""
        if isinstance(value, ConstituentChange):
            return value
        effective, added, removed, *rest = value
        if not added and not removed:
            raise ValueError(f"constituent change on {effective} adds and removes nothing")
        return cls(as_date(effective), added or None, removed or None, *rest)


_SUB_INDUSTRIES = {
    "Communication Services": ("Interactive Media & Services", "Movies & Entertainment"),
    "Consumer Discretionary": ("Broadline Retail", "Restaurants", "Automobile Manufacturers"),
    "Consumer Staples": ("Packaged Foods & Meats", "Soft Drinks & Non-alcoholic Beverages"),
    "Energy": ("Integrated Oil & Gas", "Oil & Gas Exploration & Production"),
    "Financials": ("Diversified Banks", "Asset Management & Custody Banks", "Insurance Brokers"),
    "Health Care": ("Pharmaceuticals", "Health Care Equipment", "Biotechnology"),
    "Industrials": ("Aerospace & Defense", "Industrial Machinery & Supplies & Components"),
    "Information Technology": ("Semiconductors", "Systems Software", "Application Software"),
    "Materials": ("Specialty Chemicals", "Construction Materials"),
    "Real Estate": ("Retail REITs", "Data Center REITs", "Multi-Family Residential REITs"),
    "Utilities": ("Electric Utilities", "Multi-Utilities"),
}
_HEADQUARTERS = (
    "New York City, New York", "San Francisco, California", "Chicago, Illinois",
    "Houston, Texas", "Atlanta, Georgia", "Boston, Massachusetts", "Seattle, Washington",
    "Dallas, Texas", "Santa Clara, California", "Charlotte, North Carolina",
    "Minneapolis, Minnesota", "Denver, Colorado", "Cincinnati, Ohio", "Miami, Florida",
)  # fmt: skip


@dataclass(frozen=True)
class Constituent:
    """One row of Wikipedia's constituents table.

    Symbol, security and sector come from the shipped snapshot; sub-industry, headquarters,
    date added, CIK and founding year are not in it, so they are plausible values derived
    deterministically from the symbol (the CIK is not the real one).
    """

    symbol: str
    security: str
    sector: str
    sub_industry: str
    headquarters: str
    date_added: dt.date
    cik: str
    founded: int


def _constituent(symbol: str, name: str, sector: str, added: dt.date | None) -> Constituent:
    h = stable_hash("constituent", symbol)
    subs = _SUB_INDUSTRIES.get(sector, ("Diversified",))
    date_added = added or dt.date(1957, 3, 4) + dt.timedelta(days=h % 24_000)
    founded = min(1850 + (h >> 8) % 160, date_added.year)
    return Constituent(
        symbol=symbol,
        security=name,
        sector=sector,
        sub_industry=subs[(h >> 4) % len(subs)],
        headquarters=_HEADQUARTERS[(h >> 12) % len(_HEADQUARTERS)],
        date_added=date_added,
        cik=f"{(h >> 3) % 2_000_000:010d}",
        founded=founded,
    )
