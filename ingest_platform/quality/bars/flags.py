"""Flagged rows: the one shape every anomaly detector returns, and the finding built from it.

Each detector returns *all* its flagged rows as a frame with ``symbol``, ``date``, ``kind``,
``value`` (the measure: a robust z, a jump ratio, a run length ...), ``threshold``, ``status``,
plus the context columns a person needs for that kind (closes, volumes, OHLC). The rows feed
the quality score in full; the finding keeps the worst `MAX_OFFENDING_ROWS` and words a
``detail`` for each of those only, so a frame full of garbage costs no string formatting.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from ingest_platform.quality.bars.bar_series import BarSeries
from ingest_platform.quality.shared import wording
from ingest_platform.quality.shared.finding import (
    MAX_OFFENDING_ROWS,
    Finding,
    severity_order,
    status_of,
)
from ingest_platform.quality.shared.frames import to_dates

ROW_COLUMNS = ["symbol", "date", "kind", "value", "threshold", "status"]

#: What each kind's `value` measures, for the reader of an offending table.
MEASURES = {
    "false_tick": "robust z-score of the log return",
    "unadjusted_split": "close-to-close jump ratio (previous / close)",
    "stuck_price": "sessions with the same close",
    "ohlc_bounds": "relative size of the violation (inf: missing or non-positive)",
    "duplicate_key": "rows with the same key",
    "volume_outlier": "volume / median of the previous sessions",
}


def flag_rows(
    series: BarSeries,
    rows: np.ndarray,
    kind: str,
    value: np.ndarray,
    threshold: np.ndarray | float,
    status: np.ndarray | str,
    **context: np.ndarray,
) -> pd.DataFrame:
    """The flagged `rows` (positions in `series`) in the common shape, worst first."""
    frame = pd.DataFrame(
        {
            "symbol": series.names[series.code[rows]],
            "date": to_dates(series.day[rows]),
            "kind": kind,
            "value": np.asarray(value, dtype=float),
            "threshold": np.broadcast_to(np.asarray(threshold, dtype=float), len(rows)),
            "status": np.broadcast_to(np.asarray(status, dtype=object), len(rows)),
            **context,
        }
    )
    return severity_order(frame, "value", "symbol", "date", ascending=[False, True, True])


def split_text(ratio: float) -> str:
    """2.0 -> ``2-for-1``, 0.1 -> ``1-for-10``."""
    if ratio >= 1:
        return f"{ratio:g}-for-1"
    return f"1-for-{1 / ratio:.4g}"


def _get(row: pd.Series, name: str) -> float:
    value = row.get(name, np.nan)
    return float(value) if value is not None else float("nan")


def _tick(row: pd.Series) -> str:
    spike = " (spike: reverts the next session)" if row.get("spike", False) else ""
    return (
        f"close {wording.number(_get(row, 'previous_close'))} -> "
        f"{wording.number(_get(row, 'close'))}, robust z {row['value']:.1f}{spike}"
    )


def _split(row: pd.Series) -> str:
    return (
        f"close {wording.number(_get(row, 'previous_close'))} -> "
        f"{wording.number(_get(row, 'close'))} matches a {split_text(_get(row, 'split_ratio'))}"
        " split, none recorded"
    )


def _stuck(row: pd.Series) -> str:
    return (
        f"close {wording.number(_get(row, 'close'))} for {int(row['value'])} sessions to "
        f"{wording.day(row['last_date'])}"
    )


def _ohlc(row: pd.Series) -> str:
    prices = " ".join(
        f"{c[0].upper()} {wording.number(_get(row, c))}" for c in ("open", "high", "low", "close")
    )
    return f"{row.get('rule', '')}: {prices}"


def _duplicate(row: pd.Series) -> str:
    conflict = ", conflicting values" if row.get("conflicting", False) else ", identical"
    return f"{int(row['value'])} copies{conflict}"


def _volume(row: pd.Series) -> str:
    return (
        f"volume {_get(row, 'volume'):,.0f} = {row['value']:.1f}x the median "
        f"{_get(row, 'median_volume'):,.0f}"
    )


_DESCRIBE: dict[str, Callable[[pd.Series], str]] = {
    "false_tick": _tick,
    "unadjusted_split": _split,
    "stuck_price": _stuck,
    "ohlc_bounds": _ohlc,
    "duplicate_key": _duplicate,
    "volume_outlier": _volume,
}


def describe(rows: pd.DataFrame) -> list[str]:
    """One phrase per row, by its kind (only ever called on the capped offending rows)."""
    return [_DESCRIBE[row["kind"]](row) for _, row in rows.iterrows()]


def anomaly_finding(
    check: str,
    rows: pd.DataFrame,
    *,
    rows_checked: int,
    symbols_checked: int,
    what: str,
    kinds: Sequence[str],
) -> Finding:
    """The finding of one or several detectors from their flagged rows."""
    flagged = len(rows)
    figures: dict[str, float | int] = {
        "rows_checked": rows_checked,
        "symbols_checked": symbols_checked,
        "flagged": flagged,
        "flagged_error": int((rows["status"] == "ERROR").sum()),
        "flagged_warn": int((rows["status"] == "WARN").sum()),
        "symbols_flagged": int(rows["symbol"].nunique()),
    }
    if len(kinds) > 1:
        counts = rows["kind"].value_counts()
        figures.update({kind: int(counts.get(kind, 0)) for kind in kinds})
    worst = rows.head(MAX_OFFENDING_ROWS).reset_index(drop=True)
    offending = worst.assign(detail=describe(worst))
    if flagged:
        named = [
            f"{s} {wording.day(d)} {k.replace('_', ' ')} ({text})"
            for s, d, k, text in zip(
                offending["symbol"], offending["date"], offending["kind"], offending["detail"],
                strict=True,
            )
        ]  # fmt: skip
        summary = (
            f"{wording.plural(flagged, what)} in "
            f"{wording.plural(int(figures['symbols_flagged']), 'symbol')}: "
            f"{wording.listing(named, flagged)}"
        )
    else:
        symbols = wording.plural(symbols_checked, "symbol")
        summary = f"no {wording.nouns(what)} in {rows_checked:,} bars of {symbols}"
    return Finding(check, status_of(rows["status"]), figures, offending, summary)


def empty_rows(**context: str) -> pd.DataFrame:
    """A zero-row flagged frame with the common columns and the given context dtypes."""
    columns: dict[str, pd.Series] = {
        "symbol": pd.Series(dtype=object),
        "date": pd.Series(dtype="datetime64[ns]"),
        "kind": pd.Series(dtype=object),
        "value": pd.Series(dtype=float),
        "threshold": pd.Series(dtype=float),
        "status": pd.Series(dtype=object),
    }
    columns.update({name: pd.Series(dtype=dtype) for name, dtype in context.items()})
    return pd.DataFrame(columns)
