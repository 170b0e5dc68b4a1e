"""Point-in-time reads: what was known at a given moment, never what was learned later.

A backtest that sees a revised number it could not have known on that day is silently wrong.
These two functions are the public way to read the long, vintaged datasets
(`economic_indicators`, `variable_series`) without look-ahead:

- `known_at(frame, as_of)`: one row per (series, observation date): the latest vintage known
  at `as_of` (``known_at <= as_of``) whose real-time period still contains `as_of`.
  Observations not yet known are absent. A vintage that says "missing" stays null: an older
  value is never substituted, because on that day the published value *was* missing.
- `read(dataset, as_of=None, ...)`: the same, straight from the lake; ``as_of=None`` gives
  the latest known values.

Time. `as_of` may be a timestamp (naive means UTC) or a date; a date means "on that day", the
end of that UTC day, as ALFRED dates its real-time periods: a value released on a day counts
as known that day. (FRED does not time its releases; a user who needs intraday care should
ask for the day before.)

Unlike fredapi's ``get_series_as_of_date``, which returns every vintage up to the date, these
return exactly one value per observation: the one a user could have read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from ingest_platform.core import settings
from ingest_platform.core.dataset import Dataset
from ingest_platform.core.lake import LakeError, ParquetLake
from ingest_platform.core.metadata import shortlist
from ingest_platform.economic.schema import ECONOMIC_INDICATORS
from ingest_platform.reference.schema import INDEX_MEMBERSHIP
from ingest_platform.registry.schema import VARIABLE_MAPPINGS
from ingest_platform.variables.schema import VARIABLE_SERIES

__all__ = ["DATASETS", "known_at", "read", "universe"]

#: The datasets `read` knows, by name.
DATASETS: dict[str, Dataset] = {d.name: d for d in (ECONOMIC_INDICATORS, VARIABLE_SERIES)}
_REQUIRED = ("date", "value", "realtime_start", "realtime_end", "known_at")


def _registered(lake: ParquetLake, frame: pd.DataFrame) -> set[str]:
    """The variables a caller may ask for: the registry's (as `variable_mappings` holds them),
    so a real variable whose first value became known after `as_of` gives an empty answer, not
    "no such variable"; without that dataset, the variables of what was read."""
    try:
        mappings = VARIABLE_MAPPINGS.read(lake, columns=["variable"])
    except LakeError:
        return set(frame["variable"])
    return set(mappings["variable"]) | set(frame["variable"])


def _instant(as_of: pd.Timestamp | dt.datetime | dt.date | str) -> pd.Timestamp:
    """`as_of` as a UTC timestamp; a bare date is the end of that UTC day."""
    if isinstance(as_of, str) and len(as_of) == 10:
        as_of = dt.date.fromisoformat(as_of)
    if isinstance(as_of, dt.date) and not isinstance(as_of, dt.datetime):
        return pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(days=1) - pd.Timedelta(1, "ns")
    stamp = pd.Timestamp(as_of)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def known_at(
    frame: pd.DataFrame, as_of: pd.Timestamp | dt.datetime | dt.date | str
) -> pd.DataFrame:
    """One row per (series, date): the value known at `as_of` (see the module docstring).

    `frame` has the long columns: ``series_id`` or ``variable`` (both when present), ``date``,
    ``value``, ``realtime_start``, ``realtime_end`` (null: still current), ``known_at``.
    """
    missing = [c for c in _REQUIRED if c not in frame.columns]
    series = [c for c in ("variable", "series_id") if c in frame.columns]
    if missing or not series:
        need = missing + ([] if series else ["series_id or variable"])
        raise ValueError(f"known_at: the frame lacks column(s) {need}")
    at = _instant(as_of)
    known = pd.to_datetime(frame["known_at"], utc=True)
    day = at.tz_localize(None).normalize()
    end = pd.to_datetime(frame["realtime_end"])
    current = (known <= at) & (end.isna() | (day <= end))
    visible = frame[current.to_numpy()]
    if visible.empty:
        return visible.reset_index(drop=True)
    order = visible.assign(_known=known[current.to_numpy()].to_numpy()).sort_values(
        [*series, "date", "_known", "realtime_start"], kind="stable"
    )
    latest = order.drop_duplicates([*series, "date"], keep="last")
    return latest.drop(columns="_known").sort_values([*series, "date"]).reset_index(drop=True)


def read(
    dataset: str | Dataset,
    as_of: pd.Timestamp | dt.datetime | dt.date | str | None = None,
    *,
    variables: Sequence[str] | None = None,
    start: dt.date | str | None = None,
    end: dt.date | str | None = None,
    lake: ParquetLake | None = None,
) -> pd.DataFrame:
    """The values of `dataset` known at `as_of` (default: the latest known), from the lake.

    `variables` keeps those variables; `start`/`end` bound the observation dates (inclusive).
    Only partitions that can hold something known by `as_of` are read (the dataset is
    partitioned by the month values became known).
    """
    chosen = DATASETS.get(dataset) if isinstance(dataset, str) else dataset
    if chosen is None:
        raise ValueError(f"asof.read: unknown dataset {dataset!r}; known: {sorted(DATASETS)}")
    lake = lake or ParquetLake(root=settings.lake_root())
    at = _instant(as_of) if as_of is not None else settings.now()
    last_month = chosen.scheme.key_of(at)
    keys = [k for k in lake.partition_keys(chosen.name) if k <= last_month]
    frame = chosen.read(lake, keys)
    if variables is not None:
        unknown = sorted(set(variables) - _registered(lake, frame))
        if unknown:
            raise ValueError(f"asof.read: no such variable in {chosen.name}: {shortlist(unknown)}")
        frame = frame[frame["variable"].isin(variables)]
    if start is not None:
        frame = frame[frame["date"] >= pd.Timestamp(start)]
    if end is not None:
        frame = frame[frame["date"] <= pd.Timestamp(end)]
    return known_at(frame, at)


#: The indices `universe` knows: their name in `index_membership`.
INDICES = ("sp500",)


def universe(
    index: str = "sp500",
    as_of: dt.date | dt.datetime | pd.Timestamp | str | None = None,
    *,
    lake: ParquetLake | None = None,
) -> pd.DataFrame:
    """The members of `index` on `as_of` (default: today): ``instrument_id``, ``symbol`` (the
    ticker in force that day), ``security`` and ``added`` (the day that ticker took effect),
    sorted by symbol. A member that joined later is absent; one removed later is present.

    A changes row takes effect before the open of its date, so on the day of a change the new
    list applies. Reads `index_membership` from the lake; a date before the history's start
    (2018-01-01) is refused rather than answered with today's list.
    """
    if index not in INDICES:
        raise ValueError(f"asof.universe: unknown index {index!r}; known: {list(INDICES)}")
    lake = lake or ParquetLake(root=settings.lake_root())
    try:
        intervals = INDEX_MEMBERSHIP.read(lake)
    except LakeError as exc:
        raise LakeError(f"{exc}; materialize the `index_membership` asset first") from exc
    intervals = intervals[intervals["index"] == index]
    at = _instant(as_of) if as_of is not None else settings.now()
    day = pd.Timestamp(pd.Timestamp(at).tz_convert("UTC").date())  # both are UTC-aware
    first = intervals["added"].min()
    if pd.isna(first) or day < first:
        raise ValueError(f"asof.universe: {index} membership is known from {first:%Y-%m-%d} on")
    on = (intervals["added"] <= day) & (intervals["removed"].isna() | (intervals["removed"] > day))
    members = intervals.loc[on, ["instrument_id", "symbol", "security", "added"]]
    return members.sort_values("symbol", ignore_index=True)
