"""Freshness: the unit-free grade of a lag the quality score multiplies in."""

from __future__ import annotations

from ingest_platform.quality.shared.freshness import FRESHNESS_AT_ERROR, freshness


def test_freshness_is_one_to_the_warn_limit_then_falls_through_the_error_limit():
    lags = [0, 1, 2, 3, 4, 6, float("nan")]
    assert freshness(lags, 0, 2).round(4).tolist() == [1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.0]


def test_a_lag_exactly_at_the_error_limit_scores_the_score_error_threshold():
    assert freshness([7.0], 1.0, 7.0).tolist() == [FRESHNESS_AT_ERROR]
    assert freshness([0.25, 1.0], 0.25, 1.0).tolist() == [1.0, FRESHNESS_AT_ERROR]
