"""Cross-source drift: the relative close difference on every (symbol, date) two sources share.

Contract on basis: every frame compared must be on ONE basis, split-adjusted. The primary
(Yahoo's close) and Polygon's default aggregates are; Alpha Vantage's TIME_SERIES_DAILY is as
traded, so name such sources in ``as_traded`` and pass the corporate-actions frame: their
prices are split-adjusted here (`adjustment.split_factors`) before comparing. Dividends never
enter: a split-adjusted close is not dividend-adjusted on any source, and ``adj_close`` is not
compared.

drift = |secondary - primary| / primary, per overlapping row; WARN above ``warn_above``
(0.5%), ERROR above ``error_above`` (1%).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest_platform.quality.bars.adjustment import split_factors
from ingest_platform.quality.shared import wording
from ingest_platform.quality.shared.finding import MAX_OFFENDING_ROWS, Finding, Status, status_where
from ingest_platform.quality.shared.frames import (
    day_numbers,
    encode,
    pair_keys,
    require_columns,
    to_dates,
)
from ingest_platform.quality.shared.thresholds import DriftThresholds

_NAT = np.iinfo(np.int64).min


@dataclass(frozen=True)
class _Overlap:
    """Every overlapping row as arrays, sorted worst first (largest drift, NaN last)."""

    names: np.ndarray  # symbol per code
    sources: tuple[str, ...]
    code: np.ndarray
    day: np.ndarray
    source: np.ndarray  # index into `sources`
    base: np.ndarray
    other: np.ndarray
    drift: np.ndarray

    def frame(self, rows: slice | np.ndarray, price: str) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "symbol": self.names[self.code[rows]],
                "date": to_dates(self.day[rows]),
                "source": np.asarray(self.sources, dtype=object)[self.source[rows]],
                f"primary_{price}": self.base[rows],
                f"secondary_{price}": self.other[rows],
                "drift": self.drift[rows],
            }
        )


def _overlap(
    primary: pd.DataFrame,
    secondaries: Mapping[str, pd.DataFrame],
    corporate_actions: pd.DataFrame | None,
    as_traded: Collection[str],
    price: str,
) -> _Overlap:
    unknown = set(as_traded) - set(secondaries)
    if unknown:
        raise ValueError(f"as_traded names sources not given: {sorted(unknown)}")
    if as_traded and corporate_actions is None:
        raise ValueError(f"as-traded sources {sorted(as_traded)} need the corporate actions")
    require_columns(primary, ["symbol", "date", price], "primary")
    codes, names = encode(primary["symbol"])
    days = day_numbers(primary["date"])
    keys = pair_keys(codes, days)
    # Sorted keys, first of each duplicate: secondaries then join by binary search.
    order = np.argsort(keys, kind="stable")
    order = order[days[order] != _NAT]
    sorted_keys = keys[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    order, sorted_keys = order[first], sorted_keys[first]
    primary_price = primary[price].to_numpy(dtype=float)[order]

    found: dict[str, list[np.ndarray]] = {"code": [], "day": [], "source": [], "other": []}
    base_parts = []
    for index, (source, frame) in enumerate(secondaries.items()):
        require_columns(frame, ["symbol", "date", price], source)
        s_codes = names.get_indexer(frame["symbol"]).astype(np.int64)
        s_days = day_numbers(frame["date"])
        known = np.flatnonzero((s_codes >= 0) & (s_days != _NAT))
        wanted = pair_keys(s_codes[known], s_days[known])
        at = np.minimum(np.searchsorted(sorted_keys, wanted), max(len(sorted_keys) - 1, 0))
        matched = (sorted_keys[at] == wanted) if len(sorted_keys) else np.zeros(0, dtype=bool)
        hit, at = known[matched], at[matched]
        secondary = frame[price].to_numpy(dtype=float)[hit]
        if source in as_traded:
            assert corporate_actions is not None
            symbols = frame["symbol"].iloc[hit]
            secondary = secondary / split_factors(symbols, s_days[hit], corporate_actions)
        found["code"].append(s_codes[hit])
        found["day"].append(s_days[hit])
        found["source"].append(np.full(len(hit), index, dtype=np.int64))
        found["other"].append(secondary)
        base_parts.append(primary_price[at])
    joined = {k: np.concatenate(v) if v else np.zeros(0) for k, v in found.items()}
    base = np.concatenate(base_parts) if base_parts else np.zeros(0)
    code, day = joined["code"].astype(np.int64), joined["day"].astype(np.int64)
    other = joined["other"].astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        drift = np.where(base > 0, np.abs(other - base) / base, np.nan)
    worst = np.lexsort((day, code, np.where(np.isnan(drift), np.inf, -drift)))
    return _Overlap(
        names=names.to_numpy(dtype=object),
        sources=tuple(secondaries),
        code=code[worst],
        day=day[worst],
        source=joined["source"].astype(np.int64)[worst],
        base=base[worst],
        other=other[worst],
        drift=drift[worst],
    )


def drift_rows(
    primary: pd.DataFrame,
    secondaries: Mapping[str, pd.DataFrame],
    *,
    corporate_actions: pd.DataFrame | None = None,
    as_traded: Collection[str] = (),
    price: str = "close",
) -> pd.DataFrame:
    """Every overlapping row: ``symbol``, ``date``, ``source``, ``primary_<price>``,
    ``secondary_<price>`` (split-adjusted), ``drift``; largest drift first.

    Args:
        primary: ``symbol``, ``date``, `price`, split-adjusted. A duplicated (symbol, date)
            compares against its first row (duplicates are the anomaly check's business).
        secondaries: frames by source name, same columns.
        corporate_actions: ``symbol``, ``date``, ``action``, ``value``; required when
            `as_traded` names a source.
        as_traded: secondary sources whose prices are as traded (``alpha_vantage``).
    """
    overlap = _overlap(primary, secondaries, corporate_actions, as_traded, price)
    return overlap.frame(slice(None), price)


def cross_source_drift(
    primary: pd.DataFrame,
    secondaries: Mapping[str, pd.DataFrame],
    *,
    corporate_actions: pd.DataFrame | None = None,
    as_traded: Collection[str] = (),
    price: str = "close",
    thresholds: DriftThresholds = DriftThresholds(),  # noqa: B008 - frozen, immutable
) -> Finding:
    """WARN when any overlapping row drifts above ``warn_above``, ERROR above ``error_above``.
    Arguments as in `drift_rows`."""
    t = thresholds
    overlap = _overlap(primary, secondaries, corporate_actions, as_traded, price)
    drift = overlap.drift
    usable = ~np.isnan(drift)
    # Rows are sorted by drift, largest first: the offending ones are a prefix.
    above_warn = int((drift > t.warn_above).sum())
    above_error = int((drift > t.error_above).sum())
    figures: dict[str, float | int] = {
        "overlap": int(usable.sum()),
        "unusable": int((~usable).sum()),
        "rows_above_warn": above_warn,
        "rows_above_error": above_error,
        "symbols_above_error": len(np.unique(overlap.code[:above_error])),
        "warn_above": t.warn_above,
        "error_above": t.error_above,
    }
    if usable.any():
        figures["max_drift"] = float(drift[usable].max())
        figures["median_drift"] = float(np.median(drift[usable]))
    for index, source in enumerate(overlap.sources):
        mine = usable & (overlap.source == index)
        figures[f"{source}_overlap"] = int(mine.sum())
        if mine.any():
            figures[f"{source}_max_drift"] = float(drift[mine].max())

    shown = min(above_warn, MAX_OFFENDING_ROWS)
    offending = overlap.frame(slice(0, shown), price)
    labels = status_where(offending["drift"].to_numpy(), t.warn_above, t.error_above)
    offending = offending.assign(
        threshold=np.where(labels == "ERROR", t.error_above, t.warn_above), status=labels
    )
    if above_warn:
        named = [
            f"{s} {wording.day(d)} {src} {wording.percent(x)}"
            for s, d, src, x in zip(
                offending["symbol"], offending["date"], offending["source"], offending["drift"],
                strict=True,
            )
        ]  # fmt: skip
        summary = (
            f"drift {wording.percent(figures['max_drift'])} > {wording.percent(t.warn_above)} on "
            f"{wording.plural(above_warn, 'row')}: {wording.listing(named, above_warn)}"
        )
    elif usable.any():
        summary = (
            f"drift <= {wording.percent(t.warn_above)} on all {figures['overlap']:,} overlapping "
            f"rows (max {wording.percent(figures['max_drift'])})"
        )
    else:
        summary = "no overlapping rows between the primary and the secondary sources"
    status = Status.ERROR if above_error else Status.WARN if above_warn else Status.PASS
    return Finding("cross_source_drift", status, figures, offending, summary)
