"""Quality score: one number in 0..1 per symbol or variable, from the other checks' tables.

    score = coverage x freshness x anomaly_factor

- ``coverage``: the coverage ratio (`bars.coverage.coverage_by_key` ``ratio``); a key with nothing
  expected counts 1.
- ``freshness``: from a staleness table (the ``freshness`` column of
  `bars.staleness.bar_staleness_by_symbol`, `bars.staleness.indicator_staleness_by_variable`,
  `stream.staleness.stream_staleness_by_key`; the formula is in `freshness`): 1 up to the WARN
  limit, 0.6 at the ERROR limit, decaying beyond, 0 if never observed; 1 for keys the
  staleness table does not list (or when none is given).
- ``anomaly_factor``: ``(1 - warn_anomaly_penalty) ** warn_rows *
  (1 - error_anomaly_penalty) ** error_rows`` over the key's flagged anomaly rows (defaults
  0.95 per WARN, 0.5 per ERROR).

A product, so any one dimension failing badly fails the score: 3 sessions stale (0.4), one
unadjusted split (0.5), or coverage at 0.55 each put a symbol below the ERROR threshold on
their own, while a symbol at 0.95 coverage with two volume spikes scores 0.86.
WARN below 0.85, ERROR below 0.6 (a score exactly at a threshold passes it).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ingest_platform.quality.shared import wording
from ingest_platform.quality.shared.finding import (
    MAX_OFFENDING_ROWS,
    Finding,
    severity_order,
    status_of,
    status_where,
)
from ingest_platform.quality.shared.frames import require_columns
from ingest_platform.quality.shared.thresholds import ScoreThresholds


def score_by_key(
    coverage: pd.DataFrame,
    *,
    staleness: pd.DataFrame | None = None,
    anomalies: pd.DataFrame | None = None,
    key: str = "symbol",
    thresholds: ScoreThresholds = ScoreThresholds(),  # noqa: B008 - frozen, immutable
) -> pd.DataFrame:
    """Per key of `coverage`: ``coverage``, ``freshness``, ``anomaly_warnings``,
    ``anomaly_errors``, ``anomaly_factor``, ``score``, ``status``; lowest score first.

    Args:
        coverage: `coverage_by_key` output (`key`, ``ratio``): decides which keys are scored.
        staleness: a staleness table (`key`, ``freshness``).
        anomalies: flagged rows (`key`, ``status``), e.g. `bar_anomaly_rows` output.
    """
    t = thresholds
    require_columns(coverage, [key, "ratio"], "coverage")
    keys = pd.Index(coverage[key])
    ratio = coverage["ratio"].fillna(1.0).to_numpy(dtype=float)
    fresh = np.ones(len(keys))
    if staleness is not None:
        require_columns(staleness, [key, "freshness"], "staleness")
        by_key = staleness.drop_duplicates(key).set_index(key)["freshness"]
        fresh = by_key.reindex(keys).fillna(1.0).to_numpy(dtype=float)
    warnings = np.zeros(len(keys), dtype=np.int64)
    errors = np.zeros(len(keys), dtype=np.int64)
    if anomalies is not None and not anomalies.empty:
        require_columns(anomalies, [key, "status"], "anomalies")
        counts = pd.crosstab(anomalies[key], anomalies["status"]).reindex(keys, fill_value=0)
        warnings = counts.get("WARN", pd.Series(0, index=keys)).to_numpy(dtype=np.int64)
        errors = counts.get("ERROR", pd.Series(0, index=keys)).to_numpy(dtype=np.int64)
    factor = (1 - t.warn_anomaly_penalty) ** warnings * (1 - t.error_anomaly_penalty) ** errors
    score = ratio * fresh * factor
    table = pd.DataFrame(
        {
            key: keys.to_numpy(dtype=object),
            "coverage": ratio,
            "freshness": fresh,
            "anomaly_warnings": warnings,
            "anomaly_errors": errors,
            "anomaly_factor": factor,
            "score": score,
            "status": status_where(score, t.warn_below, t.error_below, below=True),
        }
    )
    return severity_order(table, "score", key, ascending=[True, True])


def quality_score(
    coverage: pd.DataFrame,
    *,
    staleness: pd.DataFrame | None = None,
    anomalies: pd.DataFrame | None = None,
    key: str = "symbol",
    thresholds: ScoreThresholds = ScoreThresholds(),  # noqa: B008
) -> Finding:
    """WARN when a key scores below ``warn_below``, ERROR below ``error_below``; figures give
    the minimum, the median and the count below each threshold. Arguments as `score_by_key`."""
    t = thresholds
    table = score_by_key(coverage, staleness=staleness, anomalies=anomalies, key=key, thresholds=t)
    score = table["score"].to_numpy()
    figures: dict[str, float | int] = {
        "keys": len(table),
        "below_warn": int((score < t.warn_below).sum()),
        "below_error": int((score < t.error_below).sum()),
        "warn_below": t.warn_below,
        "error_below": t.error_below,
    }
    if len(score):
        figures["score_min"] = float(score.min())
        figures["score_median"] = float(np.median(score))
    low = table[table["status"] != "PASS"].head(MAX_OFFENDING_ROWS)
    offending = low.assign(
        threshold=np.where(low["score"] < t.error_below, t.error_below, t.warn_below)
    ).reset_index(drop=True)
    n = figures["below_warn"]
    if n:
        named = [
            f"{k} {wording.number(s)} (coverage {wording.number(c)}, freshness "
            f"{wording.number(f)}, anomalies {wording.number(a)})"
            for k, s, c, f, a in zip(
                offending[key], offending["score"], offending["coverage"],
                offending["freshness"], offending["anomaly_factor"], strict=True,
            )
        ]  # fmt: skip
        summary = (
            f"score {wording.number(figures['score_min'])} < {wording.number(t.warn_below)} "
            f"for {wording.plural(int(n), key)}: {wording.listing(named, int(n))}"
        )
    elif len(score):
        summary = (
            f"score >= {wording.number(t.warn_below)} for all {wording.plural(len(score), key)} "
            f"(min {wording.number(figures['score_min'])}, median "
            f"{wording.number(figures['score_median'])})"
        )
    else:
        summary = f"no {wording.nouns(key)} to score"
    return Finding("quality_score", status_of(table["status"]), figures, offending, summary)
