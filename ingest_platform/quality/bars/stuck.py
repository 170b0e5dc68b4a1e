"""Stuck prices: the same close for a run of sessions, with a sign that nothing traded.

A repeated close alone is common for a cheap equity quoted in cents (about one session in a
hundred), so for symbols that report volume a repeat counts only when the bar is flat
(open = high = low = close) or its volume is 0. FX reports no volume and is quoted to four or
five decimals, where an identical close two sessions running is already rare: there a repeat
alone counts. A run of at least ``warn_run_sessions`` sessions is a WARN, of at least
``error_run_sessions`` an ERROR.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ingest_platform.quality.bars.bar_series import BarSeries, bar_series
from ingest_platform.quality.bars.flags import anomaly_finding, flag_rows
from ingest_platform.quality.shared.finding import Finding
from ingest_platform.quality.shared.frames import to_dates
from ingest_platform.quality.shared.thresholds import StuckThresholds


def stuck_price_frame(series: BarSeries, t: StuckThresholds) -> pd.DataFrame:
    """One flagged row per stuck run, dated on the run's first session."""
    close = series.close
    repeated = close == series.previous(close)
    flat = (series.open == series.high) & (series.high == series.low) & (series.low == close)
    silent = series.volume == 0
    volume_less = ~series.has_volume[series.code]
    stale = repeated & (volume_less | flat | silent)
    # A symbol's first row is never stale (no previous close), so no run spans two symbols.
    before = np.concatenate(([False], stale[:-1]))
    after = np.concatenate((stale[1:], [False]))
    starts = np.flatnonzero(stale & ~before)
    ends = np.flatnonzero(stale & ~after)
    sessions = ends - starts + 2  # the repeats plus the session that set the close
    keep = sessions >= t.warn_run_sessions
    starts, ends, sessions = starts[keep], ends[keep], sessions[keep]
    error = sessions >= t.error_run_sessions
    rows = starts - 1
    return flag_rows(
        series,
        rows,
        "stuck_price",
        sessions.astype(float),
        np.where(error, t.error_run_sessions, t.warn_run_sessions),
        np.where(error, "ERROR", "WARN"),
        close=close[rows],
        last_date=to_dates(series.day[ends]),
        volume=series.volume[rows],
    )


def stuck_price_rows(
    bars: pd.DataFrame,
    *,
    thresholds: StuckThresholds = StuckThresholds(),  # noqa: B008 - frozen, immutable
) -> pd.DataFrame:
    """Every stuck run in `bars`, longest first (the shape of `flags`)."""
    return stuck_price_frame(bar_series(bars), thresholds)


def stuck_prices(
    bars: pd.DataFrame,
    *,
    thresholds: StuckThresholds = StuckThresholds(),  # noqa: B008
) -> Finding:
    """WARN on a run of at least ``warn_run_sessions`` identical closes that traded nothing,
    ERROR from ``error_run_sessions``."""
    series = bar_series(bars)
    return anomaly_finding(
        "stuck_prices", stuck_price_frame(series, thresholds), rows_checked=len(series),
        symbols_checked=len(series.names), what="stuck price run", kinds=["stuck_price"],
    )  # fmt: skip
