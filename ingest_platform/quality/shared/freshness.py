"""Freshness: how the staleness checks grade a lag, and the 0..1 number the score uses.

``freshness`` is 1 up to the WARN limit, falls linearly to `FRESHNESS_AT_ERROR` at the ERROR
limit, then decays as ``FRESHNESS_AT_ERROR * span / excess`` beyond it (``excess`` = lag -
WARN limit, ``span`` = ERROR limit - WARN limit), and is 0 when nothing was ever observed. It
is unit-free, so bars (sessions), indicators and the stream (hours) share it, and a lag
exactly at the ERROR limit (a WARN) scores exactly the score's ERROR threshold (which passes).
"""

from __future__ import annotations

import datetime as dt
from typing import TypeAlias

import numpy as np
import pandas as pd

from ingest_platform.quality.shared.finding import severity_order, status_where
from ingest_platform.quality.shared.frames import utc_timestamp

#: Freshness at exactly the ERROR limit: the quality score's default ERROR threshold, so a
#: symbol that is stale beyond the ERROR limit fails the score on freshness alone.
FRESHNESS_AT_ERROR = 0.6
HOUR = pd.Timedelta(hours=1)

Instant: TypeAlias = dt.datetime | pd.Timestamp


def freshness(lag: np.ndarray, warn: float, error: float) -> np.ndarray:
    """1 up to `warn`, linear to `FRESHNESS_AT_ERROR` at `error`, then decaying; 0 for NaN."""
    lag = np.asarray(lag, dtype=float)
    span = error - warn
    excess = np.maximum(lag - warn, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        beyond = FRESHNESS_AT_ERROR * span / excess
    # Written from the ERROR end, so a lag exactly at the ERROR limit is exactly
    # FRESHNESS_AT_ERROR (1 - 0.4 would be 0.5999..., failing a score that should pass).
    within = FRESHNESS_AT_ERROR + (1.0 - FRESHNESS_AT_ERROR) * (1.0 - excess / span)
    out = np.where(excess == 0, 1.0, np.where(excess <= span, within, beyond))
    return np.where(np.isnan(lag), 0.0, out)


def lag_labels(lag: np.ndarray, warn: float, error: float) -> np.ndarray:
    """Status per lag; never observed (NaN) is an ERROR."""
    return np.where(np.isnan(lag), "ERROR", status_where(np.nan_to_num(lag), warn, error))


def worst_first(table: pd.DataFrame, measure: str, key: str) -> pd.DataFrame:
    """Worst status first, then the largest lag, never-observed (NaN) above any lag."""
    keyed = table.assign(_lag=table[measure].fillna(np.inf))
    return severity_order(keyed, "_lag", key, ascending=[False, True]).drop(columns="_lag")


def lag_figures(
    table: pd.DataFrame, lag: np.ndarray, warn: float, error: float, unit: str
) -> dict[str, float | int]:
    """The figures every staleness finding plots: counts per status, the limits, max and
    median lag (in `unit`)."""
    seen = lag[~np.isnan(lag)]
    figures: dict[str, float | int] = {
        "keys": len(table),
        "stale_warn": int((table["status"] == "WARN").sum()),
        "stale_error": int((table["status"] == "ERROR").sum()),
        "never_observed": int(np.isnan(lag).sum()),
        f"warn_after_{unit}": warn,
        f"error_after_{unit}": error,
    }
    if len(seen):
        figures[f"max_lag_{unit}"] = float(seen.max())
        figures[f"median_lag_{unit}"] = float(np.median(seen))
    return figures


def now_text(now: Instant) -> str:
    """`now` as the summaries print it (UTC, to the minute)."""
    return utc_timestamp(now, "now").strftime("%Y-%m-%d %H:%M UTC")
