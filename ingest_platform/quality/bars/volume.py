"""Volume outliers: a session's volume against the median of the symbol's previous sessions.

Qlib flags any day-over-day volume step above 3x; daily volume routinely doubles or halves,
so that fires on most symbols most months. Here the baseline is the median of the previous
``window`` sessions (robust to the odd busy day), volume is on the split-adjusted basis (an
as-traded split multiplies the share count, which is no anomaly), and symbols that report no
volume (FX: always 0) are skipped. WARN above ``warn_ratio`` times the median, ERROR above
``error_ratio`` (a 100x unit error, say). A symbol's first ``window`` sessions have no
baseline and are not judged.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ingest_platform.quality.bars.bar_series import (
    Adjusted,
    BarSeries,
    align_actions,
    bar_series,
    split_basis,
)
from ingest_platform.quality.bars.flags import anomaly_finding, flag_rows
from ingest_platform.quality.shared.finding import Finding
from ingest_platform.quality.shared.thresholds import VolumeThresholds


def volume_outlier_frame(
    series: BarSeries, adjusted: Adjusted, t: VolumeThresholds
) -> pd.DataFrame:
    """Flagged volume outliers of a prepared series."""
    volume = adjusted.volume
    position = np.arange(len(series)) - series.start_of_symbol()
    judged = (position >= t.window) & series.has_volume[series.code]
    # The median of a window is at least its minimum, so only a volume above warn_ratio times
    # the previous window's minimum can be an outlier: the exact rolling median (a skip list,
    # the costliest step here) is taken on those few rows only.
    lowest = pd.Series(volume).rolling(t.window, min_periods=t.window).min().to_numpy()
    floor = np.concatenate(([np.nan], lowest[:-1]))
    with np.errstate(invalid="ignore"):
        candidates = np.flatnonzero(judged & (volume > t.warn_ratio * floor))
    window = volume[candidates[:, None] - np.arange(t.window, 0, -1)[None, :]]
    baseline = np.median(window, axis=1) if len(candidates) else np.zeros(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(baseline > 0, volume[candidates] / baseline, np.nan)
        flagged = ratio > t.warn_ratio
    rows, ratio, baseline = candidates[flagged], ratio[flagged], baseline[flagged]
    error = ratio > t.error_ratio
    return flag_rows(
        series,
        rows,
        "volume_outlier",
        ratio,
        np.where(error, t.error_ratio, t.warn_ratio),
        np.where(error, "ERROR", "WARN"),
        volume=volume[rows],
        median_volume=baseline,
    )


def volume_outlier_rows(
    bars: pd.DataFrame,
    corporate_actions: pd.DataFrame | None = None,
    *,
    thresholds: VolumeThresholds = VolumeThresholds(),  # noqa: B008 - frozen, immutable
) -> pd.DataFrame:
    """Every volume outlier in `bars`, largest first (the shape of `flags`)."""
    series = bar_series(bars)
    adjusted = split_basis(series, align_actions(series, corporate_actions))
    return volume_outlier_frame(series, adjusted, thresholds)


def volume_outliers(
    bars: pd.DataFrame,
    corporate_actions: pd.DataFrame | None = None,
    *,
    thresholds: VolumeThresholds = VolumeThresholds(),  # noqa: B008
) -> Finding:
    """WARN when volume exceeds ``warn_ratio`` times its rolling median, ERROR above
    ``error_ratio``."""
    series = bar_series(bars)
    adjusted = split_basis(series, align_actions(series, corporate_actions))
    return anomaly_finding(
        "volume_outliers", volume_outlier_frame(series, adjusted, thresholds),
        rows_checked=len(series), symbols_checked=len(series.names), what="volume outlier",
        kinds=["volume_outlier"],
    )  # fmt: skip
