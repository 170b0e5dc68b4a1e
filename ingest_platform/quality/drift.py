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

import numpy as np
import pandas as pd

from ingest_platform.quality import wording
from ingest_platform.quality.adjustment import split_factors
from ingest_platform.quality.finding import MAX_OFFENDING_ROWS, Finding, status_of, status_where
from ingest_platform.quality.frames import day_numbers, encode, pair_keys, require_columns, to_dates
from ingest_platform.quality.thresholds import DriftThresholds

_NAT = np.iinfo(np.int64).min


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
    unknown = set(as_traded) - set(secondaries)
    if unknown:
        raise ValueError(f"as_traded names sources not given: {sorted(unknown)}")
    if as_traded and corporate_actions is None:
        raise ValueError(f"as-traded sources {sorted(as_traded)} need the corporate actions")
    require_columns(primary, ["symbol", "date", price], "primary")
    codes, names = encode(primary["symbol"])
    days = day_numbers(primary["date"])
    keys = pd.Series(pair_keys(codes, days))
    first = (~keys.duplicated()).to_numpy() & (days != _NAT)
    index = pd.Index(keys[first].to_numpy())
    primary_price = primary[price].to_numpy(dtype=float)[first]

    parts = []
    for source, frame in secondaries.items():
        require_columns(frame, ["symbol", "date", price], source)
        s_codes = names.get_indexer(frame["symbol"]).astype(np.int64)
        s_days = day_numbers(frame["date"])
        known = np.flatnonzero((s_codes >= 0) & (s_days != _NAT))
        position = index.get_indexer(pair_keys(s_codes[known], s_days[known]))
        hit = known[position >= 0]
        position = position[position >= 0]
        secondary = frame[price].to_numpy(dtype=float)[hit]
        if source in as_traded:
            assert corporate_actions is not None
            symbols = frame["symbol"].iloc[hit]
            secondary = secondary / split_factors(symbols, s_days[hit], corporate_actions)
        parts.append(
            pd.DataFrame(
                {
                    "code": s_codes[hit],
                    "day": s_days[hit],
                    "source": source,
                    f"primary_{price}": primary_price[position],
                    f"secondary_{price}": secondary,
                }
            )
        )
    rows = pd.concat(parts, ignore_index=True) if parts else _empty(price)
    base = rows[f"primary_{price}"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        drift = np.abs(rows[f"secondary_{price}"].to_numpy(dtype=float) - base) / base
    drift = np.where(base > 0, drift, np.nan)
    out = pd.DataFrame(
        {
            "symbol": names.to_numpy(dtype=object)[rows["code"].to_numpy(dtype=np.int64)],
            "date": to_dates(rows["day"].to_numpy(dtype=np.int64)),
            "source": rows["source"].to_numpy(dtype=object),
            f"primary_{price}": base,
            f"secondary_{price}": rows[f"secondary_{price}"].to_numpy(dtype=float),
            "drift": drift,
        }
    )
    return out.sort_values(
        ["drift", "symbol", "date"], ascending=[False, True, True], na_position="last",
        kind="stable", ignore_index=True,
    )  # fmt: skip


def _empty(price: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "code": np.zeros(0, dtype=np.int64),
            "day": np.zeros(0, dtype=np.int64),
            "source": np.zeros(0, dtype=object),
            f"primary_{price}": np.zeros(0),
            f"secondary_{price}": np.zeros(0),
        }
    )


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
    rows = drift_rows(
        primary, secondaries, corporate_actions=corporate_actions, as_traded=as_traded,
        price=price,
    )  # fmt: skip
    drift = rows["drift"].to_numpy(dtype=float)
    usable = ~np.isnan(drift)
    labels = status_where(np.where(usable, drift, 0.0), t.warn_above, t.error_above)
    figures: dict[str, float | int] = {
        "overlap": int(usable.sum()),
        "unusable": int((~usable).sum()),
        "rows_above_warn": int((labels != "PASS").sum()),
        "rows_above_error": int((labels == "ERROR").sum()),
        "symbols_above_error": int(rows.loc[labels == "ERROR", "symbol"].nunique()),
        "warn_above": t.warn_above,
        "error_above": t.error_above,
    }
    if usable.any():
        figures["max_drift"] = float(drift[usable].max())
        figures["median_drift"] = float(np.median(drift[usable]))
    for source in secondaries:
        mine = usable & (rows["source"].to_numpy() == source)
        figures[f"{source}_overlap"] = int(mine.sum())
        if mine.any():
            figures[f"{source}_max_drift"] = float(drift[mine].max())

    bad = rows[labels != "PASS"].head(MAX_OFFENDING_ROWS)
    bad_labels = labels[labels != "PASS"][: len(bad)]
    offending = bad.assign(
        threshold=np.where(bad_labels == "ERROR", t.error_above, t.warn_above),
        status=bad_labels,
    ).reset_index(drop=True)
    count = figures["rows_above_warn"]
    if count:
        named = [
            f"{s} {wording.day(d)} {src} {wording.percent(x)}"
            for s, d, src, x in zip(
                offending["symbol"], offending["date"], offending["source"], offending["drift"],
                strict=True,
            )
        ]  # fmt: skip
        summary = (
            f"drift {wording.percent(figures['max_drift'])} > {wording.percent(t.warn_above)} on "
            f"{wording.plural(int(count), 'row')}: {wording.listing(named, int(count))}"
        )
    elif usable.any():
        summary = (
            f"drift <= {wording.percent(t.warn_above)} on all {figures['overlap']:,} overlapping "
            f"rows (max {wording.percent(figures['max_drift'])})"
        )
    else:
        summary = "no overlapping rows between the primary and the secondary sources"
    return Finding("cross_source_drift", status_of(labels), figures, offending, summary)
