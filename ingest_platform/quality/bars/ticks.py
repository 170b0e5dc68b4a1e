"""Return anomalies: false ticks (robust outliers) and splits no one adjusted for.

Qlib's ``check_data_health.py`` flags any close-to-close step above 50%, so every real split
in as-traded data (NVDA's 10-for-1 on 2024-06-10 reads as -90%) is an alarm, while a 30%
false tick on a quiet stock is not. Here returns are measured on the split-adjusted basis
(`bar_series.split_basis`, from the recorded splits) and against each symbol's own spread:

- a **false tick** is a log return whose robust z-score (median and MAD of the symbol's log
  returns, once the symbol has ``min_returns`` of them) is above ``warn_z``; the return a
  recorded dividend explains (the ex-date drop of the cash amount) is taken out first. It is
  an ERROR above ``error_z`` or when it is a spike the next session reverts;
- an **unadjusted split** is a jump whose ratio matches a common split ratio within the
  tolerance, that persists (is not reverted the next session, nor itself the reversal of the
  previous one), on a date with no recorded split for the symbol.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ingest_platform.quality.bars.bar_series import (
    Actions,
    Adjusted,
    BarSeries,
    align_actions,
    bar_series,
    split_basis,
)
from ingest_platform.quality.bars.flags import anomaly_finding, flag_rows
from ingest_platform.quality.shared.finding import Finding
from ingest_platform.quality.shared.thresholds import FalseTickThresholds, SplitThresholds

#: MAD is scaled by this to estimate a normal distribution's standard deviation.
MAD_TO_SIGMA = 1.4826
#: The smallest spread a z-score divides by (a log return of 0.01%): a series that barely
#: moves (or is stuck) must not turn every tick into an infinite z.
MIN_SCALE = 1e-4
#: A jump counts as reverted when the next session gives back more than half of it.
REVERT_SHARE = 0.5


def _prepared(
    bars: pd.DataFrame, corporate_actions: pd.DataFrame | None
) -> tuple[BarSeries, Actions, Adjusted]:
    series = bar_series(bars)
    actions = align_actions(series, corporate_actions)
    return series, actions, split_basis(series, actions)


def _reverted(series: BarSeries, r: np.ndarray) -> np.ndarray:
    """The next session gives back more than `REVERT_SHARE` of this row's move."""
    following = series.following(r)
    with np.errstate(invalid="ignore"):
        return np.isfinite(following) & (np.abs(r + following) < REVERT_SHARE * np.abs(r))


def false_tick_frame(
    series: BarSeries, actions: Actions, adjusted: Adjusted, t: FalseTickThresholds
) -> pd.DataFrame:
    """Flagged false ticks of a prepared series (see the module docstring)."""
    r = adjusted.log_return
    previous = series.previous(series.close)
    with np.errstate(divide="ignore", invalid="ignore"):
        paid = (actions.dividend > 0) & (actions.dividend < previous)
        dividend_step = np.where(paid, np.log1p(-actions.dividend / np.where(paid, previous, 1)), 0)
    center = series.per_symbol(r, "median")
    spread = series.per_symbol(np.abs(r - center), "median")
    scale = np.maximum(MAD_TO_SIGMA * np.nan_to_num(spread), MIN_SCALE)
    z = (r - center) / scale
    z_after_dividend = (r - dividend_step - center) / scale
    enough = series.per_symbol(np.isfinite(r).astype(float), "sum") >= t.min_returns
    with np.errstate(invalid="ignore"):
        z = np.where(np.abs(z_after_dividend) < np.abs(z), z_after_dividend, z)
        outlier = enough & (np.abs(z) > t.warn_z)
    following = series.following(np.where(outlier, z, 0.0))
    spike = (
        outlier & (np.nan_to_num(following) * z < 0) & (np.abs(np.nan_to_num(following)) > t.warn_z)
    )
    # The session after a spike only undoes it: the false tick is the spike's own bar.
    after_spike = series.previous(spike.astype(float)) == 1.0
    rows = np.flatnonzero(outlier & ~after_spike)
    error = spike[rows] | (np.abs(z[rows]) > t.error_z)
    return flag_rows(
        series,
        rows,
        "false_tick",
        np.abs(z[rows]),
        np.where(error & ~spike[rows], t.error_z, t.warn_z),
        np.where(error, "ERROR", "WARN"),
        previous_close=previous[rows],
        close=series.close[rows],
        log_return=r[rows],
        spike=spike[rows],
    )


def unadjusted_split_frame(
    series: BarSeries,
    actions: Actions,
    adjusted: Adjusted,
    t: SplitThresholds,
    never_split: np.ndarray | None = None,
) -> pd.DataFrame:
    """Flagged unadjusted splits of a prepared series (see the module docstring).

    ``never_split``: a bool per symbol code, True for instruments that cannot split (indices,
    FX pairs, commodities): a 33% fall of ^VIX is a market move, never a 3-for-2 split."""
    r = adjusted.log_return
    ratios = np.asarray(t.ratios, dtype=float)
    # No ratio can match a jump smaller than this, so only a few rows are examined.
    nearest = np.minimum(
        np.abs(np.log(ratios * (1 - t.tolerance))), np.abs(np.log(ratios * (1 + t.tolerance)))
    )
    with np.errstate(invalid="ignore"):
        candidate = np.isfinite(r) & ~actions.has_split & (np.abs(r) >= nearest.min())
    if never_split is not None:
        candidate &= ~never_split[series.code]
    rows = np.flatnonzero(candidate)
    previous = series.previous(adjusted.close)
    jump = previous[rows] / adjusted.close[rows]  # a ratio of prices: exact, unlike exp(-r)
    deviation = np.abs(jump[:, None] - ratios[None, :]) / ratios[None, :]
    best = deviation.argmin(axis=1) if len(rows) else np.zeros(0, dtype=np.int64)
    best_deviation = deviation[np.arange(len(rows)), best] if len(rows) else np.zeros(0)
    reverted = _reverted(series, r)
    undoes = series.previous(reverted.astype(float)) == 1.0  # the second half of a spike
    keep = (best_deviation <= t.tolerance) & ~reverted[rows] & ~undoes[rows]
    rows, best = rows[keep], best[keep]
    return flag_rows(
        series,
        rows,
        "unadjusted_split",
        jump[keep],
        t.tolerance,
        "ERROR",
        previous_close=previous[rows],
        close=adjusted.close[rows],
        split_ratio=ratios[best],
        deviation=best_deviation[keep],
    )


def false_tick_rows(
    bars: pd.DataFrame,
    corporate_actions: pd.DataFrame | None = None,
    *,
    thresholds: FalseTickThresholds = FalseTickThresholds(),  # noqa: B008 - frozen
) -> pd.DataFrame:
    """Every false tick in `bars`, worst first (the shape of `flags`)."""
    return false_tick_frame(*_prepared(bars, corporate_actions), thresholds)


def false_ticks(
    bars: pd.DataFrame,
    corporate_actions: pd.DataFrame | None = None,
    *,
    thresholds: FalseTickThresholds = FalseTickThresholds(),  # noqa: B008
) -> Finding:
    """WARN on a log return above ``warn_z`` robust sigmas that no recorded action explains;
    ERROR above ``error_z`` or on a spike that reverts the next session."""
    series, actions, adjusted = _prepared(bars, corporate_actions)
    rows = false_tick_frame(series, actions, adjusted, thresholds)
    return anomaly_finding(
        "false_ticks", rows, rows_checked=len(series), symbols_checked=len(series.names),
        what="false tick", kinds=["false_tick"],
    )  # fmt: skip


def unadjusted_split_rows(
    bars: pd.DataFrame,
    corporate_actions: pd.DataFrame | None = None,
    *,
    thresholds: SplitThresholds = SplitThresholds(),  # noqa: B008
) -> pd.DataFrame:
    """Every unadjusted split in `bars`, worst first (the shape of `flags`)."""
    return unadjusted_split_frame(*_prepared(bars, corporate_actions), thresholds)


def unadjusted_splits(
    bars: pd.DataFrame,
    corporate_actions: pd.DataFrame | None = None,
    *,
    thresholds: SplitThresholds = SplitThresholds(),  # noqa: B008
) -> Finding:
    """ERROR on a lasting jump matching a split ratio on a date with no recorded split."""
    series, actions, adjusted = _prepared(bars, corporate_actions)
    rows = unadjusted_split_frame(series, actions, adjusted, thresholds)
    return anomaly_finding(
        "unadjusted_splits", rows, rows_checked=len(series), symbols_checked=len(series.names),
        what="unadjusted split", kinds=["unadjusted_split"],
    )  # fmt: skip
