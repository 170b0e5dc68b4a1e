"""How findings word things in one line: numbers, dates, date ranges and short lists.

Every summary names the worst few symbols or variables with their dates, then counts the rest,
so a description stays one readable line however many rows failed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: How many symbols or variables a summary names before "and N more".
NAMED_IN_SUMMARY = 3


def number(value: float) -> str:
    """Four significant digits, no exponent for everyday magnitudes (0.8234, 12.5, 1.2e+04)."""
    return f"{value:.4g}"


def percent(value: float) -> str:
    """A ratio as a percentage with two decimals (0.0125 -> 1.25%)."""
    return f"{value * 100:.2f}%"


def day(value: object) -> str:
    """A date as YYYY-MM-DD (datetime64, Timestamp, date or days since the epoch)."""
    if isinstance(value, int | np.integer):
        value = np.datetime64(int(value), "D")
    return str(np.datetime64(value, "D"))  # type: ignore[call-overload]


def ranges(runs: Sequence[tuple[int, int]], limit: int = 3) -> str:
    """(first, last) day runs worded as ``a..b`` (or ``a`` for one day), with ``…`` beyond."""
    shown = [day(a) if a == b else f"{day(a)}..{day(b)}" for a, b in runs[:limit]]
    more = " …" if len(runs) > limit else ""
    return ", ".join(shown) + more


def listing(items: Sequence[str], total: int | None = None, limit: int = NAMED_IN_SUMMARY) -> str:
    """The first `limit` items, then "and N more" when `total` (default len) exceeds them."""
    count = len(items) if total is None else total
    shown = ", ".join(items[:limit])
    rest = count - min(len(items), limit)
    return f"{shown} and {rest} more" if rest > 0 else shown


def plural(count: int, noun: str) -> str:
    """``1 symbol``, ``3 symbols``, ``2 anomalies``."""
    return f"1 {noun}" if count == 1 else f"{count:,} {nouns(noun)}"


def nouns(noun: str) -> str:
    """The plural of a simple English noun (``anomaly`` -> ``anomalies``)."""
    if noun.endswith("y") and noun[-2:-1] not in ("a", "e", "i", "o", "u"):
        return noun[:-1] + "ies"
    return noun + "s"
