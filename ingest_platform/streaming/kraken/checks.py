"""Checks of the Kraken minute bars, through the quality factory.

- ``stream_coverage``: per configured pair and UTC day in the window, the share of the day's
  1440 minutes that have a bar not flagged ``gap``. The bars have no row for a minute without a
  verified book update (never carried forward), and flag a minute a recorded gap overlaps
  (reconnect, resync, maintenance): both are missing minutes.
- ``stream_staleness``: hours between each pair's newest minute bar and the check's clock. A
  day partition cannot hold bars after its own end, so the clock is the check's clock
  (`CheckWindow.now`) capped at the end of the window's last day: yesterday's bars checked at
  00:15 are as fresh as the stream was at midnight, while a stream that died at 18:00 is six
  hours stale on that day, whenever it is checked.

Neither blocks: the variables built from the bars would rather have a partial day than none.
The expected pairs are the stream's configured ones (`StreamConfig.pairs`), plus any other
pair that has bars in the window.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import pandas as pd
from dagster import AssetChecksDefinition

from ingest_platform.core.lake import ParquetLake
from ingest_platform.quality.shared.factory import (
    CheckInputs,
    CheckWindow,
    QualityCheck,
    quality_checks,
)
from ingest_platform.quality.shared.finding import Finding
from ingest_platform.quality.shared.thresholds import CoverageThresholds, StreamStalenessThresholds
from ingest_platform.quality.stream.coverage import stream_minute_coverage
from ingest_platform.quality.stream.staleness import stream_staleness
from ingest_platform.streaming.kraken.config import StreamConfig
from ingest_platform.streaming.kraken.schemas import KRAKEN_BOOK_MINUTE_BARS

#: The pairs the stream subscribes to unless told otherwise: the ones every day must cover.
CONFIGURED_PAIRS: tuple[str, ...] = tuple(StreamConfig().pairs)

COVERAGE = CoverageThresholds()
STALENESS = StreamStalenessThresholds()


def _load(lake: ParquetLake, window: CheckWindow) -> dict[str, pd.DataFrame]:
    """The window's bars, only the columns the checks read. An empty partition is not "could
    not run": the asset wrote it for a day without verified data, and coverage says so."""
    bars = KRAKEN_BOOK_MINUTE_BARS.read(
        lake, list(window.keys), columns=["symbol", "minute", "gap"]
    )
    return {"bars": bars}


def judged_at(window: CheckWindow) -> pd.Timestamp:
    """The check's clock, capped at the end of the window's last UTC day (see the module)."""
    assert window.end is not None
    end_of_day = pd.Timestamp(window.end, tz="UTC") + pd.Timedelta(days=1)
    return min(window.now.tz_convert("UTC"), end_of_day)


def coverage(inputs: CheckInputs, pairs: Sequence[str] = CONFIGURED_PAIRS) -> Finding:
    return stream_minute_coverage(
        inputs["bars"], pairs, list(inputs.window.keys), thresholds=COVERAGE
    )


def staleness(inputs: CheckInputs, pairs: Sequence[str] = CONFIGURED_PAIRS) -> Finding:
    return stream_staleness(
        inputs["bars"],
        judged_at(inputs.window),
        time_column="minute",
        expected_keys=pairs,
        thresholds=STALENESS,
    )


def minute_bar_checks(pairs: Sequence[str] = CONFIGURED_PAIRS) -> AssetChecksDefinition:
    """The minute bars' checks expecting `pairs` (tests pass the pairs their log streams)."""
    return quality_checks(
        KRAKEN_BOOK_MINUTE_BARS,
        [
            QualityCheck(
                "stream_coverage",
                partial(coverage, pairs=pairs),
                "Per configured pair and UTC day: share of the day's 1440 minutes with a bar "
                "not flagged gap (a minute without a verified book update has no bar; one a "
                f"recorded gap overlaps counts as missing): {COVERAGE.bands()}.",
                key_figure="coverage_min",
            ),
            QualityCheck(
                "stream_staleness",
                partial(staleness, pairs=pairs),
                "Hours from each configured pair's newest minute bar to the check's clock, "
                "capped at the end of the window's last UTC day: "
                f"{STALENESS.bands()} or never seen.",
                key_figure="max_lag_hours",
            ),
        ],
        _load,
    )


kraken_minute_bar_checks = minute_bar_checks()

STREAM_CHECKS = [kraken_minute_bar_checks]
