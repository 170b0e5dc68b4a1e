"""Symbols a source has no history for: a known gap, recorded and listed, never a silent hole.

A former index member is fetched like any other symbol, but providers forget delisted
companies: Yahoo answers some with a 404 "No data found, symbol may be delisted", others with
a 200 and an empty chart, and a renamed company only under its new ticker. Such an answer is
final (asking again gives the same) and says nothing about the source's health, so it is not a
fetch failure: it is recorded as *unavailable from that source*, with the provider's own reason
and the member days it leaves without bars.

The record is a JSON document per source at the lake root (``unavailable_<source>.json``), one
entry per symbol; a later run that gets bars for the symbol removes its entry. The coverage
checks read it to report these gaps apart from failures (`read_unavailable`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace

import pandas as pd

from ingest_platform.core import calendars
from ingest_platform.core.http.errors import SourceError, UnknownSymbol
from ingest_platform.core.lake import ParquetLake
from ingest_platform.market.members import MemberDays
from ingest_platform.market.sources.bars import BarsFetch

COLUMNS = ["source", "symbol", "instrument_id", "reason", "first_date", "last_date", "recorded_at"]
#: The sources whose records the checks read.
SOURCES = ("yahoo", "polygon", "alpha_vantage")


def empty_gaps() -> pd.DataFrame:
    return pd.DataFrame(columns=COLUMNS)


def record_name(source: str) -> str:
    return f"unavailable_{source}.json"


def has_no_history(error: SourceError) -> bool:
    """A final "this provider has nothing for the symbol": a 404 for the ticker, or an answer
    that names it with no prices (`NoHistory`, a kind of `UnknownSymbol`)."""
    return isinstance(error, UnknownSymbol)


def separate(
    fetch: BarsFetch,
    members: MemberDays,
    keys: Iterable[str],
    recorded_at: pd.Timestamp,
) -> tuple[BarsFetch, pd.DataFrame]:
    """The fetch without the former members' no-history answers, and those as rows of
    `COLUMNS` (first/last_date: the member days of `keys` they leave without bars).

    Only former members: a current member the provider does not know is a real failure (a
    typo, a ticker change not yet in the reference data) and stays one.
    """
    gone = members.former
    keys = [k for k in keys if calendars.is_session(k)]  # members trade on the primary calendar
    rows, failures = [], {}
    for symbol, error in fetch.failures.items():
        span = members.member_span(symbol, keys) if symbol in gone else None
        if span is None or not has_no_history(error):
            failures[symbol] = error
            continue
        rows.append(
            {
                "source": fetch.source,
                "symbol": symbol,
                "instrument_id": members.ids.get(symbol),
                "reason": error.detail,
                "first_date": span[0],
                "last_date": span[1],
                "recorded_at": recorded_at.isoformat(),
            }
        )
    return replace(fetch, failures=failures), pd.DataFrame(rows, columns=COLUMNS)


def record(
    lake: ParquetLake, source: str, found: pd.DataFrame, delivered: Iterable[str]
) -> pd.DataFrame:
    """Merge this run's unavailable symbols into the source's record and return the record.

    An entry already there widens to the union of the dates; a symbol the source `delivered`
    bars for in this run is no longer unavailable and leaves the record.
    """
    kept = _entries(lake.read_json(record_name(source), missing_ok=True), record_name(source))
    for symbol in set(delivered):
        kept.pop(symbol, None)
    for row in found.to_dict("records"):
        old = kept.get(row["symbol"])
        if old is not None:
            row["first_date"] = min(row["first_date"], old["first_date"])
            row["last_date"] = max(row["last_date"], old["last_date"])
        kept[row["symbol"]] = {c: row[c] for c in COLUMNS if c not in ("source", "symbol")}
    lake.write_json(record_name(source), {"source": source, "symbols": dict(sorted(kept.items()))})
    return _frame(source, kept)


def _entries(document: object, name: str) -> dict[str, dict]:
    if document is None:
        return {}
    if not isinstance(document, Mapping) or not isinstance(document.get("symbols"), Mapping):
        raise ValueError(f"{name}: not an unavailable record: {{'source', 'symbols': {{...}}}}")
    return {str(k): dict(v) for k, v in document["symbols"].items()}


def _frame(source: str, entries: Mapping[str, Mapping]) -> pd.DataFrame:
    rows = [{"source": source, "symbol": s, **e} for s, e in sorted(entries.items())]
    return pd.DataFrame(rows, columns=COLUMNS)


def read_unavailable(lake: ParquetLake, sources: Iterable[str] = SOURCES) -> pd.DataFrame:
    """Every source's record, as rows of `COLUMNS` (dates as timestamps)."""
    frames = [
        _frame(s, _entries(lake.read_json(record_name(s), missing_ok=True), record_name(s)))
        for s in sources
    ]
    frame = pd.concat([f for f in frames if len(f)] or [frames[0]], ignore_index=True)
    for column in ("first_date", "last_date"):
        frame[column] = pd.to_datetime(frame[column])
    return frame
