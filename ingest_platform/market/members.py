"""Which instruments a bar partition holds on its day: the index members as of that date (plus
every ETF, FX pair, index and future), under the ticker in force that day.

A run fetches each instrument once, under the ticker the provider answers to today (its last
ticker: Yahoo serves a renamed company only under its new name), over the whole range. What
comes back is then cut to the instrument's membership and relabelled day by day with the
ticker in force, so a partition before a rename holds the old ticker and one after the new,
both with the same `instrument_id`. A ticker reused by another company is another instrument
with another id: the two are never merged, because every relabelling goes through the id.

Plain functions over the `instruments` and `index_membership` frames; the ingest calls them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ingest_platform.core.lake import LakeError, ParquetLake
from ingest_platform.market.sources.bars import Instrument
from ingest_platform.reference.membership import INDEX
from ingest_platform.reference.schema import INDEX_MEMBERSHIP, INSTRUMENTS


@dataclass(frozen=True)
class MemberDays:
    """The index's spells, each tied to the instrument's fetch symbol (its ``canonical``
    ticker in `instruments`), and the ids of every instrument.

    ``spells``: instrument_id, symbol (in force), canonical, added (inclusive), removed
    (exclusive, NaT while current). ``ids``: canonical symbol -> instrument_id, every asset
    class.
    """

    spells: pd.DataFrame
    ids: dict[str, str]
    #: Canonical symbols of the instruments no longer in the index.
    former: frozenset[str] = frozenset()

    @classmethod
    def of(cls, instruments: pd.DataFrame, intervals: pd.DataFrame) -> MemberDays:
        """From the `instruments` and `index_membership` frames (as the lake holds them)."""
        ids = dict(zip(instruments["symbol"], instruments["instrument_id"], strict=True))
        canonical = {i: s for s, i in ids.items()}
        spells = intervals.loc[
            intervals["instrument_id"].isin(canonical.keys()),
            ["instrument_id", "symbol", "added", "removed"],
        ].copy()
        spells["canonical"] = spells["instrument_id"].map(canonical)
        active = instruments.get("active", True)
        former = frozenset(
            instruments.loc[~pd.Series(active, index=instruments.index).astype(bool), "symbol"]
        )
        return cls(spells.reset_index(drop=True), ids, former)

    @property
    def members(self) -> set[str]:
        """Canonical symbols of every instrument with a spell in the index."""
        return set(self.spells["canonical"])

    def _on(self, key: str) -> pd.DataFrame:
        day = pd.Timestamp(key)
        spells = self.spells
        on = (spells["added"] <= day) & (spells["removed"].isna() | (spells["removed"] > day))
        return spells[on.to_numpy()]

    def expected(
        self, instruments: Sequence[Instrument], by_calendar: Mapping[str, set[str]]
    ) -> dict[str, set[str]]:
        """Per partition, the canonical symbols expected: `by_calendar` (what trades that
        day) without the index members that were not members on that day.

        Days with the same symbols trading and the same members share one set (read-only), as
        `rules.expected_by_partition` shares its own: the sets are instruments x days."""
        members = self.members & {i.symbol for i in instruments}
        shared: dict[tuple[int, frozenset[str]], set[str]] = {}
        out = {}
        for key, symbols in by_calendar.items():
            on = frozenset(self._on(key)["canonical"]) & members
            same = (id(symbols), on)
            if same not in shared:
                shared[same] = {s for s in symbols if s not in members or s in on}
            out[key] = shared[same]
        return out

    def in_force(self, by_key: Mapping[str, set[str]]) -> dict[str, set[str]]:
        """Canonical symbols per partition, as the tickers in force on each day (days with the
        same symbols and the same renames share one set, read-only, as in `expected`)."""
        shared: dict[tuple[int, frozenset[tuple[str, str]]], set[str]] = {}
        out = {}
        for key, symbols in by_key.items():
            rename = self._renamed_on(key)
            same = (id(symbols), frozenset(rename.items()))
            if same not in shared:
                shared[same] = {rename.get(s, s) for s in symbols}
            out[key] = shared[same]
        return out

    def canonical(self, by_key: Mapping[str, set[str]]) -> dict[str, set[str]]:
        """Tickers in force per partition (as stored), as canonical symbols."""
        out = {}
        for key, symbols in by_key.items():
            back = {v: k for k, v in self._renamed_on(key).items()}
            out[key] = {back.get(s, s) for s in symbols}
        return out

    def _renamed_on(self, key: str) -> dict[str, str]:
        on = self._on(key)
        other = on[on["symbol"] != on["canonical"]]
        return dict(zip(other["canonical"], other["symbol"], strict=True))

    def cut_and_relabel(self, bars: pd.DataFrame) -> tuple[pd.DataFrame, int]:
        """Fetched bars (under canonical symbols) kept on the days their instrument was a
        member, each under the ticker in force that day; other instruments' rows unchanged.
        Returns the bars and how many rows fell outside membership (dropped).

        One join of the members' rows to their own instrument's spells: the work grows with
        rows x spells per instrument (one or two), never with rows x every spell of the index.
        """
        if bars.empty:
            return bars, 0
        spells = self.spells[self.spells["canonical"].isin(set(bars["symbol"]))]
        if spells.empty:
            return bars, 0
        symbols = bars["symbol"].to_numpy(dtype=object)
        member = bars["symbol"].isin(set(spells["canonical"])).to_numpy()
        keep = ~member
        label = symbols.copy()
        rows = np.flatnonzero(member)
        joined = pd.DataFrame(
            {
                "row": rows,
                "canonical": symbols[rows],
                "date": bars["date"].to_numpy(dtype="datetime64[ns]")[rows],
            }
        ).merge(
            pd.DataFrame(
                {
                    "canonical": spells["canonical"].to_numpy(dtype=object),
                    "in_force": spells["symbol"].to_numpy(dtype=object),
                    "added": pd.to_datetime(spells["added"]).to_numpy(dtype="datetime64[ns]"),
                    "removed": pd.to_datetime(spells["removed"]).to_numpy(dtype="datetime64[ns]"),
                }
            ),
            on="canonical",
        )
        date = joined["date"].to_numpy()
        removed = joined["removed"].to_numpy()
        inside = (date >= joined["added"].to_numpy()) & (np.isnat(removed) | (date < removed))
        hits = joined[inside]
        keep[hits["row"].to_numpy()] = True
        label[hits["row"].to_numpy()] = hits["in_force"].to_numpy(dtype=object)
        out = bars.assign(symbol=label)[keep].reset_index(drop=True)
        return out, int((~keep).sum())

    def instrument_ids(self, bars: pd.DataFrame) -> pd.Series:
        """The `instrument_id` of each bar, stored under the ticker in force on its date.

        A ticker is its instrument's canonical one except during an older spell under another
        ticker (FI for Fiserv from 2023-06-07 to 2025-11-10): only those spells are looked up
        by date, so a ticker another company used earlier is never given the wrong id.
        """
        ids = bars["symbol"].map(self.ids).to_numpy(dtype=object)
        older = self.spells[self.spells["symbol"] != self.spells["canonical"]]
        symbols = bars["symbol"].to_numpy(dtype=object)
        dates = bars["date"].to_numpy(dtype="datetime64[ns]")
        for spell in older[older["symbol"].isin(set(symbols))].itertuples(index=False):
            inside = (symbols == spell.symbol) & (dates >= np.datetime64(spell.added, "ns"))
            if not pd.isna(spell.removed):
                inside &= dates < np.datetime64(spell.removed, "ns")
            ids[inside] = spell.instrument_id
        return pd.Series(ids, index=bars.index, dtype=object)

    def tickers_of(self, canonical: Iterable[str]) -> set[str]:
        """Every ticker the instruments (by canonical symbol) had in the index, and their own."""
        chosen = set(canonical)
        spells = self.spells[self.spells["canonical"].isin(chosen)]
        return chosen | set(spells["symbol"])

    def member_span(self, canonical: str, keys: Iterable[str]) -> tuple[str, str] | None:
        """The first and last of `keys` on which the instrument was a member (None: none)."""
        spells = self.spells[self.spells["canonical"] == canonical]
        days = [k for k in sorted(keys) if _member_on(spells, k)]
        return (days[0], days[-1]) if days else None

    def overlapping(self, first: str, last: str) -> set[str]:
        """Canonical symbols of the instruments that were members on some day in
        [first, last]."""
        spells = self.spells
        touches = (spells["added"] <= pd.Timestamp(last)) & (
            spells["removed"].isna() | (spells["removed"] > pd.Timestamp(first))
        )
        return set(spells.loc[touches.to_numpy(), "canonical"])


def _member_on(spells: pd.DataFrame, key: str) -> bool:
    day = pd.Timestamp(key)
    return bool(
        ((spells["added"] <= day) & (spells["removed"].isna() | (spells["removed"] > day))).any()
    )


def load_members(lake: ParquetLake) -> MemberDays:
    """The index's spells and every instrument's id, from the `instruments` and
    `index_membership` datasets in the lake (a clear error naming the one to materialize)."""
    frames = []
    for dataset in (INSTRUMENTS, INDEX_MEMBERSHIP):
        try:
            frames.append(dataset.read(lake))
        except LakeError as exc:
            raise LakeError(f"{exc}; materialize the `{dataset.name}` asset first") from exc
    instruments, intervals = frames
    return MemberDays.of(instruments, intervals[intervals["index"] == INDEX])
