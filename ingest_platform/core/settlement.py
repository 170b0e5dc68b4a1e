"""When a session's daily bar is final: the one rule the ingest and the checks share.

A daily bar is *settled* once its session has closed and `SETTLE` has passed: providers keep
revising the last print and the closing auction for a while. The ingest stores only settled
bars; the coverage checks expect only settled sessions. Both ask here, so a run launched between
the NYSE close and the FX or futures settle (21:00 UTC in summer) drops the unsettled FX and
futures bars *and* the checks do not count those sessions as missing.

Two clocks decide it:

- the wall clock (`now`): a session that has not closed and settled by `now` is unsettled;
- the provider's own stamp, when it gives one (`Stamp`): the instant its data is current as of.
  A stale cached answer that arrives after the close can still carry a mid-session bar; its
  stamp (Alpha Vantage's ``Last Refreshed: 2020-05-08 14:07:03``, a Yahoo chart whose last
  regular trade came before the close) says so. A bar whose stamp precedes its session's close
  plus `SETTLE` is unsettled, whatever the wall clock says.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ingest_platform.core import calendars

#: How long after a session's close its daily bar counts as final.
SETTLE = pd.Timedelta(minutes=30)


def settles_at(day: object, calendar: str) -> pd.Timestamp | None:
    """When `calendar`'s session on `day` settles (UTC), or None if it does not trade then."""
    close = calendars.session_close(pd.Timestamp(day).date(), calendar)
    return None if close is None else close + SETTLE


def settlement_times(days: pd.Series, calendar_of_row: pd.Series) -> pd.Series:
    """When each row's session settles (UTC; NaT where its calendar does not trade that day).

    `days` are session dates, `calendar_of_row` the calendar of each row (null: unknown, NaT).
    One calendar lookup per distinct (calendar, day), not per row.
    """
    out = pd.Series(pd.NaT, index=days.index, dtype="datetime64[ns, UTC]")
    if days.empty:
        return out
    pairs = pd.DataFrame({"calendar": calendar_of_row.to_numpy(), "date": pd.to_datetime(days)})
    known = pairs["calendar"].notna().to_numpy()
    for calendar, group in pairs[known].groupby("calendar", sort=False):
        lo, hi = group["date"].min(), group["date"].max()
        frame = calendars.sessions_frame(lo.date(), hi.date(), str(calendar))
        settle = pd.Series((frame["close_utc"] + SETTLE).to_numpy(), index=frame["date"])
        out.loc[group.index] = settle.reindex(group["date"].to_numpy()).to_numpy()
    return out


def settled_mask(
    days: pd.Series,
    calendar_of_row: pd.Series,
    now: pd.Timestamp,
    stamps: pd.Series | None = None,
) -> np.ndarray:
    """Which rows' sessions have settled by `now` and, where a provider stamp is given, by the
    stamp too. A day the row's calendar does not trade has nothing to wait for: settled.

    `stamps`: per row, the instant the provider's data is current as of (UTC; NaT: the provider
    gave none, the wall clock alone decides).
    """
    settle = settlement_times(days, calendar_of_row)
    pending = settle.notna().to_numpy()
    done = ~pending | (settle <= now).to_numpy()
    if stamps is not None:
        stamp = pd.to_datetime(stamps, utc=True).to_numpy()
        given = ~pd.isna(stamp)
        early = pending & given
        early[early] = stamp[early] < settle.to_numpy()[early]
        done &= ~early
    return done


def stamp_per_row(symbols: pd.Series, stamps: Mapping[str, pd.Timestamp]) -> pd.Series:
    """Each row's provider stamp, from the stamps a fetch recorded per symbol (NaT if none)."""
    return pd.to_datetime(symbols.map(dict(stamps)), utc=True)
