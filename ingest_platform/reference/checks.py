"""The reference domain's checks, wired through the quality factory (functions in
`membership_checks`)."""

from __future__ import annotations

import pandas as pd

from ingest_platform.core.lake import ParquetLake
from ingest_platform.quality.shared.factory import (
    CheckInputs,
    CheckWindow,
    QualityCheck,
    quality_checks,
)
from ingest_platform.quality.shared.finding import Finding
from ingest_platform.reference import membership_checks
from ingest_platform.reference.schema import INDEX_MEMBERSHIP, INSTRUMENTS


def _load(lake: ParquetLake, window: CheckWindow) -> dict[str, pd.DataFrame]:
    return {"intervals": INDEX_MEMBERSHIP.read(lake), "instruments": INSTRUMENTS.read(lake)}


def _counts(inputs: CheckInputs) -> Finding:
    return membership_checks.member_counts(inputs["intervals"])


def _tickers(inputs: CheckInputs) -> Finding:
    return membership_checks.one_instrument_per_ticker(inputs["intervals"])


def _match(inputs: CheckInputs) -> Finding:
    return membership_checks.members_match_instruments(inputs["intervals"], inputs["instruments"])


membership_quality = quality_checks(
    INDEX_MEMBERSHIP,
    [
        QualityCheck(
            "member_counts",
            _counts,
            "Every day's S&P 500 member count within the documented band (ERROR).",
            blocking=True,
            key_figure="days_outside_band",
        ),
        QualityCheck(
            "one_instrument_per_ticker",
            _tickers,
            "No ticker in force for two instruments at once, nor two tickers for one (ERROR).",
            blocking=True,
            key_figure="shared_tickers",
        ),
        QualityCheck(
            "members_match_instruments",
            _match,
            "Today's members are the active S&P 500 equities of instruments, same ids (ERROR).",
            blocking=True,
            key_figure="only_in_membership",
        ),
    ],
    _load,
    reads=[INSTRUMENTS.name],
)

REFERENCE_CHECKS = [membership_quality]
