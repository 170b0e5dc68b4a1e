"""Coverage: the fraction of expected observations present, per symbol or variable.

What is *expected* differs by dataset and is always explicit, a frame of (key, date):

- bars: the sessions of each instrument's own calendar (XNYS for equities and ETFs, ``24/5``
  for FX), between its first and last listing day when those are given
  (`expected.expected_sessions`);
- indicators: the release calendar's observation dates (the caller's `expected` frame);
- the Kraken stream: every UTC day of each subscription (`expected.expected_stream_days`).

zipline's rule for its daily bar writer is the model: an asset's rows must equal its
calendar's sessions between its first and last day, and *both* missing and extra sessions are
reported. Rows on days that were not expected (a holiday, after a delisting) are counted as
extra and named; they never raise the ratio.

The computation is a boolean grid of keys x distinct days (545 symbols x 3 years is about
600k cells), so `coverage_by_key` is a handful of numpy reductions. The metadata publisher
computes ``metadata.json``'s coverage with `coverage_by_key` too: one definition of coverage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest_platform.quality.bars.expected import (
    ExpectedPairs,
    expected_session_pairs,
    expected_stream_days,
)
from ingest_platform.quality.shared import wording
from ingest_platform.quality.shared.finding import (
    MAX_OFFENDING_ROWS,
    Finding,
    Status,
    severity_order,
    status_of,
    status_rank,
    status_where,
)
from ingest_platform.quality.shared.frames import (
    DayLike,
    as_day,
    consecutive_runs,
    day_numbers,
    encode,
    require_columns,
    to_dates,
)
from ingest_platform.quality.shared.thresholds import CoverageThresholds

_NAT = np.iinfo(np.int64).min


@dataclass(frozen=True)
class _Grid:
    """Which (key, day) cells were expected and which observed, over the distinct days."""

    key: str
    names: pd.Index  # the key of each grid row
    days: np.ndarray  # int64 day of each grid column, ascending
    expected: np.ndarray  # bool [keys, days]
    observed: np.ndarray  # bool [keys, days]

    def table(self) -> pd.DataFrame:
        e, o = self.expected, self.observed
        expected = e.sum(axis=1)
        present = (e & o).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(expected > 0, present / np.maximum(expected, 1), np.nan)
        table = pd.DataFrame(
            {
                self.key: self.names.to_numpy(dtype=object),
                "ratio": ratio,
                "present": present.astype(np.int64),
                "expected": expected.astype(np.int64),
                "missing": (expected - present).astype(np.int64),
                "extra": (o & ~e).sum(axis=1).astype(np.int64),
                "first_missing": self._first(e & ~o),
                "last_missing": self._last(e & ~o),
                "first_extra": self._first(o & ~e),
            }
        )
        return table.sort_values(
            ["ratio", self.key], na_position="last", kind="stable", ignore_index=True
        )

    def _first(self, cells: np.ndarray) -> pd.DatetimeIndex:
        if cells.shape[1] == 0:
            return to_dates(np.full(cells.shape[0], _NAT))
        index = cells.argmax(axis=1)
        return to_dates(np.where(cells.any(axis=1), self.days[index], _NAT))

    def _last(self, cells: np.ndarray) -> pd.DatetimeIndex:
        if cells.shape[1] == 0:
            return to_dates(np.full(cells.shape[0], _NAT))
        index = cells.shape[1] - 1 - cells[:, ::-1].argmax(axis=1)
        return to_dates(np.where(cells.any(axis=1), self.days[index], _NAT))

    def missing_runs(self, row: int) -> list[tuple[int, int]]:
        """Runs of missing days, consecutive among the key's *expected* days (so a run of
        missing sessions spans the holiday between them), as (first, last) days."""
        columns = np.flatnonzero(self.expected[row])
        missing = np.flatnonzero(~self.observed[row, columns])
        return consecutive_runs(self.days[columns[missing]], missing)

    def extra_runs(self, row: int) -> list[tuple[int, int]]:
        """Runs of extra days, consecutive among all the grid's days (a weekend that no key
        expected or observed does not split a run)."""
        columns = np.flatnonzero(self.observed[row] & ~self.expected[row])
        return consecutive_runs(self.days[columns], columns)


def _grid(
    observed: pd.DataFrame,
    expected: ExpectedPairs,
    key: str,
    date_column: str,
    value_column: str | None,
    start: DayLike | None,
    end: DayLike | None,
) -> _Grid:
    needed = [key, date_column, *([value_column] if value_column else [])]
    require_columns(observed, needed, "observed")
    e_days = expected.days
    o_days = day_numbers(observed[date_column])
    o_valid = o_days != _NAT
    if value_column:
        o_valid &= observed[value_column].notna().to_numpy()
    e_real = e_days[e_days != _NAT]
    bounds = e_real if len(e_real) else o_days[o_valid]
    lo = as_day(start) if start is not None else (int(bounds.min()) if len(bounds) else 0)
    hi = as_day(end) if end is not None else (int(bounds.max()) if len(bounds) else -1)
    e_in = (e_days >= lo) & (e_days <= hi)
    o_in = o_valid & (o_days >= lo) & (o_days <= hi)
    # Keep only keys expected in the window, then append the observed keys nobody expected.
    e_codes, e_days = expected.codes[e_in], e_days[e_in]
    used = np.zeros(len(expected.names), dtype=bool)
    used[e_codes] = True
    renumber = np.cumsum(used) - 1
    e_codes, names = renumber[e_codes], expected.names[used]
    o_codes, names = encode(observed[key][o_in], names)
    o_days = o_days[o_in]

    marks = np.zeros(max(hi - lo + 1, 0), dtype=bool)
    marks[e_days - lo] = True
    marks[o_days - lo] = True
    days = np.flatnonzero(marks) + lo
    column = np.cumsum(marks) - 1
    grid_e = np.zeros((len(names), len(days)), dtype=bool)
    grid_o = np.zeros_like(grid_e)
    grid_e[e_codes, column[e_days - lo]] = True
    grid_o[o_codes, column[o_days - lo]] = True
    return _Grid(key, names, days, grid_e, grid_o)


def coverage_by_key(
    observed: pd.DataFrame,
    expected: pd.DataFrame,
    *,
    key: str = "symbol",
    date_column: str = "date",
    value_column: str | None = None,
    start: DayLike | None = None,
    end: DayLike | None = None,
) -> pd.DataFrame:
    """Per key: ``ratio`` (present / expected), ``present``, ``expected``, ``missing``, ``extra``,
    ``first_missing``, ``last_missing``, ``first_extra``; lowest ratio first.

    Args:
        observed: rows with `key` and `date_column` (dates, or timestamps: a UTC day for
            timezone-aware ones). Duplicates count once (duplicates are an anomaly check's job).
        expected: (`key`, ``date``) pairs that should be present.
        value_column: when given, rows whose value is null are not observations (FRED's ".").
        start, end: the checked window (inclusive); default: the expected dates' range. Rows
            outside it are ignored.

    A key with rows but nothing expected (not in the instruments, say) has a null ratio and its
    rows counted as extra.
    """
    grid = _grid(
        observed, ExpectedPairs.of(expected, key), key, date_column, value_column, start, end
    )
    return grid.table()


def coverage(
    observed: pd.DataFrame,
    expected: pd.DataFrame,
    *,
    key: str = "symbol",
    date_column: str = "date",
    value_column: str | None = None,
    start: DayLike | None = None,
    end: DayLike | None = None,
    thresholds: CoverageThresholds = CoverageThresholds(),  # noqa: B008 - frozen, immutable
    check: str = "coverage",
) -> Finding:
    """WARN when a key's coverage is below ``warn_below``, ERROR below ``error_below``; keys
    with extra rows take ``on_extra``. Arguments as in `coverage_by_key`."""
    grid = _grid(
        observed, ExpectedPairs.of(expected, key), key, date_column, value_column, start, end
    )
    return _finding(grid, grid.table(), thresholds, check)


def _finding(grid: _Grid, table: pd.DataFrame, t: CoverageThresholds, check: str) -> Finding:
    key = grid.key
    ratio = table["ratio"].to_numpy()
    scored = ~np.isnan(ratio)
    labels = status_where(np.where(scored, ratio, 1.0), t.warn_below, t.error_below, below=True)
    extra = table["extra"].to_numpy() > 0
    milder = status_rank(labels) < t.on_extra.rank
    labels = np.where(extra & milder, t.on_extra.value, labels)
    table = table.assign(status=labels)
    expected_total = int(table["expected"].sum())
    present_total = int(table["present"].sum())
    figures: dict[str, float | int] = {
        "keys": len(table),
        "expected": expected_total,
        "present": present_total,
        "missing": int(table["missing"].sum()),
        "extra": int(table["extra"].sum()),
        "keys_below_warn": int((ratio[scored] < t.warn_below).sum()),
        "keys_below_error": int((ratio[scored] < t.error_below).sum()),
        "keys_with_extra": int(extra.sum()),
        "warn_below": t.warn_below,
        "error_below": t.error_below,
    }
    if scored.any():
        figures["coverage_min"] = float(ratio[scored].min())
        figures["coverage_median"] = float(np.median(ratio[scored]))
    if expected_total:
        figures["coverage_overall"] = present_total / expected_total

    failing = severity_order(table[labels != "PASS"], "ratio", "extra", ascending=[True, False])
    worst_rows = failing.head(MAX_OFFENDING_ROWS)
    row_of = {name: i for i, name in enumerate(grid.names)}
    missing_text = [wording.ranges(grid.missing_runs(row_of[k])) for k in worst_rows[key]]
    extra_text = [wording.ranges(grid.extra_runs(row_of[k])) for k in worst_rows[key]]
    offending = pd.DataFrame(
        {
            key: worst_rows[key],
            "date": worst_rows["first_missing"].fillna(worst_rows["first_extra"]),
            "coverage": worst_rows["ratio"],
            "threshold": np.where(worst_rows["ratio"] < t.error_below, t.error_below, t.warn_below),
            "missing_dates": missing_text,
            "extra_dates": extra_text,
            "missing": worst_rows["missing"],
            "extra": worst_rows["extra"],
            "present": worst_rows["present"],
            "expected": worst_rows["expected"],
            "status": worst_rows["status"],
        }
    )
    summary = _summary(offending, failing, figures, t, key)
    return Finding(check, status_of(labels), figures, offending, summary)


def _summary(
    offending: pd.DataFrame,
    failing: pd.DataFrame,
    figures: dict[str, float | int],
    t: CoverageThresholds,
    key: str,
) -> str:
    parts = []
    low = offending[offending["coverage"] < t.warn_below]
    n_low = int(figures["keys_below_warn"])
    if n_low:
        named = [
            f"{k} {wording.number(r)} ({m} missing)"
            for k, r, m in zip(low[key], low["coverage"], low["missing_dates"], strict=True)
        ]
        parts.append(
            f"coverage {wording.number(figures['coverage_min'])} < {wording.number(t.warn_below)}"
            f" for {wording.plural(n_low, key)}: {wording.listing(named, n_low)}"
        )
    n_extra = int(figures["keys_with_extra"])
    if n_extra and t.on_extra is not Status.PASS:
        with_extra = offending[offending["extra"] > 0]
        named = [
            f"{k} ({x} extra)"
            for k, x in zip(with_extra[key], with_extra["extra_dates"], strict=True)
        ]
        parts.append(
            f"{wording.plural(int(figures['extra']), 'extra row')} for "
            f"{wording.plural(n_extra, key)}: {wording.listing(named, n_extra)}"
        )
    if parts:
        return "; ".join(parts)
    if not figures["keys"]:
        return f"nothing expected and nothing observed: no {wording.nouns(key)} in the window"
    everyone = wording.plural(int(figures["keys"]), key)
    text = f"coverage >= {wording.number(t.warn_below)} for all {everyone}"
    if "coverage_min" in figures:
        text += (
            f" (min {wording.number(figures['coverage_min'])}, overall "
            f"{wording.number(figures.get('coverage_overall', 1.0))})"
        )
    if n_extra:
        return text + f"; {wording.plural(int(figures['extra']), 'extra row')} ignored"
    return text + "; no extra rows"


# ---- per dataset -----------------------------------------------------------------------------


def bar_coverage(
    bars: pd.DataFrame,
    instruments: pd.DataFrame,
    start: DayLike,
    end: DayLike,
    *,
    listings: pd.DataFrame | None = None,
    settled_by: pd.Timestamp | None = None,
    thresholds: CoverageThresholds = CoverageThresholds(),  # noqa: B008
) -> Finding:
    """Daily bars against each instrument's own calendar sessions in [start, end] (with
    `settled_by`, only the sessions settled by that clock: see `expected_sessions`)."""
    expected = expected_session_pairs(instruments, start, end, listings, settled_by)
    grid = _grid(bars, expected, "symbol", "date", None, start, end)
    return _finding(grid, grid.table(), thresholds, "bar_coverage")


def indicator_coverage(
    observations: pd.DataFrame,
    expected: pd.DataFrame,
    *,
    start: DayLike | None = None,
    end: DayLike | None = None,
    value_column: str | None = "value",
    thresholds: CoverageThresholds = CoverageThresholds(),  # noqa: B008
) -> Finding:
    """Indicator observations (``variable``, ``date``, ``value``) against the release calendar's
    expected (``variable``, ``date``); a null value is no observation."""
    return coverage(
        observations,
        expected,
        key="variable",
        value_column=value_column,
        start=start,
        end=end,
        thresholds=thresholds,
        check="indicator_coverage",
    )


def stream_coverage(
    stream: pd.DataFrame,
    subscriptions: pd.DataFrame,
    start: DayLike,
    end: DayLike,
    *,
    time_column: str = "minute",
    thresholds: CoverageThresholds = CoverageThresholds(),  # noqa: B008
) -> Finding:
    """Stream rows (``symbol``, a UTC timestamp) against every subscribed UTC day."""
    expected = expected_stream_days(subscriptions, start, end)
    return coverage(
        stream,
        expected,
        date_column=time_column,
        start=start,
        end=end,
        thresholds=thresholds,
        check="stream_coverage",
    )
