"""Kraken spot WebSocket v2 L2 order book, kept exactly and verified by checksum.

Kraken publishes a CRC32 of the top 10 levels with every ``book`` message. Two
details decide whether a local book ever matches it:

* Numbers are formatted to the pair's precision (``price_precision`` and
  ``qty_precision`` from the instrument channel), not as they arrived: JSON
  drops trailing zeros, so ``0.001`` must be checksummed as ``0.00100000``.
  Going through ``float`` or ``str`` of the received number gets this wrong.
* Kraken never sends deletes for levels that fall below the subscribed depth,
  so the book is truncated to the depth after every message.

Exactness: every price and quantity becomes an integer count of
``10**-precision`` units ("ticks") straight from its decimal text or
``Decimal``, never through ``float``. A value finer than the precision is
rejected, because the precision would then be misconfigured and no checksum
could match. With integer ticks, a level's checksum fragment is just
``f"{price_ticks}{qty_ticks}"`` (formatting to the precision, dropping the ``.``
and the leading zeros yields exactly the decimal digits of the tick count).

Speed: the JSON parse costs about as much as the book. ``json.loads(raw,
parse_float=Decimal)`` builds a new decoder on every call; :func:`parse_message`
reuses one and is the same parse, about 3x faster. ``apply_*`` also accept the
numbers as their JSON text (``parse_message(raw, numbers_as_text=True)``, i.e.
``parse_float=str``): exact as well, and the fastest path. On it, per level: the
price's ticks and text come from a per-book memo of the price text (prices recur),
the qty's fragment is cut from its text with a few C string methods (a delete's
``"0.0"`` skips even that), and the level lands in two plain sorted lists by
``bisect``. Per side, the top 10's checksum text is rebuilt (one ``join``) only when
a change reached it, and the asks' CRC32 is kept so a bids-only change hashes only
the bids. The per-level loop is a closure built once per side (`_Side._applier`):
CPython reads its cell variables for less than the attribute loads they replace, and
at ~2 µs of parse per message such steps are what is left to cut.
"""

from __future__ import annotations

import json
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from itertools import islice
from operator import itemgetter
from typing import Any

ALLOWED_DEPTHS = frozenset({10, 25, 100, 500, 1000})
CHECKSUM_LEVELS = 10
"""Kraken checksums the top 10 levels of each side, whatever the depth."""

Number = Decimal | int | str
"""A JSON number parsed exactly: ``Decimal`` or ``str`` for fractions, ``int`` otherwise."""


_POW10 = [10**i for i in range(64)]
_ZEROS = ["0" * i for i in range(64)]
_crc32 = zlib.crc32


def _ticks(value: Number, precision: int) -> int:
    """Return ``value * 10**precision`` as an exact ``int``.

    Raises ``ValueError`` if the value is negative, not finite or finer than the
    precision, and ``TypeError`` for ``float`` (already inexact: refusing beats
    guessing).
    """
    # `type(value) is ...` (not isinstance): exact types only, and the str branch, the hot
    # path of ``numbers_as_text``, is decided by the first comparison.
    if type(value) is str:
        # Fast path for JSON text like "29430.2" or "4": digits only, at most
        # `precision` decimals. Signs, exponents and the like go through Decimal.
        whole, _, frac = value.partition(".")
        digits = whole + frac
        if len(frac) <= precision and digits.isdecimal():
            return int(digits) * _POW10[precision - len(frac)]
        try:
            return _ticks(Decimal(value), precision)
        except InvalidOperation:
            raise ValueError(f"not a decimal number: {value!r}") from None
    if type(value) is Decimal:
        try:
            numerator, denominator = value.as_integer_ratio()
        except (ValueError, OverflowError):
            raise ValueError(f"book numbers must be finite, got {value}") from None
    elif type(value) is int:
        numerator, denominator = value, 1
    else:
        raise TypeError(
            f"book numbers must be Decimal, int or str, got {type(value).__name__} {value!r}; "
            "parse with json.loads(raw, parse_float=Decimal)"
        )
    ticks, remainder = divmod(numerator * _POW10[precision], denominator)
    if remainder or ticks < 0:
        raise ValueError(
            f"book numbers must be >= 0 with at most {precision} decimals "
            f"(the pair's precision), got {value}"
        )
    return ticks


def _fragment(price_ticks: int, qty_ticks: int) -> str:
    """A level's checksum text: each number to its precision, '.' removed, zeros stripped.

    With tick counts that is just their digits ('' for zero).
    """
    return f"{price_ticks or ''}{qty_ticks or ''}"


def _from_ticks(ticks: int, precision: int) -> Decimal:
    """Exact inverse of :func:`_ticks`, with exactly ``precision`` decimals."""
    return Decimal(f"{ticks}E-{precision}")


def _exact(value: Number) -> Decimal:
    if isinstance(value, float):
        raise TypeError(f"float {value!r} is not exact; pass Decimal, int or str")
    return Decimal(value)


def _format_for_checksum(value: Decimal, precision: int) -> str:
    return f"{value:.{precision}f}".replace(".", "").lstrip("0")


def kraken_book_checksum(
    asks: Iterable[tuple[Number, Number]],
    bids: Iterable[tuple[Number, Number]],
    price_precision: int,
    qty_precision: int,
) -> int:
    """Kraken v2 book checksum of ``(price, qty)`` levels given in any order.

    The best 10 asks (lowest first) then the best 10 bids (highest first); each
    price and qty formatted with exactly its precision's decimals, ``.`` removed,
    leading zeros stripped; all concatenated; CRC32 as an unsigned int. This is
    the plain reference formulation; :class:`KrakenBook` gets the same number
    from cached per-level fragments.
    """
    best_asks = sorted(((_exact(p), _exact(q)) for p, q in asks), key=itemgetter(0))
    best_bids = sorted(((_exact(p), _exact(q)) for p, q in bids), key=itemgetter(0), reverse=True)
    text = "".join(
        _format_for_checksum(price, price_precision) + _format_for_checksum(qty, qty_precision)
        for price, qty in best_asks[:CHECKSUM_LEVELS] + best_bids[:CHECKSUM_LEVELS]
    )
    return zlib.crc32(text.encode())


# A decoder's C scanner (``scan_once``, set per instance in JSONDecoder.__init__ and absent
# from the type stubs, hence `vars`): scanning text directly skips json.loads' per-call setup.
_SCANNERS: dict[bool, Callable[[str, int], tuple[Any, int]]] = {
    False: vars(json.JSONDecoder(parse_float=Decimal))["scan_once"],
    True: vars(json.JSONDecoder(parse_float=str))["scan_once"],
}


def parse_message(raw: str | bytes, *, numbers_as_text: bool = False) -> Any:
    """Same result as ``json.loads(raw, parse_float=Decimal)``, about 3x faster.

    ``json.loads`` with any keyword builds a new ``JSONDecoder`` per call, and its
    whitespace handling costs as much again on small messages. This reuses one
    decoder's C scanner and falls back to ``json.loads`` (for bytes, surrounding
    whitespace and proper errors) whenever the scan does not consume the whole text.

    ``numbers_as_text=True`` is the exact fast path: fractional numbers stay as
    their JSON text (``parse_float=str``), which parses and converts to ticks a
    little faster than ``Decimal``. ``KrakenBook`` accepts either.
    """
    if type(raw) is str:
        try:
            obj, end = _SCANNERS[numbers_as_text](raw, 0)
            if end == len(raw):
                return obj
        except StopIteration:
            pass
    return json.loads(raw, parse_float=str if numbers_as_text else Decimal)


class _Side:
    """One side of the book, best level first, with the checksum text of its top 10.

    ``keys`` holds each level's price ticks as a sort key (negated for bids, so both sides
    sort ascending from their best level) and ``fragments`` the levels' checksum fragments:
    two plain lists kept in step by ``bisect``, so a set, insert or delete is one C-level
    binary search and memmove (cheap at every allowed depth), truncation one ``pop`` (or
    slice deletion), and the top 10's checksum text one ``join`` (of a slice when deeper).
    The qty is recovered from the fragment on the rare read. ``part`` is the top 10's
    checksum text, rebuilt only when a change reached them (a change deeper than the top 10
    leaves it as it is).

    ``prices`` memoises the price text received: a price recurs constantly (84% of the
    levels in the real capture repeat one seen before), and the same text at the same
    precision always gives the same ticks and text, so a dict hit replaces the parse, the
    validation and the formatting. Only ``str`` prices (``numbers_as_text``) are memoised,
    and the memo is emptied at ``_PRICE_MEMO`` entries, which bounds memory whatever the
    stream sends. Quantities mostly differ from one level to the next (the capture repeats
    42%, mostly deletes), so they are cut from their text inline instead.
    """

    __slots__ = ("apply", "depth", "fragments", "keys", "part", "pp", "prices", "qp", "sign")

    def __init__(self, sign: int, depth: int, pp: int, qp: int) -> None:
        self.sign, self.depth, self.pp, self.qp = sign, depth, pp, qp
        self.keys: list[int] = []
        self.fragments: list[str] = []
        self.part = b""
        """The checksum text of the top 10 levels, best first, always current."""
        self.prices: dict[Any, tuple[int, str]] = {}
        """price text -> (sort key, the price's checksum text)"""
        self.apply = self._applier()

    def _applier(self) -> Callable[[Iterable[Mapping[str, Number]]], bool]:
        """Build ``apply``: a closure over the side's lists and settings, which it reads as
        cell variables instead of attributes on every message (the lists are only ever
        changed in place, so the closure never holds a stale one)."""
        keys, fragments, prices, price = self.keys, self.fragments, self.prices, self.price
        depth, qp, top, zeros, bisect, side = (
            self.depth,
            self.qp,
            CHECKSUM_LEVELS,
            _ZEROS,
            bisect_left,
            self,
        )

        def apply(entries: Iterable[Mapping[str, Number]]) -> bool:
            """Set or (qty 0) delete each level in message order, then truncate to depth; True
            if the top 10 changed (``part`` is then rebuilt, here, in the same call).

            The hot path: the decimal text of ``parse_message(raw, numbers_as_text=True)`` is
            turned into ticks and fragments inline (what :func:`_ticks` and :func:`_fragment`
            do, without calls per number); anything else goes through :func:`_ticks`.
            """
            n = len(keys)
            stale = False
            for entry in entries:
                value = entry["price"]
                key, price_text = prices.get(value) or price(value)
                value = entry["qty"]
                if type(value) is not str:  # Decimal or int (or rejected)
                    qty_text = f"{_ticks(value, qp) or ''}"
                elif value == "0.0":  # a delete as Kraken sends it (parse_float=str)
                    qty_text = ""
                else:  # what _ticks and _fragment do, inlined
                    whole, _, frac = value.partition(".")
                    qty_text = (whole + frac).lstrip("0")
                    if qty_text:
                        pad = qp - len(frac)
                        if pad >= 0 and qty_text.isdecimal() and qty_text.isascii():
                            qty_text += zeros[pad]
                        else:
                            qty_text = f"{_ticks(value, qp) or ''}"
                    elif not (whole or frac):  # "" or ".": _ticks raises
                        qty_text = f"{_ticks(value, qp) or ''}"
                i = bisect(keys, key)
                if i < n and keys[i] == key:
                    if qty_text:
                        fragments[i] = price_text + qty_text
                    else:
                        del keys[i], fragments[i]
                        n -= 1
                elif qty_text:
                    keys.insert(i, key)
                    fragments.insert(i, price_text + qty_text)
                    n += 1
                else:
                    continue  # deleting a level the book does not hold
                if i < top:
                    stale = True
            if n > depth:
                if n == depth + 1:  # one insert too many, the usual case: pop is cheaper
                    keys.pop()
                    fragments.pop()
                else:
                    del keys[depth:], fragments[depth:]
                n = depth
            if stale:
                side.part = "".join(fragments if n <= top else fragments[:top]).encode()
            return stale

        return apply

    def price(self, value: Number) -> tuple[int, str]:
        """Sort key and checksum text of a price not memoised yet (then it is)."""
        ticks = _ticks(value, self.pp)
        known = (ticks * self.sign, f"{ticks or ''}")
        if type(value) is str:
            if len(self.prices) >= _PRICE_MEMO:
                self.prices.clear()
            self.prices[value] = known
        return known

    def refresh(self) -> None:
        """Rebuild ``part`` from the levels (after a bad level interrupted `apply`)."""
        self.part = "".join(self.fragments[:CHECKSUM_LEVELS]).encode()

    def clear(self) -> None:
        self.keys.clear()
        self.fragments.clear()
        self.part = b""

    def items(self, n: int | None = None) -> list[tuple[Decimal, Decimal]]:
        """The levels best first (the best ``n``), as exact Decimals at the precisions."""
        result = []
        for key, fragment in islice(zip(self.keys, self.fragments, strict=True), n):
            price = key * self.sign
            qty = int(fragment[len(_fragment(price, 0)) :])
            result.append((_from_ticks(price, self.pp), _from_ticks(qty, self.qp)))
        return result


_PRICE_MEMO = 8192
"""Prices memoised per side at most (then the memo starts afresh): ~2 MB a side, and the
prices near the touch, the ones that recur, are back in it within a few messages."""


class KrakenBook:
    """Local L2 book for one symbol of Kraken's v2 ``book`` channel.

    Feed it the items of each message's ``data`` list (parsed with
    :func:`parse_message` or ``json.loads(raw, parse_float=Decimal)``; numbers as
    ``str`` from ``parse_float=str`` work too). ``apply_*`` return whether the
    result matches Kraken's checksum; on ``False`` the book is out of sync and
    the caller should resubscribe for a fresh snapshot.
    """

    def __init__(self, symbol: str, depth: int, price_precision: int, qty_precision: int) -> None:
        if not isinstance(symbol, str) or not symbol:
            raise ValueError(f"symbol must be a non-empty string, got {symbol!r}")
        if type(depth) is not int or depth not in ALLOWED_DEPTHS:
            raise ValueError(f"depth must be one of {sorted(ALLOWED_DEPTHS)}, got {depth!r}")
        for name, value in (("price_precision", price_precision), ("qty_precision", qty_precision)):
            if type(value) is not int or not 0 <= value < len(_POW10):
                raise ValueError(
                    f"{name} must be an int from 0 to {len(_POW10) - 1}, got {value!r}"
                )
        self.symbol = symbol
        self.depth = depth
        self.price_precision = price_precision
        self.qty_precision = qty_precision
        self._asks = _Side(1, depth, price_precision, qty_precision)
        self._bids = _Side(-1, depth, price_precision, qty_precision)
        self._asks_crc = 0  # CRC32 of the asks' part: the bids' part continues it
        self._checksum = 0  # of both parts, kept current: zlib.crc32(b"") while empty
        self._apply_asks, self._apply_bids = self._asks.apply, self._bids.apply

    def apply_snapshot(self, item: Mapping[str, Any]) -> bool:
        """Replace both sides with the snapshot's levels; True if the checksum matches."""
        if item.get("symbol") != self.symbol:
            self._wrong_symbol(item)
        self._asks.clear()
        self._bids.clear()
        self._asks_crc = self._checksum = 0  # zlib.crc32(b"")
        return self.apply_update(item)

    def apply_update(self, item: Mapping[str, Any]) -> bool:
        """Apply every level in order, then truncate to depth; True if the checksum matches.

        A malformed level raises ``ValueError`` and leaves the book half-applied:
        treat that like a checksum mismatch and resubscribe.
        """
        try:  # subscripts cost less than .get(); a side may be absent, though
            symbol, asks_entries, bids_entries = item["symbol"], item["asks"], item["bids"]
        except KeyError:
            symbol, asks_entries, bids_entries = (
                item.get("symbol"),
                item.get("asks"),
                item.get("bids"),
            )
        if symbol != self.symbol:
            self._wrong_symbol(item)
        try:
            asks_changed = asks_entries and self._apply_asks(asks_entries)
            bids_changed = bids_entries and self._apply_bids(bids_entries)
        except BaseException:
            self._refresh()
            raise
        # crc32(b, crc32(a)) == crc32(a + b): a change to the bids alone reuses the asks'.
        if asks_changed:
            self._asks_crc = _crc32(self._asks.part)
            checksum = self._checksum = _crc32(self._bids.part, self._asks_crc)
        elif bids_changed:
            checksum = self._checksum = _crc32(self._bids.part, self._asks_crc)
        else:
            checksum = self._checksum
        expected = item["checksum"]
        return checksum == (expected if type(expected) is int else int(expected))

    def _refresh(self) -> None:
        """A bad level interrupted an update: what was applied before it must still show in
        the checksum."""
        self._asks.refresh()
        self._bids.refresh()
        self._asks_crc = _crc32(self._asks.part)
        self._checksum = _crc32(self._bids.part, self._asks_crc)

    def _wrong_symbol(self, item: Mapping[str, Any]) -> None:
        raise ValueError(f"book for {self.symbol!r} got an item for {item.get('symbol')!r}")

    def apply_message(self, message: Mapping[str, Any]) -> bool:
        """Apply a whole ``book`` message (every ``data`` item); True if all checksums match."""
        kind = message["type"]
        ok = True
        if kind == "update":  # the common case first, and no bound method per message
            for item in message["data"]:
                ok = self.apply_update(item) and ok
        elif kind == "snapshot":
            for item in message["data"]:
                ok = self.apply_snapshot(item) and ok
        else:
            raise ValueError(f"unknown book message type {kind!r}")
        return ok

    def checksum(self) -> int:
        """Kraken's CRC32 of the current top 10 asks then bids, cached until the book changes."""
        return self._checksum

    def asks(self) -> list[tuple[Decimal, Decimal]]:
        """All ask levels as ``(price, qty)``, lowest price first."""
        return self._asks.items()

    def bids(self) -> list[tuple[Decimal, Decimal]]:
        """All bid levels as ``(price, qty)``, highest price first."""
        return self._bids.items()

    def best_ask(self) -> tuple[Decimal, Decimal] | None:
        levels = self._asks.items(1)
        return levels[0] if levels else None

    def best_bid(self) -> tuple[Decimal, Decimal] | None:
        levels = self._bids.items(1)
        return levels[0] if levels else None

    def spread(self) -> Decimal | None:
        """Best ask minus best bid, or ``None`` while a side is empty."""
        ask, bid = self.best_ask(), self.best_bid()
        return None if ask is None or bid is None else ask[0] - bid[0]

    def mid(self) -> Decimal | None:
        """Midpoint of best bid and ask, or ``None`` while a side is empty."""
        ask, bid = self.best_ask(), self.best_bid()
        return None if ask is None or bid is None else (ask[0] + bid[0]) / 2

    def top(self, n: int = CHECKSUM_LEVELS) -> dict[str, Any]:
        """JSON-ready summary of the best ``n`` levels (numbers as exact strings), for logs."""
        return {
            "symbol": self.symbol,
            "checksum": self.checksum(),
            "asks": [[str(p), str(q)] for p, q in self._asks.items(n)],
            "bids": [[str(p), str(q)] for p, q in self._bids.items(n)],
        }

    def __len__(self) -> int:
        """Number of price levels held, both sides together."""
        return len(self._asks.keys) + len(self._bids.keys)

    def __repr__(self) -> str:
        return (
            f"KrakenBook({self.symbol!r}, depth={self.depth}, "
            f"asks={len(self._asks.keys)}, bids={len(self._bids.keys)})"
        )
