"""Row integrity the schema would reject, checked on frames that never met the schema.

Pandera validates what an asset writes, but CI also checks the lake as it lies, and a merged
partition or a hand-repaired file can hold what no asset would write. So:

- **OHLC bounds**: every price present and positive, high >= max(open, close),
  low <= min(open, close) (with the schema's 1e-9 relative tolerance), volume present and
  non-negative. Every violation is an ERROR: it is a wrong number, not an odd one.
- **duplicate keys**: more than one row per key (``symbol``, ``date`` for bars; any key for
  other datasets), noting whether the copies agree. An ERROR either way: identical copies
  still double every sum downstream.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ingest_platform.quality.bars.bar_series import BarSeries, bar_series
from ingest_platform.quality.bars.flags import anomaly_finding, flag_rows
from ingest_platform.quality.shared import wording
from ingest_platform.quality.shared.finding import (
    MAX_OFFENDING_ROWS,
    Finding,
    Status,
    severity_order,
)
from ingest_platform.quality.shared.frames import require_columns

#: Float rounding in a source's payload is not a broken bar (the schema's tolerance).
RELATIVE_TOLERANCE = 1e-9
#: The bounds, in the order a bar is tested against them (the first it breaks is named).
RULES = (
    "price missing or not positive",
    "high below max(open, close)",
    "low above min(open, close)",
    "volume missing or negative",
)
#: Columns whose difference does not make duplicate rows conflict: when they were fetched.
BOOKKEEPING_COLUMNS = ("ingested_at",)


def ohlc_violation_frame(series: BarSeries) -> pd.DataFrame:
    """One flagged row per bar breaking a bound, naming the first rule it breaks."""
    o, h, low, c, v = series.open, series.high, series.low, series.close, series.volume
    with np.errstate(invalid="ignore"):
        unusable = ~(
            (o > 0) & (h > 0) & (low > 0) & (c > 0)
            & np.isfinite(o) & np.isfinite(h) & np.isfinite(low) & np.isfinite(c)
        )  # fmt: skip
        top, bottom = np.fmax(o, c), np.fmin(o, c)
        high_short = (top - h) / top
        low_over = (low - bottom) / bottom
        bad_high = ~unusable & (h < top * (1 - RELATIVE_TOLERANCE))
        bad_low = ~unusable & (low > bottom * (1 + RELATIVE_TOLERANCE))
        bad_volume = ~np.isfinite(v) | (v < 0)
    rows = np.flatnonzero(unusable | bad_high | bad_low | bad_volume)
    broken = [unusable[rows], bad_high[rows], bad_low[rows], bad_volume[rows]]
    rule = np.select(broken, list(RULES), default="")
    size = np.select(broken, [np.inf, high_short[rows], low_over[rows], np.inf], 0.0)
    return flag_rows(
        series,
        rows,
        "ohlc_bounds",
        size,
        0.0,
        "ERROR",
        rule=rule,
        open=o[rows],
        high=h[rows],
        low=low[rows],
        close=c[rows],
        volume=v[rows],
    )


def ohlc_violation_rows(bars: pd.DataFrame) -> pd.DataFrame:
    """Every bar breaking an OHLC bound (the shape of `flags`)."""
    return ohlc_violation_frame(bar_series(bars))


def ohlc_bounds(bars: pd.DataFrame) -> Finding:
    """ERROR on any bar with a missing or non-positive price, a high below its open or close,
    a low above them, or a missing or negative volume."""
    series = bar_series(bars)
    return anomaly_finding(
        "ohlc_bounds", ohlc_violation_frame(series), rows_checked=len(series),
        symbols_checked=len(series.names), what="OHLC violation", kinds=["ohlc_bounds"],
    )  # fmt: skip


def duplicate_key_rows(
    frame: pd.DataFrame, key: Sequence[str] = ("symbol", "date")
) -> pd.DataFrame:
    """One flagged row per duplicated key: the key columns, ``kind``, ``value`` (copies),
    ``threshold`` (1), ``status`` (ERROR), ``conflicting`` (whether the copies differ).

    Keys are compared as integer codes per column, so 410k rows cost one factorize per column.
    """
    key = list(key)
    require_columns(frame, key, "keyed")
    combined = np.zeros(len(frame), dtype=np.int64)
    for column in key:
        codes, uniques = pd.factorize(frame[column], use_na_sentinel=False)
        combined = combined * (len(uniques) + 1) + codes
    repeated = pd.Series(combined).duplicated(keep=False).to_numpy()
    copies = frame.loc[repeated]
    values = [c for c in frame.columns if c not in key and c not in BOOKKEEPING_COLUMNS]
    groups = copies.groupby(key, dropna=False, sort=True)
    counts = groups.size()
    if values:
        conflicting = groups[values].nunique(dropna=False).gt(1).any(axis=1)
    else:
        conflicting = pd.Series(False, index=counts.index)
    rows = counts.rename("value").reset_index()
    rows = rows.assign(
        kind="duplicate_key",
        value=rows["value"].astype(float),
        threshold=1.0,
        status="ERROR",
        conflicting=conflicting.to_numpy(dtype=bool),
    )
    ordered = rows[[*key, "kind", "value", "threshold", "status", "conflicting"]]
    return severity_order(ordered, "conflicting", "value", ascending=[False, False])


def duplicate_keys(frame: pd.DataFrame, key: Sequence[str] = ("symbol", "date")) -> Finding:
    """ERROR when any key has more than one row; offending rows name the key and copies."""
    rows = duplicate_key_rows(frame, key)
    columns = list(key)
    figures: dict[str, float | int] = {
        "rows_checked": len(frame),
        "duplicated_keys": len(rows),
        "surplus_rows": int(rows["value"].sum() - len(rows)),
        "conflicting_keys": int(rows["conflicting"].sum()),
    }
    if rows.empty:
        summary = f"every ({', '.join(columns)}) is unique across {len(frame):,} rows"
        return Finding("duplicate_keys", Status.PASS, figures, rows, summary)
    named = [
        " ".join(_word(row[c]) for c in columns)
        + f" ({int(row['value'])} copies, {'conflicting' if row['conflicting'] else 'identical'})"
        for _, row in rows.head(wording.NAMED_IN_SUMMARY).iterrows()
    ]
    summary = (
        f"{wording.plural(len(rows), 'duplicated key')} ({'/'.join(columns)}): "
        f"{wording.listing(named, len(rows))}"
    )
    return Finding("duplicate_keys", Status.ERROR, figures, rows.head(MAX_OFFENDING_ROWS), summary)


def _word(value: object) -> str:
    """A key value as a person reads it: dates as YYYY-MM-DD."""
    if isinstance(value, pd.Timestamp) and value.tzinfo is None and value == value.normalize():
        return wording.day(value)
    return str(value)
