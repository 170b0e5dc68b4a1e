"""Thresholds: defaults as documented, and validation that names the field."""

from __future__ import annotations

import pytest

from ingest_platform.quality.shared.finding import Status
from ingest_platform.quality.shared.thresholds import (
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
    UniverseCoverageThresholds,
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


def test_bands_say_the_numbers_they_hold():
    assert CoverageThresholds(warn_below=0.8, error_below=0.5).bands() == (
        "WARN below 0.8, ERROR below 0.5"
    )
    assert DriftThresholds(warn_above=0.02, error_above=0.05).bands() == (
        "WARN above 2%, ERROR above 5%"
    )
    assert BarStalenessThresholds(warn_after_sessions=1, error_after_sessions=3).bands() == (
        "WARN above 1, ERROR above 3"
    )
    assert IndicatorStalenessThresholds().bands() == "WARN when any, ERROR beyond 72 h"
    assert IndicatorStalenessThresholds(warn_after_hours=6).bands() == (
        "WARN beyond 6 h, ERROR beyond 72 h"
    )
    assert StreamStalenessThresholds(warn_after_hours=0.5, error_after_hours=2).bands() == (
        "WARN above 0.5 h, ERROR above 2 h"
    )
    assert ScoreThresholds(warn_below=0.9, error_below=0.7).bands() == (
        "WARN below 0.9, ERROR below 0.7"
    )


def test_the_check_descriptions_in_the_ui_state_the_thresholds_the_checks_use(tmp_path):
    """Each description is built from the thresholds its check judges by, so a number in the
    UI cannot disagree with the number that decides."""
    from ingest_platform.definitions import build_definitions
    from ingest_platform.economic import checks as economic_checks
    from ingest_platform.streaming.kraken import checks as stream_checks

    with pytest.MonkeyPatch.context() as env:
        env.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path))
        graph = build_definitions().resolve_asset_graph()
    described = {
        f"{k.asset_key.to_user_string()}:{k.name}": graph.get_check_spec(k).description or ""
        for k in graph.asset_check_keys
    }
    expected = {
        "market_bars:bar_coverage": CoverageThresholds().bands(),
        "yahoo_daily_bars:bar_coverage": CoverageThresholds().bands(),
        "market_bars:bar_staleness": BarStalenessThresholds().bands(),
        "market_bars:cross_source_drift": DriftThresholds().bands(),
        "market_bars:quality_score": ScoreThresholds().bands(),
        "market_bars:universe_coverage": UniverseCoverageThresholds().bands(),
        "economic_indicators:indicator_coverage": economic_checks.COVERAGE.bands(),
        "economic_indicators:indicator_staleness": economic_checks.STALENESS.bands(),
        "economic_indicators:quality_score": ScoreThresholds().bands(),
        "kraken_book_minute_bars:stream_coverage": stream_checks.COVERAGE.bands(),
        "kraken_book_minute_bars:stream_staleness": stream_checks.STALENESS.bands(),
    }
    for check, bands in expected.items():
        assert bands in described[check], (check, described[check])
