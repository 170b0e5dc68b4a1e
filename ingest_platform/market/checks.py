"""Asset checks of the market datasets.

`fetch_failure_rate` describes a run, not the data: it is emitted by the per-source assets
themselves, with their materialization, and blocks `market_bars` when a source failed on too
many symbols. The data checks (coverage, staleness, drift, anomalies) are declared here too,
through the quality factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSeverity, MetadataValue

from ingest_platform.core.calendars import PRIMARY_CALENDAR
from ingest_platform.core.dataset import Dataset
from ingest_platform.core.lake import ParquetLake
from ingest_platform.core.metadata import markdown_table
from ingest_platform.market.schema import (
    CORPORATE_ACTIONS,
    MARKET_BARS,
    SOURCE_DATASETS,
    YAHOO_DAILY_BARS,
)
from ingest_platform.market.sources.bars import BarsFetch
from ingest_platform.market.unavailable import read_unavailable
from ingest_platform.quality.bars.anomalies import KINDS as ANOMALY_KINDS
from ingest_platform.quality.bars.anomalies import bar_anomaly_rows
from ingest_platform.quality.bars.coverage import coverage as coverage_against
from ingest_platform.quality.bars.coverage import coverage_by_key
from ingest_platform.quality.bars.drift import cross_source_drift
from ingest_platform.quality.bars.expected import expected_sessions
from ingest_platform.quality.bars.flags import anomaly_finding
from ingest_platform.quality.bars.membership import (
    member_sessions,
    split_known_gaps,
    universe_coverage,
)
from ingest_platform.quality.bars.staleness import bar_staleness, bar_staleness_by_symbol
from ingest_platform.quality.shared.factory import (
    CheckInputs,
    ChecksCouldNotRun,
    CheckWindow,
    QualityCheck,
    failure_rate_result,
    quality_checks,
)
from ingest_platform.quality.shared.finding import Finding
from ingest_platform.quality.shared.score import quality_score
from ingest_platform.quality.shared.thresholds import (
    BarStalenessThresholds,
    CoverageThresholds,
    DriftThresholds,
    ScoreThresholds,
    UniverseCoverageThresholds,
)
from ingest_platform.reference import universe
from ingest_platform.reference.membership import INDEX
from ingest_platform.reference.schema import INDEX_MEMBERSHIP, INSTRUMENTS

FAILURE_CHECK = "fetch_failure_rate"
DUPLICATES_CHECK = "source_duplicates"


def failure_rate_check(asset: str, result: BarsFetch, max_failure_rate: float) -> AssetCheckResult:
    """ERROR when more than `max_failure_rate` of the requested symbols failed."""
    return failure_rate_result(
        asset,
        FAILURE_CHECK,
        result.failure_messages(),
        len(result.requested),
        max_failure_rate,
    )


def duplicates_check(asset: str, duplicates: pd.DataFrame) -> AssetCheckResult:
    """Days the source sent more than once: WARN when the copies agree (one was kept), ERROR
    when they disagree (none was kept: the day is missing rather than possibly wrong)."""
    conflicting = int(duplicates["conflicting"].sum()) if len(duplicates) else 0
    named = ", ".join(
        f"{r.symbol} {r.date.date()}" for r in duplicates.head(5).itertuples(index=False)
    )
    more = f" (+{len(duplicates) - 5} more)" if len(duplicates) > 5 else ""
    return AssetCheckResult(
        check_name=DUPLICATES_CHECK,
        asset_key=asset,
        passed=duplicates.empty,
        severity=AssetCheckSeverity.ERROR if conflicting else AssetCheckSeverity.WARN,
        description=(
            "no day was sent twice"
            if duplicates.empty
            else f"{len(duplicates)} day(s) sent more than once, {conflicting} with conflicting "
            f"values: {named}{more}"
        ),
        metadata={
            "duplicated_days": MetadataValue.int(len(duplicates)),
            "conflicting_days": MetadataValue.int(conflicting),
            "offending": markdown_table(duplicates),
        },
    )


# ---- data checks over the lake (quality functions, through the factory) ----------------------

#: Calendar days read before a window so returns and rolling volume have their history.
LOOKBACK = pd.Timedelta(days=45)


def _window_dates(window: CheckWindow) -> tuple[pd.Timestamp, pd.Timestamp]:
    assert window.start is not None and window.end is not None
    return pd.Timestamp(window.start), pd.Timestamp(window.end)


def _with_lookback(dataset: Dataset, lake: ParquetLake, window: CheckWindow) -> pd.DataFrame:
    start, end = _window_dates(window)
    return dataset.read(lake, dataset.scheme.keys_between(start - LOOKBACK, end))


def _actions_since_lookback(lake: ParquetLake, window: CheckWindow) -> pd.DataFrame:
    """Corporate actions from the lookback to the newest the lake holds, not only to the
    window's end, for the drift check: the split-adjusted sources are on the basis of when they
    were fetched (or rebased), so a split after the window puts Alpha Vantage's as-traded
    prices on that basis too. (A window checked after a later split compared NVDA's as-traded
    price with Yahoo's adjusted one: a false 10x drift.)"""
    start, _ = _window_dates(window)
    since = CORPORATE_ACTIONS.scheme.keys_between(start - LOOKBACK, start)
    first = since[0] if since else window.start or ""
    keys = [k for k in lake.partition_keys(CORPORATE_ACTIONS.name) if k >= first]
    return CORPORATE_ACTIONS.read(lake, keys)


def _in_window(frame: pd.DataFrame, window: CheckWindow) -> pd.DataFrame:
    start, end = _window_dates(window)
    return frame[(frame["date"] >= start) & (frame["date"] <= end)]


def load_bars(dataset: Dataset) -> Callable[[ParquetLake, CheckWindow], dict[str, pd.DataFrame]]:
    """What the bar checks of `dataset` read: its bars (with lookback), the instruments, the
    corporate actions, and for drift the per-source datasets over the window."""

    def load(lake: ParquetLake, window: CheckWindow) -> dict[str, pd.DataFrame]:
        everything = INSTRUMENTS.read(lake, columns=["symbol", "calendar", "active", "asset_class"])
        intervals = INDEX_MEMBERSHIP.read(lake)
        frames = {
            "bars": _with_lookback(dataset, lake, window),
            # Staleness is about today's instruments; coverage about each day's members.
            "instruments": universe.traded(everything),
            "others": everything[everything["asset_class"] != "equity"],
            "intervals": intervals[intervals["index"] == INDEX],
            "unavailable": read_unavailable(lake),
            "actions": _with_lookback(CORPORATE_ACTIONS, lake, window),
        }
        if dataset is MARKET_BARS:
            for name, source in SOURCE_DATASETS.items():
                frames[name] = source.read(lake, list(window.keys))
            frames["actions_since"] = _actions_since_lookback(lake, window)
        if frames["bars"].empty:
            raise ChecksCouldNotRun(f"{dataset.name}: no rows in {window.describe()}")
        return frames

    return load


def _primary(unavailable: pd.DataFrame) -> pd.DataFrame:
    """The gaps that leave a member without bars: Yahoo's, the source of the whole universe
    (Polygon and Alpha Vantage only reconcile rotating samples; their gaps are theirs)."""
    return unavailable[unavailable["source"] == "yahoo"]


def _expected(inputs: CheckInputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(symbol, date) expected in the window: each session's index members under the ticker
    in force (`quality.bars.membership`) and every other instrument on its calendar; and apart, the
    member days a source recorded as unavailable (known gaps)."""
    start, end = _window_dates(inputs.window)
    now = inputs.window.now
    members = member_sessions(inputs["intervals"], start, end, settled_by=now)
    bars = _in_window(inputs["bars"], inputs.window)
    members, gaps = split_known_gaps(members, _primary(inputs["unavailable"]), bars)
    others = expected_sessions(inputs["others"], start, end, settled_by=now)
    return pd.concat([others, members[["symbol", "date"]]], ignore_index=True), gaps


def _with_gaps(finding: Finding, gaps: pd.DataFrame) -> Finding:
    """The finding with the known-unavailable member days counted and named apart."""
    if gaps.empty:
        return finding
    names = sorted(set(gaps["symbol"]))
    shown = ", ".join(names[:8]) + (f" (+{len(names) - 8} more)" if len(names) > 8 else "")
    return replace(
        finding,
        figures={
            **finding.figures,
            "known_unavailable_symbols": len(names),
            "known_unavailable_days": len(gaps),
        },
        summary=f"{finding.summary}; known unavailable from a source, not counted: {shown}",
    )


def coverage(inputs: CheckInputs) -> Finding:
    start, end = _window_dates(inputs.window)
    expected, gaps = _expected(inputs)
    found = coverage_against(
        _in_window(inputs["bars"], inputs.window),
        expected,
        start=start,
        end=end,
        check="bar_coverage",
    )
    return _with_gaps(found, gaps)


def universe_share(inputs: CheckInputs) -> Finding:
    start, end = _window_dates(inputs.window)
    members = member_sessions(inputs["intervals"], start, end, settled_by=inputs.window.now)
    bars = _in_window(inputs["bars"], inputs.window)
    members, gaps = split_known_gaps(members, _primary(inputs["unavailable"]), bars)
    return universe_coverage(bars, members, gaps)


def _listed(inputs: CheckInputs) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What staleness judges: every non-member instrument, and each ticker of the members in
    force on some day of the window (from its first to its last member day, `listings`), but
    not one a source recorded as unavailable (a known gap, not a stale feed)."""
    start, end = _window_dates(inputs.window)
    spells = inputs["intervals"]
    spells = spells[
        (spells["added"] <= end) & (spells["removed"].isna() | (spells["removed"] > start))
    ]
    gaps = _primary(inputs["unavailable"])
    spells = spells[~spells["instrument_id"].isin(gaps["instrument_id"])]
    spells = spells.sort_values("added")  # the latest spell of a ticker is its listing
    tickers = pd.DataFrame({"symbol": spells["symbol"], "calendar": PRIMARY_CALENDAR})
    listings = pd.DataFrame(
        {
            "symbol": spells["symbol"],
            "first_date": spells["added"],
            "last_date": spells["removed"] - pd.Timedelta(days=1),
        }
    )
    instruments = pd.concat(
        [inputs["others"][["symbol", "calendar"]], tickers.drop_duplicates("symbol")],
        ignore_index=True,
    )
    return instruments, listings


def staleness(inputs: CheckInputs) -> Finding:
    instruments, listings = _listed(inputs)
    return bar_staleness(inputs["bars"], instruments, inputs.window.now, listings=listings)


NEVER_SPLIT = ("index", "fx", "commodity")
"""Asset classes with no shares to split: their jumps are market moves (^VIX fell 31% in the
sandbox's 2026-12-07 against its last bar in the lake, and read as a 3-for-2 split)."""


def _anomaly_rows(inputs: CheckInputs) -> pd.DataFrame:
    others = inputs["others"]
    never_split = others.loc[others["asset_class"].isin(NEVER_SPLIT), "symbol"]
    rows = bar_anomaly_rows(inputs["bars"], inputs["actions"], never_split=never_split.tolist())
    return _in_window(rows, inputs.window)


def anomalies(inputs: CheckInputs) -> Finding:
    """Every detector over the window, with the lookback as history (judged in the window)."""
    bars = inputs["bars"]
    rows = _anomaly_rows(inputs)
    in_window = _in_window(bars, inputs.window)
    return anomaly_finding(
        "bar_anomalies",
        rows,
        rows_checked=len(in_window),
        symbols_checked=in_window["symbol"].nunique(),
        what="anomaly",
        kinds=ANOMALY_KINDS,
    )


def drift(inputs: CheckInputs) -> Finding:
    return cross_source_drift(
        inputs["yahoo"],
        {"polygon": inputs["polygon"], "alpha_vantage": inputs["alpha_vantage"]},
        corporate_actions=inputs["actions_since"],
        as_traded=("alpha_vantage",),
    )


def score(inputs: CheckInputs) -> Finding:
    start, end = _window_dates(inputs.window)
    bars = _in_window(inputs["bars"], inputs.window)
    expected, _ = _expected(inputs)
    listed, listings = _listed(inputs)
    return quality_score(
        coverage_by_key(bars, expected, start=start, end=end),
        staleness=bar_staleness_by_symbol(
            inputs["bars"], listed, inputs.window.now, listings=listings
        ),
        anomalies=_anomaly_rows(inputs),
    )


COVERAGE = QualityCheck(
    "bar_coverage",
    coverage,
    "Share of each symbol's expected sessions present in the window: index members on the "
    "sessions they were members (under the ticker in force), others on their calendar (FX on "
    f"24/5, equities on NYSE): {CoverageThresholds().bands()}. Member days a source recorded "
    "as unavailable (delisted) are counted apart, not as missing.",
    key_figure="coverage_min",
)
ANOMALIES = QualityCheck(
    "bar_anomalies",
    anomalies,
    "False ticks (robust z of returns), unadjusted splits (a split-ratio jump with no recorded "
    "split), stuck prices, OHLC bounds, duplicate keys, volume outliers; recorded splits and "
    "dividends explain their jumps. ERROR blocks downstream assets.",
    blocking=True,
    key_figure="flagged",
)

yahoo_checks = quality_checks(
    YAHOO_DAILY_BARS,
    [COVERAGE, ANOMALIES],
    load_bars(YAHOO_DAILY_BARS),
    reads=[INSTRUMENTS.name, INDEX_MEMBERSHIP.name, CORPORATE_ACTIONS.name],
)

market_bars_checks = quality_checks(
    MARKET_BARS,
    [
        COVERAGE,
        QualityCheck(
            "bar_staleness",
            staleness,
            "Sessions between each symbol's newest bar and its calendar's last completed "
            f"session: {BarStalenessThresholds().bands()}.",
            key_figure="max_lag_sessions",
        ),
        QualityCheck(
            "cross_source_drift",
            drift,
            "Relative close drift between Yahoo and each secondary source on one split-adjusted "
            f"basis: {DriftThresholds().bands()}; either holds back the warehouse publish.",
            blocking=True,
            key_figure="max_drift",
        ),
        ANOMALIES,
        QualityCheck(
            "universe_coverage",
            universe_share,
            "Per date, the share of that day's S&P 500 members with a bar (members a source "
            f"recorded as unavailable counted apart): {UniverseCoverageThresholds().bands()}.",
            key_figure="share_min",
        ),
        QualityCheck(
            "quality_score",
            score,
            "Per symbol: coverage x freshness x anomaly factor (0..1): "
            f"{ScoreThresholds().bands()}.",
            key_figure="score_min",
        ),
    ],
    load_bars(MARKET_BARS),
    reads=[
        INSTRUMENTS.name,
        INDEX_MEMBERSHIP.name,
        CORPORATE_ACTIONS.name,
        *(d.name for d in SOURCE_DATASETS.values()),
    ],
)

MARKET_CHECKS = [yahoo_checks, market_bars_checks]
