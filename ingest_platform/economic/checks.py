"""Checks of the economic datasets, release-aware.

For each variable, the periods that should be in the lake are those whose first release has
fallen due (`rules.expected_publications`): each period is due on the first date of its
release's calendar after period end + the series' own publication lag (learned from its
vintages; the registry's declared lag for publication-lag variables). Coverage is the share of
due periods in the window present in the lake; staleness is how late the oldest missing due
period is, beyond the grace period (24 h). After the CPI release on a date, that month's value
must be in the lake.
"""

from __future__ import annotations

import pandas as pd

from ingest_platform.core.lake import ParquetLake
from ingest_platform.economic import due
from ingest_platform.economic.schema import ECONOMIC_INDICATORS, ECONOMIC_RELEASE_CALENDAR
from ingest_platform.quality.bars.coverage import coverage_by_key, indicator_coverage
from ingest_platform.quality.bars.staleness import (
    indicator_staleness,
    indicator_staleness_by_variable,
)
from ingest_platform.quality.shared.factory import (
    CheckInputs,
    ChecksCouldNotRun,
    CheckWindow,
    QualityCheck,
    quality_checks,
)
from ingest_platform.quality.shared.finding import Finding, Status
from ingest_platform.quality.shared.score import quality_score
from ingest_platform.quality.shared.thresholds import (
    CoverageThresholds,
    IndicatorStalenessThresholds,
    ScoreThresholds,
)
from ingest_platform.registry.schema import VARIABLE_MAPPINGS


def _load(lake: ParquetLake, window: CheckWindow) -> dict[str, pd.DataFrame]:
    rows = ECONOMIC_INDICATORS.read(
        lake, list(window.keys), columns=["variable", "series_id", "date", "realtime_start"]
    )
    if rows.empty:
        raise ChecksCouldNotRun(f"economic_indicators: no rows in {window.describe()}")
    expected = due.expected_publications(lake, rows, window.now)
    return {"rows": rows, "expected": expected}


def _span(inputs: CheckInputs) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The due dates a window judges: those falling in its months (up to its clock)."""
    now = inputs.window.now.tz_convert("UTC").tz_localize(None)
    if not inputs.window.keys:
        return pd.Timestamp("1900-01-01"), now
    start, end = ECONOMIC_INDICATORS.scheme.bounds(inputs.window.keys)
    return start, min(end, now)


def _due(inputs: CheckInputs) -> pd.DataFrame:
    start, end = _span(inputs)
    expected = inputs["expected"]
    due = expected[(expected["release_date"] >= start) & (expected["release_date"] <= end)]
    return due[["variable", "date"]]


#: A value published earlier than its expected release is welcome, not an anomaly.
COVERAGE = CoverageThresholds(on_extra=Status.PASS)
#: Named so the check and its description read the same numbers.
STALENESS = IndicatorStalenessThresholds()


def coverage(inputs: CheckInputs) -> Finding:
    return indicator_coverage(inputs["rows"], _due(inputs), value_column=None, thresholds=COVERAGE)


def staleness(inputs: CheckInputs) -> Finding:
    return indicator_staleness(
        inputs["rows"], inputs["expected"], inputs.window.now, value_column=None,
        thresholds=STALENESS,
    )  # fmt: skip


def score(inputs: CheckInputs) -> Finding:
    return quality_score(
        coverage_by_key(inputs["rows"], _due(inputs), key="variable"),
        staleness=indicator_staleness_by_variable(
            inputs["rows"],
            inputs["expected"],
            inputs.window.now,
            value_column=None,
            thresholds=STALENESS,
        ),
        key="variable",
    )


economic_checks = quality_checks(
    ECONOMIC_INDICATORS,
    [
        QualityCheck(
            "indicator_coverage",
            coverage,
            "Share of each variable's periods due in the window (by its release calendar and "
            f"publication lag) present in the lake: {COVERAGE.bands()}.",
            key_figure="coverage_min",
        ),
        QualityCheck(
            "indicator_staleness",
            staleness,
            "Hours since the oldest due period missing from the lake fell due (its release day "
            f"+ {STALENESS.grace_hours:g} h grace): {STALENESS.bands()}.",
            key_figure="max_lag_hours",
        ),
        QualityCheck(
            "quality_score",
            score,
            f"Per variable: coverage x freshness (0..1): {ScoreThresholds().bands()}.",
            key_figure="score_min",
        ),
    ],
    _load,
    reads=[ECONOMIC_RELEASE_CALENDAR.name, VARIABLE_MAPPINGS.name],
)

ECONOMIC_CHECKS = [economic_checks]
