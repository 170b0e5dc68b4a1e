"""The instrument universe: S&P 500 constituents, ETFs, FX pairs, indices and commodity futures
from the shipped snapshots.

Plain functions over the CSVs in ``data/reference/``; the `instruments` asset validates the
result and writes it to the lake, and every other dataset takes its symbols from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ingest_platform.core import calendars
from ingest_platform.core.metadata import shortlist
from ingest_platform.core.partitions import MARKET_START_DATE
from ingest_platform.reference import membership
from ingest_platform.reference.errors import ReferenceDataError
from ingest_platform.reference.membership_files import CHANGES_FILE, CONSTITUENTS_FILE

ETFS_FILE = "etfs.csv"
FX_FILE = "fx_pairs.csv"
INDICES_FILE = "indices.csv"
COMMODITIES_FILE = "commodities.csv"
ASSET_CLASSES = ("equity", "etf", "fx", "index", "commodity")


#: What a canonical symbol may contain: BRK.B, ^GSPC, CL=F, EURUSD. A slash (BRK/B) or a space
#: would be accepted by the lake and then fail at every source, so it is refused at the door.
SYMBOL = re.compile(r"^[A-Z0-9^][A-Z0-9.=^-]*$")


def _read_csv(path: Path, required: list[str]) -> pd.DataFrame:
    """A snapshot with each row's place (``_where``: file:line) for error messages."""
    if not path.is_file():
        raise ReferenceDataError(f"reference file {path} does not exist")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ReferenceDataError(f"{path}: missing column(s) {missing}")
    frame["_where"] = [f"{path.name}:{i + 2}" for i in frame.index]  # line 1 is the header
    blank = frame[frame["symbol"].str.strip() == ""]
    if len(blank):
        raise ReferenceDataError(f"{path}: blank symbol on line(s) {[i + 2 for i in blank.index]}")
    bad = frame[~frame["symbol"].str.match(SYMBOL)]
    if len(bad):
        shown = shortlist(
            [f"{s!r} ({w})" for s, w in zip(bad["symbol"], bad["_where"], strict=True)]
        )
        raise ReferenceDataError(
            f"{path}: invalid symbol(s) {shown}: use letters, digits and . ^ = - only"
        )
    return frame


def load_instruments(directory: Path) -> pd.DataFrame:
    """All instruments from the snapshots, one row per symbol, in the `Instruments` shape.

    Besides today's universe (``active``), every former S&P 500 member since the first market
    partition is listed inactive, under its last ticker, so ids and calendars exist for the
    history; `select` keeps to the active ones unless asked for former members too (the market
    assets do: each partition holds the members of its own day, see `market.members`).

    Indices are computed from NYSE-listed prices and published on NYSE sessions (XNYS).
    Commodities are front-month CME Group futures (NYMEX, COMEX), which trade on CME Globex's
    calendar (CMES): it has sessions, with early halts, on several US holidays NYSE closes for.
    """
    equities = _read_csv(
        directory / CONSTITUENTS_FILE, ["symbol", "yahoo_symbol", "name", "gics_sector", "isin"]
    )
    etfs = _read_csv(directory / ETFS_FILE, ["symbol", "yahoo_symbol", "name"])
    fx = _read_csv(directory / FX_FILE, ["symbol", "yahoo_symbol", "quote_currency", "name"])
    indices = _read_csv(directory / INDICES_FILE, ["symbol", "yahoo_symbol", "name"])
    commodities = _read_csv(directory / COMMODITIES_FILE, ["symbol", "yahoo_symbol", "name"])
    frames = [
        pd.DataFrame(
            {
                "symbol": equities["symbol"],
                "yahoo_symbol": equities["yahoo_symbol"],
                "name": equities["name"],
                "asset_class": "equity",
                "gics_sector": equities["gics_sector"].replace("", None),
                "isin": equities["isin"].replace("", None),
                "currency": "USD",
                "calendar": calendars.PRIMARY_CALENDAR,
                "index_member": "S&P 500",
            }
        ),
        pd.DataFrame(
            {
                "symbol": etfs["symbol"],
                "yahoo_symbol": etfs["yahoo_symbol"],
                "name": etfs["name"],
                "asset_class": "etf",
                "gics_sector": None,
                "isin": None,
                "currency": "USD",
                "calendar": calendars.PRIMARY_CALENDAR,
                "index_member": None,
            }
        ),
        pd.DataFrame(
            {
                "symbol": fx["symbol"],
                "yahoo_symbol": fx["yahoo_symbol"],
                "name": fx["name"],
                "asset_class": "fx",
                "gics_sector": None,
                "isin": None,
                "currency": fx["quote_currency"],
                "calendar": calendars.FX_CALENDAR,
                "index_member": None,
            }
        ),
        *(
            pd.DataFrame(
                {
                    "symbol": listed["symbol"],
                    "yahoo_symbol": listed["yahoo_symbol"],
                    "name": listed["name"],
                    "asset_class": asset_class,
                    "gics_sector": None,
                    "isin": None,
                    "currency": "USD",
                    "calendar": calendar,
                    "index_member": None,
                }
            )
            for listed, asset_class, calendar in (
                (indices, "index", calendars.PRIMARY_CALENDAR),
                (commodities, "commodity", calendars.FUTURES_CALENDAR),
            )
        ),
    ]
    history = membership.load_history(directory)
    former = _former_members(history)
    frames.append(former.drop(columns="_where"))
    frame = pd.concat(frames, ignore_index=True)
    frame["active"] = ~frame["active"].eq(False)  # only former members carry False
    current = history.intervals[history.intervals["removed"].isna()]  # today's list
    ids = dict(zip(current["symbol"], current["instrument_id"], strict=True))
    ids.update(zip(former["symbol"], former["instrument_id"], strict=True))
    frame["instrument_id"] = [
        ids.get(s) if cls == "equity" else membership.instrument_id(s, None)
        for s, cls in zip(frame["symbol"], frame["asset_class"], strict=True)
    ]
    unknown = frame.loc[frame["instrument_id"].isna(), "symbol"].tolist()
    if unknown:  # reconcile guarantees this; a broken invariant must not ship null ids
        raise ReferenceDataError(f"no membership history for constituent(s) {shortlist(unknown)}")
    where = pd.concat(
        [f["_where"] for f in (equities, etfs, fx, indices, commodities, former)],
        ignore_index=True,
    )
    repeated = frame["symbol"].duplicated(keep=False)
    if repeated.any():
        places = where[repeated].groupby(frame.loc[repeated, "symbol"]).agg(", ".join)
        shown = shortlist([f"{symbol} ({at})" for symbol, at in places.items()])
        raise ReferenceDataError(
            f"symbol(s) listed more than once in {directory}: {shown}; each symbol must "
            "appear once across the reference files"
        )
    return frame.sort_values(["asset_class", "symbol"], ignore_index=True)


def _former_members(history: membership.MembershipHistory) -> pd.DataFrame:
    """Former S&P 500 members since the first market partition, in the `Instruments` shape."""
    last = history.instruments_since(MARKET_START_DATE)
    gone = last[last["removed"].notna()]
    return pd.DataFrame(
        {
            "symbol": gone["symbol"],
            "yahoo_symbol": gone["symbol"].str.replace(".", "-", regex=False),
            "name": gone["security"].fillna(gone["symbol"]),
            "asset_class": "equity",
            "gics_sector": None,
            "isin": None,
            "currency": "USD",
            "calendar": calendars.PRIMARY_CALENDAR,
            "index_member": None,
            "active": False,
            "instrument_id": gone["instrument_id"],
            "_where": [f"{CHANGES_FILE} (removed {d:%Y-%m-%d})" for d in gone["removed"]],
        }
    ).reset_index(drop=True)


def traded(instruments: pd.DataFrame) -> pd.DataFrame:
    """Today's market universe: the active instruments (a frame without ``active``, as written
    before former members were listed, is all active)."""
    if "active" not in instruments.columns:
        return instruments
    return instruments[instruments["active"].astype(bool)].reset_index(drop=True)


def select(
    instruments: pd.DataFrame,
    asset_classes: tuple[str, ...] = ASSET_CLASSES,
    symbols: tuple[str, ...] | None = None,
    include_former: bool = False,
) -> pd.DataFrame:
    """The part of the universe a run covers: some asset classes, or an explicit symbol list;
    today's instruments, or with `include_former` every former index member as well (the
    point-in-time universe: each partition then keeps the members of its own day).

    An explicit symbol the universe does not know is an error, not an empty result: a typo in a
    run config must not quietly ingest nothing.
    """
    unknown_classes = sorted(set(asset_classes) - set(ASSET_CLASSES))
    if unknown_classes:
        raise ReferenceDataError(f"unknown asset class(es) {unknown_classes}; use {ASSET_CLASSES}")
    if not include_former:
        instruments = traded(instruments)
    elif "active" not in instruments.columns:
        instruments = instruments.assign(active=True)
    chosen = instruments[instruments["asset_class"].isin(asset_classes)]
    if symbols:
        unknown = sorted(set(symbols) - set(instruments["symbol"]))
        if unknown:
            raise ReferenceDataError(
                f"{len(unknown)} symbol(s) not in the instrument universe: {shortlist(unknown)}"
            )
        chosen = instruments[instruments["symbol"].isin(symbols)]
    return chosen.reset_index(drop=True)


CONSTITUENT_COLUMNS = ["symbol", "yahoo_symbol", "name", "gics_sector", "isin"]
#: A fetched list this much shorter than the snapshot is a broken page, not an index change.
_MIN_KEPT_FRACTION = 0.9


@dataclass(frozen=True)
class ConstituentDiff:
    """How a refreshed constituents list differs from the shipped snapshot."""

    added: list[str]
    removed: list[str]
    renamed: dict[str, tuple[str, str]]
    resectored: dict[str, tuple[str, str]]

    @property
    def changed(self) -> bool:
        return bool(self.added or self.removed or self.renamed or self.resectored)

    def lines(self) -> list[str]:
        out = [f"+ {s}" for s in self.added] + [f"- {s}" for s in self.removed]
        out += [f"~ {s}: name {a!r} -> {b!r}" for s, (a, b) in sorted(self.renamed.items())]
        out += [f"~ {s}: sector {a!r} -> {b!r}" for s, (a, b) in sorted(self.resectored.items())]
        return out or ["no changes"]


def refresh_constituents(
    current: pd.DataFrame, fetched: pd.DataFrame
) -> tuple[pd.DataFrame, ConstituentDiff]:
    """The new snapshot (fetched symbols, names and sectors; known ISINs kept) and the diff.

    Refuses a fetched list much shorter than the current one: a page that lost its table
    must not silently shrink the universe.
    """
    if len(fetched) < _MIN_KEPT_FRACTION * len(current):
        raise ReferenceDataError(
            f"refusing to replace {len(current)} constituents with {len(fetched)}: "
            "the fetched list looks truncated"
        )
    isin = dict(zip(current["symbol"], current["isin"], strict=True))
    new = pd.DataFrame(
        {
            "symbol": fetched["symbol"],
            "yahoo_symbol": fetched["symbol"].str.replace(".", "-", regex=False),
            "name": fetched["name"],
            "gics_sector": fetched["gics_sector"],
            "isin": fetched["symbol"].map(isin).fillna(""),
        }
    ).sort_values("symbol", ignore_index=True)[CONSTITUENT_COLUMNS]
    old, now = current.set_index("symbol"), new.set_index("symbol")
    common = old.index.intersection(now.index)
    diff = ConstituentDiff(
        added=sorted(set(now.index) - set(old.index)),
        removed=sorted(set(old.index) - set(now.index)),
        renamed={
            s: (old.at[s, "name"], now.at[s, "name"])
            for s in common
            if old.at[s, "name"] != now.at[s, "name"]
        },
        resectored={
            s: (old.at[s, "gics_sector"], now.at[s, "gics_sector"])
            for s in common
            if old.at[s, "gics_sector"] != now.at[s, "gics_sector"]
        },
    )
    return new, diff
