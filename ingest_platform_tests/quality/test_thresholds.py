"""Thresholds: defaults as documented, and validation that names the field."""

from __future__ import annotations

import pytest

from ingest_platform.quality.finding import Status
from ingest_platform.quality.thresholds import (
    BarStalenessThresholds,
    CoverageThresholds,
    DriftThresholds,
    FalseTickThresholds,
    IndicatorStalenessThresholds,
    MappingThresholds,
    ScoreThresholds,
    SplitThresholds,
    StreamStalenessThresholds,
    StuckThresholds,
    VolumeThresholds,
)


def test_defaults_are_the_documented_ones():
    assert (CoverageThresholds().warn_below, CoverageThresholds().error_below) == (0.9, 0.75)
    assert (DriftThresholds().warn_above, DriftThresholds().error_above) == (0.005, 0.01)
    assert (ScoreThresholds().warn_below, ScoreThresholds().error_below) == (0.85, 0.6)
    assert FalseTickThresholds().warn_z == 8.0
    assert MappingThresholds().unmapped is Status.WARN
    assert BarStalenessThresholds().warn_after_sessions == 0


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (
            lambda: CoverageThresholds(warn_below=0.7, error_below=0.75),
            "CoverageThresholds.warn_below",
        ),
        (
            lambda: CoverageThresholds(warn_below=0.75, error_below=0.75),
            "CoverageThresholds.warn_below",
        ),
        (lambda: CoverageThresholds(warn_below=1.2), "CoverageThresholds.warn_below"),
        (lambda: CoverageThresholds(error_below=-0.1), "CoverageThresholds.error_below"),
        (lambda: DriftThresholds(warn_above=0.02), "DriftThresholds.warn_above"),
        (lambda: DriftThresholds(error_above=1.5), "DriftThresholds.error_above"),
        (lambda: DriftThresholds(warn_above=float("nan")), "DriftThresholds.warn_above"),
        (lambda: BarStalenessThresholds(settle_hours=-1), "BarStalenessThresholds.settle_hours"),
        (
            lambda: BarStalenessThresholds(warn_after_sessions=2),
            "BarStalenessThresholds.warn_after_sessions",
        ),
        (
            lambda: BarStalenessThresholds(warn_after_sessions=0.5),
            "BarStalenessThresholds.warn_after_sessions",
        ),
        (
            lambda: IndicatorStalenessThresholds(grace_hours=-2),
            "IndicatorStalenessThresholds.grace_hours",
        ),
        (
            lambda: IndicatorStalenessThresholds(warn_after_hours=-1),
            "IndicatorStalenessThresholds.warn_after_hours",
        ),
        (
            lambda: StreamStalenessThresholds(warn_after_hours=2, error_after_hours=1),
            "StreamStalenessThresholds.warn_after_hours",
        ),
        (lambda: FalseTickThresholds(warn_z=30), "FalseTickThresholds.warn_z"),
        (lambda: SplitThresholds(tolerance=0.5), "SplitThresholds.tolerance"),
        (lambda: SplitThresholds(ratios=(2.0, 1.0)), "SplitThresholds.ratios"),
        (lambda: StuckThresholds(warn_run_sessions=1), "StuckThresholds.warn_run_sessions"),
        (
            lambda: StuckThresholds(warn_run_sessions=5, error_run_sessions=5),
            "StuckThresholds.warn_run_sessions",
        ),
        (lambda: VolumeThresholds(window=2), "VolumeThresholds.window"),
        (lambda: VolumeThresholds(warn_ratio=200), "VolumeThresholds.warn_ratio"),
        (lambda: MappingThresholds(unmapped=Status.PASS), "MappingThresholds.unmapped"),
        (lambda: ScoreThresholds(error_anomaly_penalty=2), "ScoreThresholds.error_anomaly_penalty"),
        (lambda: ScoreThresholds(warn_below=0.5), "ScoreThresholds.warn_below"),
    ],
)
def test_invalid_thresholds_fail_naming_the_field(build, field):
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        build()
