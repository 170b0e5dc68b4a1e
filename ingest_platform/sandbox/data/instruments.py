"""The simulated instruments: the shipped universe plus added constituents, and how each
provider names them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest_platform.core import calendars
from ingest_platform.reference import universe
from ingest_platform.sandbox.data._helpers import stable_hash
from ingest_platform.sandbox.data.constituents import ConstituentChange

#: Polygon's index tickers: ``I:`` plus the index's own ticker (Yahoo's ^GSPC is SPX).
POLYGON_INDEX_TICKERS = {
    "^DJI": "I:DJI",
    "^GSPC": "I:SPX",
    "^NDX": "I:NDX",
    "^RUT": "I:RUT",
    "^VIX": "I:VIX",
}
#: Quoted tick size of the front-month futures, as decimals (copper in 1/20 cent, gas 1/10).
FUTURES_DECIMALS = {"HG=F": 4, "NG=F": 3}
#: How Yahoo answers for a former S&P 500 member, by `stable_hash` of its symbol modulo 3: a
#: 404 "No data found, symbol may be delisted", a 200 with an empty chart, or the full history
#: (a company that left the index but still trades).
DELISTED_ANSWERS = ("not_found", "empty", None)


@dataclass(frozen=True)
class Instrument:
    """One simulated instrument and how each provider names it."""

    symbol: str
    yahoo_symbol: str
    name: str
    asset_class: str  # equity | etf | fx | index | commodity
    calendar: str
    currency: str
    sector: str | None = None
    #: A former S&P 500 member Yahoo has no data for: "not_found" (404) or "empty" (200, no
    #: bars); None: served in full.
    delisted: str | None = None

    @property
    def is_fx(self) -> bool:
        return self.asset_class == "fx"

    @property
    def polygon_ticker(self) -> str | None:
        """Polygon's ticker (``C:EURUSD``, ``I:SPX``), or None where Polygon has no aggregates:
        CME futures are not on its stocks/forex/indices aggregates endpoint."""
        if self.is_fx:
            return f"C:{self.symbol}"
        if self.asset_class == "index":
            return POLYGON_INDEX_TICKERS.get(self.symbol)
        if self.asset_class == "commodity":
            return None
        return self.symbol

    @property
    def decimals(self) -> int:
        """Price precision as traded: cents for US listings and most futures, pips for FX."""
        if self.asset_class == "commodity":
            return FUTURES_DECIMALS.get(self.symbol, 2)
        if not self.is_fx:
            return 2
        return 3 if self.currency == "JPY" else 4 if self.currency == "MXN" else 5


@dataclass(frozen=True)
class _Universe:
    """The simulated instruments and each provider's lookup table, loaded together."""

    instruments: dict[str, Instrument]
    by_yahoo: dict[str, Instrument]
    by_polygon: dict[str, Instrument]
    snapshot: frozenset[str]  # equities in the shipped S&P 500 snapshot

    @classmethod
    def load(cls, directory: Path, changes: Iterable[ConstituentChange]) -> _Universe:
        frame = universe.load_instruments(directory)
        found = {
            r.symbol: Instrument(
                r.symbol, r.yahoo_symbol, r.name, r.asset_class, r.calendar, r.currency,
                r.gics_sector if isinstance(r.gics_sector, str) else None,
                None if r.active else DELISTED_ANSWERS[stable_hash("delisted", r.symbol) % 3],
            )
            for r in frame.itertuples(index=False)
        }  # fmt: skip
        for change in changes:
            if change.added and change.added not in found:
                found[change.added] = Instrument(
                    change.added,
                    change.added.replace(".", "-"),
                    change.added_name or change.added,
                    "equity",
                    calendars.PRIMARY_CALENDAR,
                    "USD",
                    change.added_sector,
                )
        return cls(
            instruments=found,
            by_yahoo={i.yahoo_symbol.upper(): i for i in found.values()},
            by_polygon={i.polygon_ticker.upper(): i for i in found.values() if i.polygon_ticker},
            snapshot=frozenset(
                frame.loc[(frame["asset_class"] == "equity") & frame["active"], "symbol"]
            ),
        )
