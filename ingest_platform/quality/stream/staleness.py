"""Staleness of the Kraken stream: hours since its last heartbeat (or newest row), per key.

A pure function of `now`, like every staleness check: the stream's own clock is never read.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ingest_platform.quality.shared import wording
from ingest_platform.quality.shared.finding import MAX_OFFENDING_ROWS, Finding, status_of
from ingest_platform.quality.shared.frames import require_columns, utc_timestamp
from ingest_platform.quality.shared.freshness import (
    HOUR,
    Instant,
    freshness,
    lag_figures,
    lag_labels,
    now_text,
    worst_first,
)
from ingest_platform.quality.shared.thresholds import StreamStalenessThresholds


def stream_staleness_by_key(
    heartbeats: pd.DataFrame,
    now: Instant,
    *,
    key: str = "symbol",
    time_column: str = "time",
    expected_keys: Sequence[str] = (),
    thresholds: StreamStalenessThresholds = StreamStalenessThresholds(),  # noqa: B008
) -> pd.DataFrame:
    """Per key: ``last_seen`` (newest timestamp), ``age_hours`` at `now`, ``freshness``,
    ``status``; oldest first. `expected_keys` that never appear are ERROR (age NaN).

    `heartbeats` is any frame with `key` and a timezone-aware `time_column`: the client's
    heartbeat records, or the minute bars (``minute``) when the heartbeat is not at hand.
    """
    require_columns(heartbeats, [key, time_column], "heartbeats")
    now = utc_timestamp(now, "now")
    t = thresholds
    stamps = pd.to_datetime(heartbeats[time_column], utc=True)
    newest = stamps.groupby(heartbeats[key]).max()
    keys = newest.index.union(pd.Index(list(expected_keys)), sort=False)
    newest = newest.reindex(keys)
    age = ((now - newest) / HOUR).to_numpy(dtype=float)
    table = pd.DataFrame(
        {
            key: keys.to_numpy(dtype=object),
            "last_seen": newest.to_numpy(),
            "age_hours": age,
            "freshness": freshness(age, t.warn_after_hours, t.error_after_hours),
            "status": lag_labels(age, t.warn_after_hours, t.error_after_hours),
        }
    )
    return worst_first(table, "age_hours", key)


def stream_staleness(
    heartbeats: pd.DataFrame,
    now: Instant,
    *,
    key: str = "symbol",
    time_column: str = "time",
    expected_keys: Sequence[str] = (),
    thresholds: StreamStalenessThresholds = StreamStalenessThresholds(),  # noqa: B008
) -> Finding:
    """WARN when the newest heartbeat is older than ``warn_after_hours``, ERROR beyond
    ``error_after_hours`` (or never seen)."""
    t = thresholds
    table = stream_staleness_by_key(
        heartbeats, now, key=key, time_column=time_column, expected_keys=expected_keys,
        thresholds=t,
    )  # fmt: skip
    old = table[table["status"] != "PASS"].head(MAX_OFFENDING_ROWS)
    offending = pd.DataFrame(
        {
            key: old[key],
            "last_seen": old["last_seen"],
            "age_hours": old["age_hours"],
            "threshold": np.where(
                old["age_hours"].fillna(np.inf) > t.error_after_hours,
                t.error_after_hours,
                t.warn_after_hours,
            ),
            "status": old["status"],
        }
    ).reset_index(drop=True)
    age = table["age_hours"].to_numpy()
    figures = lag_figures(table, age, t.warn_after_hours, t.error_after_hours, "hours")
    named = [
        f"{k} (never)" if pd.isna(s) else f"{k} (last {s:%Y-%m-%d %H:%M}, {wording.number(a)} h)"
        for k, s, a in zip(
            offending[key], offending["last_seen"], offending["age_hours"], strict=True
        )
    ]
    as_of = now_text(now)
    if named:
        n = int((table["status"] != "PASS").sum())
        summary = (
            f"stream silent for more than {wording.number(t.warn_after_hours)} h as of {as_of}: "
            f"{wording.listing(named, n)}"
        )
    else:
        within = wording.number(t.warn_after_hours)
        summary = f"{wording.plural(len(table), key)} heard from within {within} h of {as_of}"
    return Finding("stream_staleness", status_of(table["status"]), figures, offending, summary)
