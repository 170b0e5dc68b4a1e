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

from ingest_platform.quality.bar_series import (
    Adjusted,
    BarSeries,
    align_actions,
    bar_series,
    split_basis,
)
from ingest_platform.quality.finding import Finding
from ingest_platform.quality.flags import anomaly_finding, flag_rows
from ingest_platform.quality.thresholds import VolumeThresholds


def volume_outlier_frame(
    series: BarSeries, adjusted: Adjusted, t: VolumeThresholds
) -> pd.DataFrame:
    """Flagged volume outliers of a prepared series."""
    volume = adjusted.volume
    rolling = pd.Series(volume).rolling(t.window, min_periods=t.window).median().to_numpy()
    baseline = np.concatenate(([np.nan], rolling[:-1]))
    position = np.arange(len(series)) - series.start_of_symbol()
    judged = (position >= t.window) & series.has_volume[series.code] & (baseline > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(judged, volume / np.where(judged, baseline, 1.0), np.nan)
        rows = np.flatnonzero(ratio > t.warn_ratio)
    error = ratio[rows] > t.error_ratio
    return flag_rows(
        series,
        rows,
        "volume_outlier",
        ratio[rows],
        np.where(error, t.error_ratio, t.warn_ratio),
        np.where(error, "ERROR", "WARN"),
        volume=volume[rows],
        median_volume=baseline[rows],
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
