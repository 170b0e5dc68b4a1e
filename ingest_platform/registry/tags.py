"""Source tags (``fred:CPIAUCSL``, ``worldbank:NY.GDP.MKTP.KD.ZG/USA``, ``market:^GSPC``,
``kraken:BTC/USD``) and the set of series the platform actually ingests, which every tag must
name.

`KnownSources` is built by the caller from the platform's own tables (the instruments universe,
the economic series catalogue, the streamed Kraken pairs), so validation works offline and a
tag can never point at data nobody fetches.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

#: Source kinds a tag may name, in the order the report lists them.
SOURCE_KINDS = ("fred", "worldbank", "market", "kraken")


class RegistryError(ValueError):
    """The registry is broken; the message names the entry and the file (and line)."""


@dataclass(frozen=True, order=True)
class SourceTag:
    """``<kind>:<series_id>``: what a variable is read from."""

    kind: str
    series_id: str

    @classmethod
    def parse(cls, text: str, where: str) -> SourceTag:
        """Parse ``kind:series``; `where` (file:line and entry) goes into the error."""
        kind, colon, series_id = str(text).partition(":")
        kind, series_id = kind.strip(), series_id.strip()
        if not colon or not series_id:
            raise RegistryError(f"{where}: source {text!r} is not '<kind>:<series>'")
        if kind not in SOURCE_KINDS:
            raise RegistryError(
                f"{where}: unknown source {kind!r} in {text!r}; expected one of {SOURCE_KINDS}"
            )
        if kind == "worldbank" and series_id.count("/") != 1:
            raise RegistryError(
                f"{where}: World Bank source {text!r} must be 'worldbank:INDICATOR/COUNTRY'"
            )
        if kind == "kraken" and series_id.count("/") != 1:
            raise RegistryError(f"{where}: Kraken source {text!r} must be 'kraken:BASE/QUOTE'")
        return cls(kind, series_id)

    def __str__(self) -> str:
        return f"{self.kind}:{self.series_id}"


@dataclass(frozen=True)
class KnownSources:
    """Everything a tag may name: FRED series (-> whether FRED keeps vintages), World Bank
    indicator/country pairs, instrument symbols, streamed Kraken pairs."""

    fred: Mapping[str, bool] = field(default_factory=dict)
    worldbank: frozenset[str] = frozenset()
    market: frozenset[str] = frozenset()
    kraken: frozenset[str] = frozenset()

    @classmethod
    def from_tables(
        cls,
        instruments: pd.DataFrame,
        catalogue: pd.DataFrame,
        kraken_pairs: Iterable[str],
    ) -> KnownSources:
        """From the `instruments` table, the economic series catalogue (``source``,
        ``series_id``, ``vintages``) and the pairs the Kraken stream subscribes to."""
        fred = catalogue[catalogue["source"] == "fred"]
        worldbank = catalogue.loc[catalogue["source"] == "worldbank", "series_id"]
        return cls(
            fred=dict(zip(fred["series_id"], fred["vintages"].astype(bool), strict=True)),
            worldbank=frozenset(worldbank),
            market=frozenset(instruments["symbol"]),
            kraken=frozenset(kraken_pairs),
        )

    def has(self, tag: SourceTag) -> bool:
        if tag.kind == "fred":
            return tag.series_id in self.fred
        return tag.series_id in getattr(self, tag.kind)

    def missing(self, tag: SourceTag) -> str:
        """Why `tag` names nothing the platform ingests (for error and reason texts)."""
        what = {
            "fred": "not in the economic series catalogue",
            "worldbank": "not in the economic series catalogue",
            "market": "not in the instruments universe",
            "kraken": "not a streamed Kraken pair",
        }[tag.kind]
        return f"{tag} is {what}"

    def keeps_vintages(self, tag: SourceTag) -> bool:
        return tag.kind == "fred" and bool(self.fred.get(tag.series_id))
