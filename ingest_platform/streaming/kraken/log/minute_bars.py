"""Minute bars from a day of the stream log: plain rules, no Dagster.

`compact_day` replays one UTC day of the log (re-verifying every checksum) and summarises the
verified book into 1-minute mid and spread bars per pair, with trade counts and volume and a
flag for minutes a recorded gap overlaps. A day whose log does not verify builds nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ingest_platform.streaming.kraken.log.replay import ReplayReport, missing_days, replay
from ingest_platform.streaming.kraken.log.segments import read_kind
from ingest_platform.streaming.kraken.schemas import KRAKEN_BOOK_MINUTE_BARS


class NoLogForDay(LookupError):
    """The log holds no book rows for the day: there is nothing to build bars from."""

    def __init__(self, day: str, root: str | Path) -> None:
        super().__init__(f"no stream log for {day} under {root} (did the stream run that day?)")
        self.day = day


class DayNotVerified(ValueError):
    """The day's log does not replay cleanly; `report` says what failed."""

    def __init__(self, day: str, report: ReplayReport) -> None:
        super().__init__(
            f"the {day} stream log does not verify; no bars built.\n{report.summary()}"
        )
        self.day = day
        self.report = report


_TRADE_BAR_COLUMNS = ["recv_ts", "symbol", "type", "price", "qty", "trade_id"]


class TopOfBook:
    """Collects the best bid and ask after every verified book row (a replay ``on_verified``)."""

    def __init__(self) -> None:
        self.symbol: list[str] = []
        self.recv_ts: list[Any] = []
        self.session: list[str] = []
        self.seq: list[int] = []
        self.bid: list[float] = []
        self.ask: list[float] = []

    def __call__(self, row: dict[str, Any], book: Any) -> None:
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return
        self.symbol.append(row["symbol"])
        self.recv_ts.append(row["recv_ts"])
        self.session.append(row["session"])
        self.seq.append(row["seq"])
        self.bid.append(float(bid[0]))
        self.ask.append(float(ask[0]))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "symbol": pd.Series(self.symbol, dtype="object"),
                "recv_ts": pd.to_datetime(pd.Series(self.recv_ts, dtype="object"), utc=True),
                "session": pd.Series(self.session, dtype="object"),
                "seq": pd.Series(self.seq, dtype="int64"),
                "best_bid": pd.Series(self.bid, dtype="float64"),
                "best_ask": pd.Series(self.ask, dtype="float64"),
            }
        )


def minute_bars(
    tops: pd.DataFrame, trades: pd.DataFrame, gaps: pd.DataFrame, day: str
) -> pd.DataFrame:
    """1-minute mid/spread bars of one UTC day.

    ``tops`` has the best bid and ask after every verified book row (`TopOfBook`), so a bar
    only ever describes a book whose checksum matched. Trades are the live ones
    (``type == "update"``; a resubscribe's snapshot repeats old trades), once per id.
    """
    start = pd.Timestamp(day, tz="UTC")
    end = start + pd.Timedelta(days=1)
    columns = KRAKEN_BOOK_MINUTE_BARS.columns
    rows = tops[(tops["recv_ts"] >= start) & (tops["recv_ts"] < end)]
    if rows.empty:
        return KRAKEN_BOOK_MINUTE_BARS.empty_frame()[columns]
    rows = rows.sort_values(["recv_ts", "session", "seq"], kind="stable")
    bid, ask = rows["best_bid"], rows["best_ask"]
    frame = pd.DataFrame(
        {
            "symbol": rows["symbol"].to_numpy(),
            "minute": rows["recv_ts"].dt.floor("min"),
            "mid": ((bid + ask) / 2).to_numpy(),
            "spread": (ask - bid).to_numpy(),
        }
    )
    grouped = frame.groupby(["symbol", "minute"], sort=True)
    bars = grouped.agg(
        mid_open=("mid", "first"),
        mid_high=("mid", "max"),
        mid_low=("mid", "min"),
        mid_close=("mid", "last"),
        spread_mean=("spread", "mean"),
        spread_min=("spread", "min"),
        spread_max=("spread", "max"),
        book_updates=("mid", "size"),
    ).reset_index()

    live = trades[(trades["type"] == "update") & trades["recv_ts"].between(start, end, "left")]
    live = live.drop_duplicates(["symbol", "trade_id"], keep="first")
    if live.empty:
        bars["trades"] = 0
        bars["trade_volume"] = 0.0
        bars["trade_vwap"] = float("nan")
    else:
        qty = live["qty"].astype(float)
        per_trade = pd.DataFrame(
            {
                "symbol": live["symbol"].to_numpy(),
                "minute": pd.to_datetime(live["recv_ts"].dt.floor("min").to_numpy(), utc=True),
                "qty": qty.to_numpy(),
                "notional": (qty * live["price"].astype(float)).to_numpy(),
            }
        )
        traded = (
            per_trade.groupby(["symbol", "minute"])
            .agg(trades=("qty", "size"), trade_volume=("qty", "sum"), notional=("notional", "sum"))
            .reset_index()
        )
        bars = bars.merge(traded, on=["symbol", "minute"], how="left")
        bars["trades"] = bars["trades"].fillna(0).astype("int64")
        bars["trade_volume"] = bars["trade_volume"].fillna(0.0)
        bars["trade_vwap"] = (bars["notional"] / bars["trade_volume"]).where(
            bars["trade_volume"] > 0
        )
        bars = bars.drop(columns=["notional"])

    bars["gap"] = False
    book_gaps = gaps[gaps["channel"] == "book"] if not gaps.empty else gaps
    minute_end = bars["minute"] + pd.Timedelta(minutes=1)
    for gap in book_gaps.itertuples(index=False):
        gap_end = gap.end_ts if pd.notna(gap.end_ts) else end
        overlap = (
            (bars["symbol"] == gap.symbol)
            & (minute_end > gap.start_ts)
            & (bars["minute"] <= gap_end)
        )
        bars.loc[overlap, "gap"] = True
    return bars[columns]


def compact_day(root: str | Path, day: str) -> tuple[pd.DataFrame, ReplayReport]:
    """Replay and verify one UTC day of the log, and build its minute bars.

    Raises `NoLogForDay` when the log has no book segment for the day, `DayNotVerified` when
    the day's log does not verify, and `LogReadError` (naming the file) when a segment cannot
    be read: in each case nothing is built.
    """
    if missing_days(root, [day]):
        raise NoLogForDay(day, root)
    tops = TopOfBook()
    verification = replay(root, [day], on_verified=tops)
    if not verification.ok:
        raise DayNotVerified(day, verification)

    def frame(kind: str, columns: list[str] | None = None) -> pd.DataFrame:
        table = read_kind(root, kind, [day], columns)
        return table.to_pandas(coerce_temporal_nanoseconds=True)

    bars = minute_bars(tops.frame(), frame("trade", _TRADE_BAR_COLUMNS), frame("gap"), day)
    return bars, verification
