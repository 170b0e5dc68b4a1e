"""Bar anomalies, all detectors at once: one sort, one alignment of the corporate actions.

The detectors live in their own modules (`ticks`: false ticks and unadjusted splits; `stuck`;
`volume`; `integrity`: OHLC bounds and duplicate keys) and each has its own check function,
so the factory can declare one asset check per dimension. `bar_anomalies` runs them all over
one prepared series for the single combined check, and `bar_anomaly_rows` gives every flagged
row to the quality score.

Where both fire on one bar, the unadjusted split is kept and the false tick dropped: the
split is the more specific (and actionable) explanation of the same jump. Volume is then
judged as if the detected split had been recorded, so its multiplied share count is not
reported a second time as a run of volume outliers.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from ingest_platform.quality.bars.bar_series import (
    Actions,
    BarSeries,
    align_actions,
    bar_series,
    row_of,
    split_basis,
)
from ingest_platform.quality.bars.flags import anomaly_finding
from ingest_platform.quality.bars.integrity import duplicate_key_rows, ohlc_violation_frame
from ingest_platform.quality.bars.stuck import stuck_price_frame
from ingest_platform.quality.bars.ticks import false_tick_frame, unadjusted_split_frame
from ingest_platform.quality.bars.volume import volume_outlier_frame
from ingest_platform.quality.shared.finding import Finding, severity_order
from ingest_platform.quality.shared.frames import day_numbers
from ingest_platform.quality.shared.thresholds import AnomalyThresholds

#: Every kind `bar_anomaly_rows` can return, in the order figures list them.
KINDS = (
    "unadjusted_split",
    "false_tick",
    "stuck_price",
    "ohlc_bounds",
    "duplicate_key",
    "volume_outlier",
)


def _rows_and_size(
    bars: pd.DataFrame,
    corporate_actions: pd.DataFrame | None,
    t: AnomalyThresholds,
    never_split: Iterable[str] = (),
) -> tuple[pd.DataFrame, int, int]:
    series = bar_series(bars)
    actions = align_actions(series, corporate_actions)
    adjusted = split_basis(series, actions)
    cannot = np.isin(series.names, list(never_split)) if never_split else None
    splits = unadjusted_split_frame(series, actions, adjusted, t.splits, cannot)
    ticks = false_tick_frame(series, actions, adjusted, t.false_ticks)
    if not splits.empty and not ticks.empty:
        explained = ticks.set_index(["symbol", "date"]).index.isin(
            splits.set_index(["symbol", "date"]).index
        )
        ticks = ticks[~explained]
    if not splits.empty:
        # Judge volume as if the detected splits had been recorded: ten times the shares after
        # an unadjusted 10-for-1 split is the same fault, already reported once.
        adjusted = split_basis(series, _with_detected(series, actions, splits))
    parts = [
        splits,
        ticks,
        stuck_price_frame(series, t.stuck),
        ohlc_violation_frame(series),
        # The sort already counted repeated (symbol, date) keys: look closer only if any.
        duplicate_key_rows(bars, ("symbol", "date")) if series.repeated_rows else None,
        volume_outlier_frame(series, adjusted, t.volume),
    ]
    found = [p for p in parts if p is not None and not p.empty]
    # With nothing found, the empty split frame still has the common columns.
    rows = severity_order(pd.concat(found, ignore_index=True)) if found else splits
    return rows, len(series), len(series.names)


def _with_detected(series: BarSeries, actions: Actions, splits: pd.DataFrame) -> Actions:
    """`actions` plus the unadjusted splits found, at the ratio each matched."""
    codes = pd.Index(series.names).get_indexer(splits["symbol"])
    rows = row_of(series, codes, day_numbers(splits["date"]))
    split = actions.split.copy()
    split[rows] = splits["split_ratio"].to_numpy(dtype=float)
    return Actions(split, actions.dividend)


def bar_anomaly_rows(
    bars: pd.DataFrame,
    corporate_actions: pd.DataFrame | None = None,
    *,
    thresholds: AnomalyThresholds = AnomalyThresholds(),  # noqa: B008 - frozen, immutable
    never_split: Iterable[str] = (),
) -> pd.DataFrame:
    """Every flagged bar of every detector: ``symbol``, ``date``, ``kind``, ``value``,
    ``threshold``, ``status`` and each kind's context columns; ERROR rows first.

    Args:
        bars: ``symbol``, ``date``, ``open``, ``high``, ``low``, ``close``, ``volume``, on any
            basis per split: as traded or split-adjusted (see `bar_series.split_basis`).
        corporate_actions: ``symbol``, ``date``, ``action`` (split, dividend), ``value``
            (ratio, or cash per share); the recorded actions explain their jumps.
        never_split: symbols that cannot split (indices, FX pairs, commodities): their jumps
            are never read as unadjusted splits.
    """
    return _rows_and_size(bars, corporate_actions, thresholds, never_split)[0]


def bar_anomalies(
    bars: pd.DataFrame,
    corporate_actions: pd.DataFrame | None = None,
    *,
    thresholds: AnomalyThresholds = AnomalyThresholds(),  # noqa: B008
    never_split: Iterable[str] = (),
) -> Finding:
    """The worst status of every detector over `bars`; figures count each kind."""
    rows, checked, symbols = _rows_and_size(bars, corporate_actions, thresholds, never_split)
    return anomaly_finding(
        "bar_anomalies", rows, rows_checked=checked, symbols_checked=symbols, what="anomaly",
        kinds=KINDS,
    )  # fmt: skip
