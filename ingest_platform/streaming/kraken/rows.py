"""Book levels as log rows: shared by the client (writing) and replay (checking ``book_top``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ingest_platform.streaming.kraken.book import KrakenBook


def level_pairs(levels: Any) -> tuple[tuple[Any, Any], ...]:
    """A message's levels as a tuple of ``(price, qty)`` (the JSON number text).

    Tuples of strings, unlike lists of dicts, are untracked by Python's cyclic GC after one
    young collection, so a full log buffer adds nothing to the full collections that would
    otherwise pause the event loop for tens of milliseconds.
    """
    if not levels:
        return ()
    try:
        return tuple([(level["price"], level["qty"]) for level in levels])
    except (TypeError, KeyError):  # malformed levels: keep what there is, for the record
        return tuple(
            (level.get("price"), level.get("qty")) if isinstance(level, dict) else (level, None)
            for level in levels
        )


def top_levels(book: KrakenBook, n: int) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """The best ``n`` bids and asks as ``{"price", "qty"}`` fixed-point text (never ``1E-8``).

    The same function writes ``book_top`` rows and checks them in replay.
    """
    top = book.top(n)
    return (
        [{"price": f"{Decimal(p):f}", "qty": f"{Decimal(q):f}"} for p, q in top["bids"]],
        [{"price": f"{Decimal(p):f}", "qty": f"{Decimal(q):f}"} for p, q in top["asks"]],
    )
