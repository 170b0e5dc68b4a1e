"""Putting as-traded bars on the split-adjusted basis, from a corporate-actions frame.

Sources disagree on basis: Yahoo's and Polygon's closes are split-adjusted, Alpha Vantage's
TIME_SERIES_DAILY is as traded. Comparing them without adjusting first would report every
split as a 90% drift, so checks that compare across sources adjust through here.

A bar is divided by the product of the ratios of its symbol's splits with an ex-date *after*
the bar's date (volume multiplied): a 10-for-1 split makes a 1,200 close before it read 120.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ingest_platform.quality.shared.frames import day_numbers, require_columns

_ACTION_COLUMNS = ["symbol", "date", "action", "value"]


def split_events(corporate_actions: pd.DataFrame) -> pd.DataFrame:
    """Splits only: ``symbol``, ``day`` (days since the epoch), ``ratio`` (product when a
    symbol has several on one day), ordered by symbol and day."""
    require_columns(corporate_actions, _ACTION_COLUMNS, "corporate actions")
    splits = corporate_actions[corporate_actions["action"] == "split"]
    events = pd.DataFrame(
        {
            "symbol": splits["symbol"].to_numpy(dtype=object),
            "day": day_numbers(splits["date"]),
            "ratio": splits["value"].to_numpy(dtype=float),
        }
    )
    events = events[np.isfinite(events["ratio"]) & (events["ratio"] > 0)]
    return events.groupby(["symbol", "day"], as_index=False, sort=True)["ratio"].prod()


def split_factors(
    symbols: pd.Series, days: np.ndarray, corporate_actions: pd.DataFrame
) -> np.ndarray:
    """Per row: the product of its symbol's split ratios with an ex-date after `days`.

    One vectorised pass per split event over that symbol's rows only, so a universe with a
    dozen splits costs a dozen small masks, not a pass per row.
    """
    factor = np.ones(len(days))
    events = split_events(corporate_actions)
    if events.empty or len(days) == 0:
        return factor
    vocabulary = pd.Index(events["symbol"].unique())
    codes = vocabulary.get_indexer(symbols)
    rows = np.flatnonzero(codes >= 0)
    order = rows[np.argsort(codes[rows], kind="stable")]
    bounds = np.searchsorted(codes[order], np.arange(len(vocabulary) + 1))
    event_codes = vocabulary.get_indexer(events["symbol"])
    for code, day, ratio in zip(event_codes, events["day"], events["ratio"], strict=True):
        own = order[bounds[code] : bounds[code + 1]]
        factor[own[days[own] < day]] *= ratio
    return factor


def to_split_adjusted(
    bars: pd.DataFrame,
    corporate_actions: pd.DataFrame,
    *,
    prices: tuple[str, ...] = ("open", "high", "low", "close"),
    volume: str | None = "volume",
) -> pd.DataFrame:
    """A copy of as-traded `bars` (``symbol``, ``date``, prices) on the split-adjusted basis."""
    require_columns(bars, ["symbol", "date", *prices], "bars")
    factor = split_factors(bars["symbol"], day_numbers(bars["date"]), corporate_actions)
    adjusted = bars.copy()
    for column in prices:
        adjusted[column] = bars[column].to_numpy(dtype=float) / factor
    if volume and volume in bars:
        shares = np.round(bars[volume].to_numpy(dtype=float) * factor)
        integral = pd.api.types.is_integer_dtype(bars[volume].dtype) and np.isfinite(shares).all()
        adjusted[volume] = shares.astype(bars[volume].dtype) if integral else shares
    return adjusted
