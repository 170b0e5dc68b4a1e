"""FRED payloads to canonical frames: observations by real-time period, series metadata, the
release calendar. Pure functions over parsed JSON, so each is tested on fixtures.

Real-time periods. FRED's ``realtime_start``/``realtime_end`` are inclusive at both ends: a
value was the published one from its start day through its end day. ``9999-12-31`` means "still
current"; it becomes ``NaT`` here, not a far-future sentinel, because:

- pandas' nanosecond timestamps stop at 2262-04-11, so FRED's date cannot be kept as it is, and
  any stand-in (2262-04-11, ``Timestamp.max``) is a real-looking date that comparisons accept
  without a thought, and would have to be recognised again on every write back to FRED's form;
- ``NaT`` is a Parquet null, so it round-trips through the lake unchanged, and an as-of read
  must say what "open" means: ``(realtime_start <= t) & (realtime_end.isna() | (t <=
  realtime_end))``.
``realtime_start`` is never null, so a null end cannot be mistaken for a missing row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ingest_platform.core.http.errors import MalformedPayload

SOURCE = "fred"
#: FRED's "still current" end of a real-time period.
OPEN_END = "9999-12-31"
OBSERVATION_COLUMNS = ["series_id", "date", "value", "realtime_start", "realtime_end"]
CALENDAR_COLUMNS = ["release_id", "release_name", "date", "series_id", "scheduled"]
SERIES_COLUMNS = [
    "series_id",
    "title",
    "frequency",
    "frequency_short",
    "units",
    "seasonal_adjustment",
    "last_updated",
    "observation_start",
    "observation_end",
]


def empty_observations() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "series_id": pd.Series(dtype=object),
            "date": pd.Series(dtype="datetime64[ns]"),
            "value": pd.Series(dtype=float),
            "realtime_start": pd.Series(dtype="datetime64[ns]"),
            "realtime_end": pd.Series(dtype="datetime64[ns]"),
        }
    )


def _dates(values: Sequence[str], series_id: str, field: str) -> pd.Series:
    try:
        return pd.Series(pd.to_datetime(pd.Series(values, dtype=object), format="%Y-%m-%d"))
    except (ValueError, TypeError) as exc:
        raise MalformedPayload(SOURCE, f"unreadable {field}: {exc}", series_id) from None


def observations_frame(rows: Sequence[Mapping[str, Any]], series_id: str) -> pd.DataFrame:
    """FRED observation rows (any number of pages and real-time chunks) as canonical rows.

    ``"."`` becomes NaN (a known-missing value, e.g. a bond-market holiday); ``9999-12-31``
    becomes NaT (see the module docstring). Periods that a split request cut in two are joined
    again (`coalesce_periods`), exact duplicates are dropped, and two different values for one
    observation and real-time start are refused as a malformed answer.
    """
    if not rows:
        return empty_observations()
    try:
        raw = pd.DataFrame(
            {
                "date": [r["date"] for r in rows],
                "value": [r["value"] for r in rows],
                "realtime_start": [r["realtime_start"] for r in rows],
                "realtime_end": [r["realtime_end"] for r in rows],
            }
        )
        values = [np.nan if v == "." else float(v) for v in raw["value"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedPayload(SOURCE, f"unreadable observation row: {exc!r}", series_id) from None
    open_end = raw["realtime_end"] == OPEN_END
    ends = _dates(raw["realtime_end"].where(~open_end, "1970-01-01").tolist(), series_id, "end")
    frame = pd.DataFrame(
        {
            "series_id": series_id,
            "date": _dates(raw["date"].tolist(), series_id, "date"),
            "value": np.asarray(values, dtype=float),
            "realtime_start": _dates(raw["realtime_start"].tolist(), series_id, "start"),
            "realtime_end": ends.where(~open_end.to_numpy(), pd.NaT),
        }
    )
    frame = frame.drop_duplicates(ignore_index=True)
    clash = frame.duplicated(["date", "realtime_start"], keep=False)
    if clash.any():
        first = frame[clash].iloc[0]
        raise MalformedPayload(
            SOURCE,
            f"two values for {first['date'].date()} from {first['realtime_start'].date()}",
            series_id,
        )
    return coalesce_periods(frame)


def coalesce_periods(frame: pd.DataFrame) -> pd.DataFrame:
    """Join consecutive periods of one observation that carry the same value.

    A real-time range split into chunks (FRED's 2,000-vintage cap) comes back with a period
    that spans a chunk boundary cut in two: [a, boundary - 1] and [boundary, b]. Equal values
    (NaN equal to NaN) in touching periods are one period.
    """
    if frame.empty:
        return frame.reset_index(drop=True)
    ordered = frame.sort_values(["series_id", "date", "realtime_start"], ignore_index=True)
    groups = ordered.groupby(["series_id", "date"], sort=False)
    previous_end = groups["realtime_end"].shift()
    previous_value = groups["value"].shift()
    same_value = (ordered["value"] == previous_value) | (
        ordered["value"].isna() & previous_value.isna() & previous_end.notna()
    )
    touching = (previous_end + pd.Timedelta(days=1)) == ordered["realtime_start"]
    starts = ~(same_value & touching)
    ends = starts.shift(-1, fill_value=True)
    merged = ordered[starts.to_numpy()].reset_index(drop=True)
    merged["realtime_end"] = ordered.loc[ends.to_numpy(), "realtime_end"].to_numpy()
    return merged[OBSERVATION_COLUMNS]


@dataclass(frozen=True)
class SeriesInfo:
    """What ``fred/series`` says about a series."""

    series_id: str
    title: str
    frequency: str
    frequency_short: str
    units: str
    seasonal_adjustment: str
    last_updated: pd.Timestamp  # UTC
    observation_start: pd.Timestamp | None
    observation_end: pd.Timestamp | None

    def as_row(self) -> dict[str, Any]:
        return {c: getattr(self, c) for c in SERIES_COLUMNS}


def series_info(payload: Mapping[str, Any], series_id: str) -> SeriesInfo:
    """The one entry of a ``fred/series`` answer."""
    entries = payload.get("seriess")
    if not isinstance(entries, list) or len(entries) != 1:
        raise MalformedPayload(SOURCE, "expected exactly one entry in 'seriess'", series_id)
    entry = entries[0]

    def day(name: str) -> pd.Timestamp | None:
        raw = entry.get(name) or ""
        return pd.Timestamp(raw) if raw else None

    try:
        return SeriesInfo(
            series_id=str(entry["id"]),
            title=str(entry["title"]),
            frequency=str(entry["frequency"]),
            frequency_short=str(entry["frequency_short"]),
            units=str(entry["units"]),
            seasonal_adjustment=str(entry["seasonal_adjustment"]),
            # "2024-05-10 07:38:02-05": FRED stamps updates in US Central time.
            last_updated=pd.Timestamp(entry["last_updated"]).tz_convert("UTC"),
            observation_start=day("observation_start"),
            observation_end=day("observation_end"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedPayload(SOURCE, f"unreadable series entry: {exc!r}", series_id) from None


def series_table(infos: Iterable[SeriesInfo]) -> pd.DataFrame:
    rows = [info.as_row() for info in infos]
    frame = pd.DataFrame(rows, columns=SERIES_COLUMNS)
    for column in ("observation_start", "observation_end"):
        frame[column] = pd.to_datetime(frame[column])
    frame["last_updated"] = pd.to_datetime(frame["last_updated"], utc=True)
    return frame


def release_of(payload: Mapping[str, Any], series_id: str) -> tuple[int, str]:
    """(release id, release name) from a ``fred/series/release`` answer."""
    releases = payload.get("releases")
    if not isinstance(releases, list) or not releases:
        raise MalformedPayload(SOURCE, "no release in 'releases'", series_id)
    try:
        return int(releases[0]["id"]), str(releases[0]["name"])
    except (KeyError, TypeError, ValueError) as exc:
        raise MalformedPayload(SOURCE, f"unreadable release: {exc!r}", series_id) from None


def release_calendar(
    releases: Mapping[str, tuple[int, str]],
    dates: Mapping[int, Sequence[dt.date]],
    today: dt.date,
) -> pd.DataFrame:
    """One row per (release, date, series of ours in that release), ``scheduled`` after `today`.

    `releases` maps each series to its (release id, name); `dates` each release id to its
    release dates.
    """
    rows = [
        (release_id, name, day, series_id, day > today)
        for series_id, (release_id, name) in sorted(releases.items())
        for day in dates.get(release_id, ())
    ]
    frame = pd.DataFrame(rows, columns=CALENDAR_COLUMNS)
    frame["release_id"] = frame["release_id"].astype("int64")
    frame["release_name"] = frame["release_name"].astype(object)
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    frame["series_id"] = frame["series_id"].astype(object)
    frame["scheduled"] = frame["scheduled"].astype(bool)
    return frame.sort_values(["release_id", "date", "series_id"], ignore_index=True)
