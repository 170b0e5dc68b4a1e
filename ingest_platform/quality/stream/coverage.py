"""Minute coverage of the Kraken stream: the share of each UTC day's 1440 minutes that have a
verified, gap-free minute bar, per pair and day.

`bars.coverage.stream_coverage` counts *days* with any row, the grain of bars and indicators; a
stream that ran for five minutes of a day covers that day there. Minute bars need the finer
grain this module computes, on a boolean grid of keys x days x minutes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ingest_platform.quality.shared import wording
from ingest_platform.quality.shared.finding import (
    MAX_OFFENDING_ROWS,
    Finding,
    status_of,
    status_where,
)
from ingest_platform.quality.shared.frames import (
    DayLike,
    as_day,
    consecutive_runs,
    require_columns,
    to_dates,
)
from ingest_platform.quality.shared.thresholds import CoverageThresholds

MINUTES_PER_DAY = 1440


def stream_minute_coverage_by_day(
    stream: pd.DataFrame,
    keys: Sequence[str],
    days: Sequence[DayLike],
    *,
    key: str = "symbol",
    time_column: str = "minute",
    gap_column: str | None = "gap",
) -> tuple[pd.DataFrame, np.ndarray]:
    """Per (key, UTC day): ``ratio`` of the day's 1440 minutes present, ``present``,
    ``expected``, ``missing``, ``gap_minutes``; lowest ratio first. Also the present-minute
    grid (keys x days x 1440, rows in the table's order) the caller words runs from.

    `bars.coverage.stream_coverage` counts *days* with any row; a stream that ran for five
    minutes of a day covers that day there. Minute bars need the finer grain: every minute of
    every day in `days` is expected of each of `keys` (and of any other key that has rows: a
    pair the stream was told to add is judged like the configured ones). A minute is present
    when it has a row whose `gap_column` is false: a minute a recorded gap overlaps was rebuilt
    from a book that had just lost messages, so the stream itself says it is incomplete.
    """
    require_columns(stream, [key, time_column, *([gap_column] if gap_column else [])], "stream")
    day_numbers_wanted = np.unique(np.array([as_day(d) for d in days], dtype=np.int64))
    stamps = pd.to_datetime(stream[time_column], utc=True)
    minutes = (stamps.to_numpy(dtype="datetime64[ns]").astype("datetime64[m]")).astype(np.int64)
    row_day = np.floor_divide(minutes, MINUTES_PER_DAY)
    ok = np.isin(row_day, day_numbers_wanted)
    if gap_column:
        ok &= ~stream[gap_column].fillna(False).astype(bool).to_numpy()
    gap_rows = np.isin(row_day, day_numbers_wanted) & ~ok
    names = pd.Index(sorted(set(keys) | set(stream[key][np.isin(row_day, day_numbers_wanted)])))
    codes = names.get_indexer(stream[key])
    column = np.searchsorted(day_numbers_wanted, row_day)
    grid = np.zeros((len(names), len(day_numbers_wanted), MINUTES_PER_DAY), dtype=bool)
    grid[codes[ok], column[ok], minutes[ok] % MINUTES_PER_DAY] = True
    gaps = np.zeros_like(grid)
    gaps[codes[gap_rows], column[gap_rows], minutes[gap_rows] % MINUTES_PER_DAY] = True
    gaps &= ~grid  # a minute with a clean row too (another session) is present
    present = grid.sum(axis=2).ravel()
    table = pd.DataFrame(
        {
            key: np.repeat(names.to_numpy(dtype=object), len(day_numbers_wanted)),
            "date": to_dates(np.tile(day_numbers_wanted, len(names))),
            "ratio": present / MINUTES_PER_DAY,
            "present": present.astype(np.int64),
            "expected": np.full(len(present), MINUTES_PER_DAY, dtype=np.int64),
            "missing": (MINUTES_PER_DAY - present).astype(np.int64),
            "gap_minutes": gaps.sum(axis=2).ravel().astype(np.int64),
        }
    )
    order = table.sort_values(["ratio", key, "date"], kind="stable").index.to_numpy()
    flat = grid.reshape(-1, MINUTES_PER_DAY)[order]
    return table.loc[order].reset_index(drop=True), flat


def _minute_runs(present: np.ndarray, limit: int = 3) -> str:
    """The missing minutes of one day worded as ``HH:MM..HH:MM`` runs, with ``…`` beyond."""
    missing = np.flatnonzero(~present)
    if not len(missing):
        return ""
    runs = consecutive_runs(missing, missing)

    def hhmm(m: int) -> str:
        return f"{m // 60:02d}:{m % 60:02d}"

    shown = [hhmm(a) if a == b else f"{hhmm(a)}..{hhmm(b)}" for a, b in runs[:limit]]
    return ", ".join(shown) + (" …" if len(runs) > limit else "")


def stream_minute_coverage(
    stream: pd.DataFrame,
    keys: Sequence[str],
    days: Sequence[DayLike],
    *,
    key: str = "symbol",
    time_column: str = "minute",
    gap_column: str | None = "gap",
    thresholds: CoverageThresholds = CoverageThresholds(),  # noqa: B008
) -> Finding:
    """WARN when a key's share of a UTC day's minutes is below ``warn_below``, ERROR below
    ``error_below``, per (key, day); arguments as in `stream_minute_coverage_by_day`.

    Judged per day, not over the window: one dead day in a month is a 97% month, and would
    pass a monthly ratio while the day it names is useless.
    """
    t = thresholds
    table, grid = stream_minute_coverage_by_day(
        stream, keys, days, key=key, time_column=time_column, gap_column=gap_column
    )
    ratio = table["ratio"].to_numpy(dtype=float)
    labels = status_where(ratio, t.warn_below, t.error_below, below=True)
    failing = np.flatnonzero(labels != "PASS")[:MAX_OFFENDING_ROWS]
    worst = table.iloc[failing]
    offending = pd.DataFrame(
        {
            key: worst[key],
            "date": worst["date"],
            "coverage": worst["ratio"],
            "threshold": np.where(worst["ratio"] < t.error_below, t.error_below, t.warn_below),
            "missing_minutes": [_minute_runs(grid[i]) for i in failing],
            "missing": worst["missing"],
            "gap_minutes": worst["gap_minutes"],
            "present": worst["present"],
            "expected": worst["expected"],
            "status": labels[failing],
        }
    ).reset_index(drop=True)
    expected_total = int(table["expected"].sum())
    present_total = int(table["present"].sum())
    figures: dict[str, float | int] = {
        "keys": int(table[key].nunique()),
        "days": int(table["date"].nunique()),
        "expected": expected_total,
        "present": present_total,
        "missing": expected_total - present_total,
        "gap_minutes": int(table["gap_minutes"].sum()),
        "key_days_below_warn": int((ratio < t.warn_below).sum()),
        "key_days_below_error": int((ratio < t.error_below).sum()),
        "warn_below": t.warn_below,
        "error_below": t.error_below,
    }
    if len(table):
        figures["coverage_min"] = float(ratio.min())
        figures["coverage_overall"] = present_total / expected_total
    n_low = int(figures["key_days_below_warn"])
    if n_low:
        named = [
            f"{k} {wording.day(d)} {wording.number(r)} ({m} of {MINUTES_PER_DAY} minutes "
            f"missing, {g} in recorded gaps: {runs})"
            for k, d, r, m, g, runs in zip(
                offending[key], offending["date"], offending["coverage"], offending["missing"],
                offending["gap_minutes"], offending["missing_minutes"], strict=True,
            )
        ]  # fmt: skip
        summary = (
            f"minute coverage {wording.number(figures['coverage_min'])} < "
            f"{wording.number(t.warn_below)} for {wording.plural(n_low, f'{key}-day')}: "
            f"{wording.listing(named, n_low)}"
        )
    elif not len(table):
        summary = f"nothing expected and nothing observed: no {wording.nouns(key)} or no days"
    else:
        summary = (
            f"minute coverage >= {wording.number(t.warn_below)} for all "
            f"{wording.plural(len(table), f'{key}-day')} (min "
            f"{wording.number(figures['coverage_min'])}, overall "
            f"{wording.number(figures['coverage_overall'])})"
        )
    return Finding("stream_coverage", status_of(labels), figures, offending, summary)
