"""Keeping stored history on one split basis when a new split appears.

Yahoo's and Polygon's prices are split-adjusted *as of the day they are fetched*. Without
this, a split announced after a backfill leaves every stored row before it on the old basis,
and a backtest sees a false 90% drop on a 10-for-1 split. So when a run records a split not
seen before:

- Yahoo (the primary): that symbol's stored range before the run is fetched again (one
  request) and its rows rewritten through the validated write path;
- Polygon (split-adjusted as of its fetch): its stored rows fetched before the ex-date are
  divided by the ratio (volume multiplied), which is exactly what Polygon would now serve;
- Alpha Vantage stores as-traded prices and is split-adjusted when consolidated, so it needs
  nothing;
- `market_bars` rebuilds the symbol's partitions before the run from the rebased sources.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from ingest_platform.core import calendars
from ingest_platform.core.dataset import Dataset, DatasetWrite
from ingest_platform.core.lake import ParquetLake
from ingest_platform.market import rules
from ingest_platform.market.schema import CORPORATE_ACTIONS, DailyBars
from ingest_platform.market.sources.bars import BarsFetch, Instrument

PRICES = ("open", "high", "low", "close", "adj_close")


@dataclass(frozen=True)
class Rebasing:
    """One symbol put on a new split basis: which split, how many rows, which partitions."""

    symbol: str
    ex_date: pd.Timestamp
    ratio: float
    rows: int
    partitions: int

    def as_row(self) -> dict[str, object]:
        return {
            "symbol": self.symbol,
            "ex_date": self.ex_date.date().isoformat(),
            "ratio": self.ratio,
            "rows_rewritten": self.rows,
            "partitions_rewritten": self.partitions,
        }


def new_splits(fetched: pd.DataFrame, lake: ParquetLake) -> pd.DataFrame:
    """The splits in `fetched` actions that the lake's corporate actions do not record yet."""
    splits = fetched[fetched["action"] == "split"] if len(fetched) else fetched
    if splits.empty:
        return splits
    keys = sorted(set(CORPORATE_ACTIONS.partition_keys_of(splits["date"])))
    frames = CORPORATE_ACTIONS.read_partitions(lake, keys, skip_corrupt=True)  # unreadable: unknown
    known = (
        pd.concat(frames.values(), ignore_index=True) if frames else CORPORATE_ACTIONS.empty_frame()
    )
    known = known[known["action"] == "split"]
    seen = pd.MultiIndex.from_frame(known[["symbol", "date"]]) if len(known) else None
    index = pd.MultiIndex.from_frame(splits[["symbol", "date"]])
    return splits[~index.isin(seen)] if seen is not None else splits


def splits_in(lake: ParquetLake, keys: Sequence[str]) -> pd.DataFrame:
    """The recorded splits whose ex-date falls in the partitions `keys`."""
    actions = CORPORATE_ACTIONS.read(
        lake, list(keys), columns=["symbol", "date", "action", "value"]
    )
    return actions[actions["action"] == "split"].reset_index(drop=True)


def known_splits(
    lake: ParquetLake, symbols: Iterable[str] | None = None, fetched: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Every split the lake records (of `symbols`), with those a run just `fetched`: what a
    stored row may still be on the wrong side of.

    Not only the splits in the run's own partitions: a range that starts after a split it
    never saw (a backfill of the days after a missed week) must still rebase what came before.
    """
    recorded = splits_in(lake, lake.partition_keys(CORPORATE_ACTIONS.name))
    parts = [recorded]
    if fetched is not None and len(fetched):
        parts.append(
            fetched.loc[fetched["action"] == "split", ["symbol", "date", "action", "value"]]
        )
    splits = (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
        else recorded
    )
    if symbols is not None:
        splits = splits[splits["symbol"].isin(set(symbols))]
    return (
        splits.drop_duplicates(["symbol", "date"])
        .sort_values(["date", "symbol"])
        .reset_index(drop=True)
    )


def stale_by_split(
    dataset: Dataset, lake: ParquetLake, splits: pd.DataFrame
) -> list[tuple[pd.Series, list[str]]]:
    """For each split, the partitions of `dataset` holding rows of its symbol dated before its
    ex-date and fetched before its session opened: the rows still on the old basis (rows
    fetched since are already adjusted). One read of three columns serves every split."""
    if splits.empty:
        return []
    scheme = dataset.scheme
    last = scheme.key_of(splits["date"].max())
    keys = [k for k in lake.partition_keys(dataset.name) if k < last]
    if not keys:
        return []
    # An unreadable partition is skipped: it holds no row anyone can read, and whatever
    # rewrites it (a refresh, market_bars' rebuild) writes it on the current basis.
    frame, _ = lake.read_checked(dataset.name, keys, columns=["symbol", "date", "ingested_at"])
    if frame is None:
        return []
    frame = frame[frame["symbol"].isin(set(splits["symbol"]))]
    fetched_at = pd.to_datetime(frame["ingested_at"], utc=True)
    out = []
    for _, split in splits.iterrows():
        stale = (
            (frame["symbol"] == split["symbol"])
            & (frame["date"] < split["date"])
            & (fetched_at < _opened(split["date"]))
        )
        if stale.any():
            out.append((split, sorted(set(scheme.keys_of(frame.loc[stale, "date"])))))
    return out


def stale_keys(
    dataset: Dataset, lake: ParquetLake, symbol: str, ex_date: pd.Timestamp
) -> list[str]:
    """`stale_by_split` for one split."""
    split = pd.DataFrame({"symbol": [symbol], "date": [pd.Timestamp(ex_date)], "value": [1.0]})
    found = stale_by_split(dataset, lake, split)
    return found[0][1] if found else []


def _opened(ex_date: pd.Timestamp) -> pd.Timestamp:
    """When the ex-date's session opened: from then on, providers serve the new basis."""
    return calendars.session_open(ex_date, calendars.PRIMARY_CALENDAR) or pd.Timestamp(
        ex_date, tz="America/New_York"
    )


def rebase_reason(symbol: str, ratio: float) -> str:
    """What a partition rewritten for a split says on its materialization."""
    return f"rebased_for_split: {symbol} {ratio:g}:1"


def refetch_primary(
    dataset: Dataset,
    lake: ParquetLake,
    instrument: Instrument,
    split: pd.Series,
    fetch: Callable[[list[Instrument], dt.date, dt.date], BarsFetch],
    stale: Sequence[str] | None = None,
) -> tuple[Rebasing | None, str | None, DatasetWrite | None]:
    """Fetch `instrument`'s stored range on the old basis again (one request) and rewrite its
    rows; returns the rebasing and the write (whose partitions the caller records), or why it
    could not be done (the old rows then stay, named). `stale`: the partitions on the old
    basis, when the caller found them already (`stale_by_split`)."""
    if stale is None:
        stale = stale_keys(dataset, lake, instrument.symbol, split["date"])
    if not stale:
        return None, None, None
    keys = [k for k in lake.partition_keys(dataset.name) if stale[0] <= k <= stale[-1]]
    result = fetch([instrument], pd.Timestamp(keys[0]).date(), pd.Timestamp(keys[-1]).date())
    if instrument.symbol in result.failures:
        return None, result.failures[instrument.symbol].detail, None
    bars = result.bars
    bars = bars[rules.on_calendar(bars, [instrument], keys)] if len(bars) else bars
    valid = rules.quarantine_invalid(bars.reset_index(drop=True), DailyBars).valid
    fresh = dataset.split(valid, keys)
    existing = dataset.read_partitions(lake, keys)
    contents = {
        key: rules.merge_partition(existing.get(key), fresh[key], refresh=True) for key in keys
    }
    reason = rebase_reason(instrument.symbol, float(split["value"]))
    write = dataset.write(lake, contents, existing, reasons=dict.fromkeys(keys, reason))
    rebasing = Rebasing(
        instrument.symbol, split["date"], float(split["value"]), len(bars), write.rewritten
    )
    return rebasing, None, write


def rebase_stored(
    dataset: Dataset, lake: ParquetLake, splits: pd.DataFrame
) -> tuple[list[Rebasing], DatasetWrite | None]:
    """Divide the stored rows of each split symbol dated before its ex-date and fetched before
    it by the ratio (volume multiplied)."""
    done: list[Rebasing] = []
    contents: dict[str, pd.DataFrame] = {}
    existing: dict[str, pd.DataFrame] = {}
    reasons: dict[str, str] = {}
    for split, keys in stale_by_split(dataset, lake, splits):
        symbol, ex_date, ratio = str(split["symbol"]), split["date"], float(split["value"])
        rows = partitions = 0
        for key, frame in dataset.read_partitions(lake, keys).items():
            existing.setdefault(key, frame)
            current = contents.get(key, frame)
            rebased, changed = split_adjust_stale(current, symbol, ex_date, ratio)
            if changed:
                contents[key] = rebased
                rows += changed
                partitions += 1
                reason = rebase_reason(symbol, ratio)
                reasons[key] = f"{reasons[key]}; {reason}" if key in reasons else reason
        if rows:
            done.append(Rebasing(symbol, ex_date, ratio, rows, partitions))
    if not contents:
        return done, None
    return done, dataset.write(lake, contents, existing, reasons=reasons)


def split_adjust_stale(
    frame: pd.DataFrame, symbol: str, ex_date: pd.Timestamp, ratio: float
) -> tuple[pd.DataFrame, int]:
    """Rows of `symbol` dated before `ex_date` and fetched before its session opened, put on
    the post-split basis; with how many rows changed."""
    stale = (
        (frame["symbol"] == symbol)
        & (frame["date"] < ex_date)
        & (pd.to_datetime(frame["ingested_at"], utc=True) < _opened(ex_date))
    )
    if not stale.any():
        return frame, 0
    out = frame.copy()
    for column in PRICES:
        out.loc[stale, column] = out.loc[stale, column] / ratio
    out.loc[stale, "volume"] = (out.loc[stale, "volume"] * ratio).round().astype("int64")
    return out, int(stale.sum())
