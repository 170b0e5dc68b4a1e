"""What every daily-bar source shares: the request, the result, and a threaded fetch loop.

A source fetches one symbol's whole date range per request (never one request per day) and
either returns canonical frames or raises a `SourceError`. `fetch_bars` runs that over many
symbols and keeps going when one fails, so a bad ticker costs one entry in `failures`, never
the other symbols' data, and never a silent gap: every requested symbol ends up either in
`bars` or in `failures`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd

from ingest_platform.core import settings
from ingest_platform.core.http.client import HttpClient
from ingest_platform.core.http.errors import SourceError, redacted_failure

BAR_COLUMNS = [
    "symbol",
    "date",
    "open",
    "high",
    "low",
    "close",
    "adj_close",
    "volume",
    "source",
    "ingested_at",
]
ACTION_COLUMNS = ["symbol", "date", "action", "value", "source"]


@dataclass(frozen=True)
class Instrument:
    """The part of an `instruments` row a source needs to ask for a symbol."""

    symbol: str
    yahoo_symbol: str
    asset_class: str
    calendar: str

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> list[Instrument]:
        return [
            cls(r.symbol, r.yahoo_symbol, r.asset_class, r.calendar)
            for r in frame[["symbol", "yahoo_symbol", "asset_class", "calendar"]].itertuples()
        ]


@dataclass
class BarsFetch:
    """Outcome of fetching many symbols from one source over one date range."""

    source: str
    start: dt.date
    end: dt.date
    bars: pd.DataFrame
    actions: pd.DataFrame
    failures: dict[str, SourceError] = field(default_factory=dict)
    requested: list[str] = field(default_factory=list)
    #: Per symbol, the instant the provider says its answer is current as of (UTC), where it
    #: says so in a way that can contradict the wall clock (see `core.settlement`).
    stamps: dict[str, pd.Timestamp] = field(default_factory=dict)

    @property
    def failure_rate(self) -> float:
        return len(self.failures) / len(self.requested) if self.requested else 0.0

    def failure_messages(self) -> dict[str, str]:
        return {symbol: error.detail for symbol, error in sorted(self.failures.items())}


def empty_bars() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in BAR_COLUMNS})


def empty_actions() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object") for c in ACTION_COLUMNS})


@dataclass(frozen=True)
class SymbolAnswer:
    """What one request for one symbol gave: its bars, its corporate actions, and the instant
    the provider said its data was current as of (None when it says nothing usable)."""

    bars: pd.DataFrame
    actions: pd.DataFrame = field(default_factory=empty_actions)
    stamp: pd.Timestamp | None = None


FetchOne = Callable[[Instrument, dt.date, dt.date], SymbolAnswer]


def fetch_bars(
    source: str,
    instruments: Sequence[Instrument],
    start: dt.date,
    end: dt.date,
    fetch_one: FetchOne,
    threads: int = 4,
    redact: Callable[[str], str] = str,
) -> BarsFetch:
    """Fetch [start, end] for each instrument with `fetch_one`, collecting per-symbol failures.

    Only `SourceError`s are per-symbol failures; anything else is a bug and propagates. Both
    leave through `redact` (the source's key redactor): failures become run metadata and log
    lines, and a later stage may quote a payload that echoes the key.
    """
    if start > end:
        raise ValueError(f"{source}: start {start} is after end {end}")
    bars: list[pd.DataFrame] = []
    actions: list[pd.DataFrame] = []
    failures: dict[str, SourceError] = {}
    stamps: dict[str, pd.Timestamp] = {}

    def run(instrument: Instrument):
        try:
            return instrument, fetch_one(instrument, start, end), None
        except SourceError as exc:
            return instrument, None, exc.redacted(redact)
        except Exception as exc:
            raise redacted_failure(exc, redact, source, instrument.symbol) from None

    with ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix=source) as pool:
        for instrument, answer, error in pool.map(run, instruments):
            if error is not None:
                failures[instrument.symbol] = error
                continue
            if len(answer.bars):
                bars.append(answer.bars)
            if len(answer.actions):
                actions.append(answer.actions)
            if answer.stamp is not None:
                stamps[instrument.symbol] = answer.stamp
    return BarsFetch(
        source=source,
        start=start,
        end=end,
        bars=pd.concat(bars, ignore_index=True) if bars else empty_bars(),
        actions=pd.concat(actions, ignore_index=True) if actions else empty_actions(),
        failures=failures,
        requested=[i.symbol for i in instruments],
        stamps=stamps,
    )


class BarSource:
    """A source asked one symbol at a time: subclasses give `fetch_symbol` (extract, then
    transform); `fetch` runs it over many symbols with per-symbol failures collected."""

    name: str
    threads: int = 1
    http: HttpClient

    def covers(self, instrument: Instrument) -> bool:
        return True

    def fetch_symbol(
        self, instrument: Instrument, start: dt.date, end: dt.date, ingested_at: pd.Timestamp
    ) -> SymbolAnswer:
        raise NotImplementedError

    def fetch(
        self,
        instruments: Sequence[Instrument],
        start: dt.date,
        end: dt.date,
        ingested_at: pd.Timestamp | None = None,
    ) -> BarsFetch:
        stamp = ingested_at or settings.now()

        def fetch_one(instrument: Instrument, start: dt.date, end: dt.date) -> SymbolAnswer:
            return self.fetch_symbol(instrument, start, end, stamp)

        covered = [i for i in instruments if self.covers(i)]
        return fetch_bars(
            self.name, covered, start, end, fetch_one, self.threads, redact=self.http.redact
        )


def clip_to_range(frame: pd.DataFrame, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Rows whose `date` lies in [start, end]: providers pad ranges (Yahoo appends today)."""
    if frame.empty:
        return frame
    dates = frame["date"]
    return frame[(dates >= pd.Timestamp(start)) & (dates <= pd.Timestamp(end))].reset_index(
        drop=True
    )


def canonical_bars(
    frame: pd.DataFrame,
    symbol: str,
    source: str,
    ingested_at: pd.Timestamp,
    start: dt.date,
    end: dt.date,
) -> pd.DataFrame:
    """Finish a source's (date, open, high, low, close, volume) rows as canonical bars.

    Stamps symbol, source and fetch time, leaves `adj_close` empty where the source has none
    (never invented), and clips to the requested range. Duplicated days are kept as sent: the
    ingest reports them and decides (`market.rules.resolve_duplicates`).
    """
    bars = frame.assign(symbol=symbol, source=source, ingested_at=ingested_at)
    if "adj_close" not in bars:
        bars["adj_close"] = float("nan")
    bars = bars.sort_values("date", kind="stable")
    return clip_to_range(bars[BAR_COLUMNS], start, end)
