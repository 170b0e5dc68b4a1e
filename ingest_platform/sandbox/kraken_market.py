"""Deterministic market simulation behind the Kraken sandbox: full books, trades, candles.

No I/O and no clock: the server drives `SymbolMarket.step` once per simulated event and
renders what it returns. Everything is integer arithmetic so the text on the wire is exact:

- prices are integer *ticks* of ``10**-price_precision`` and quantities integer *units* of
  ``10**-qty_precision``; `decimal_text` writes them as JSON numbers without ever going
  through ``float`` (trailing zeros dropped, as in the real capture, so clients must format
  to the instrument precision before checksumming);
- a book side stores *keys* sorted best-first (asks: ``+ticks``, bids: ``-ticks``), so one
  sorted list and one boundary comparison serve both sides;
- the checksum fragment of a level is ``str(ticks) + str(units)``: formatting to precision,
  removing ``.`` and stripping leading zeros yields exactly the integer's digits.

Each symbol has its own ``random.Random`` seeded from (seed, symbol), so a symbol's event
stream does not depend on which other symbols are being simulated.
"""

from __future__ import annotations

import math
import random
import zlib
from bisect import bisect_left, bisect_right, insort
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

#: Book depths Kraken accepts.
BOOK_DEPTHS = (10, 25, 100, 500, 1000)
#: OHLC intervals Kraken accepts, in minutes.
OHLC_INTERVALS = (1, 5, 15, 30, 60, 240, 1440, 10080, 21600)
#: Levels in a checksum, per side, whatever the subscribed depth.
CHECKSUM_LEVELS = 10
#: Trades kept for the trade channel's snapshot (Kraken sends 50).
TRADE_HISTORY = 50

# The full book keeps between these many levels per side, so a depth-1000 view is always full.
_MIN_LEVELS = 1150
_TARGET_LEVELS = 1300
_MAX_LEVELS = 1450
_NEAR = 10  # every event changes one of the top _NEAR levels, so every depth sees an update
_TRADE_P = 0.08
_MODIFY_P = 0.50  # cumulative thresholds after the trade probability
_INSERT_P = 0.75
_WIDE_SPREAD = 4  # ticks; beyond it most events quote inside the spread
_DEEP_P = 0.45  # chance of a second change anywhere in the book
_DEEP_MEAN = 220.0  # mean index of that change (exponential), so depths 100..1000 see traffic


def decimal_text(units: int, places: int) -> str:
    """``units * 10**-places`` as a JSON number: exact, trailing zeros dropped, e.g. ``4.0``."""
    if places == 0:
        return f"{units}.0"
    digits = str(units)
    if len(digits) <= places:
        digits = "0" * (places - len(digits) + 1) + digits
    frac = digits[-places:].rstrip("0")
    return f"{digits[:-places]}.{frac or '0'}"


@dataclass(frozen=True)
class Pair:
    """A spot pair as the instrument channel describes it, plus where its simulation starts."""

    symbol: str
    base: str
    quote: str
    price_precision: int
    qty_precision: int
    start_price: str  # decimal text
    typical_qty: str  # median order size, decimal text
    qty_min: str
    cost_min: str
    cost_precision: int = 5
    marginable: bool = True
    has_index: bool = True

    def ticks(self, price: str) -> int:
        return int(Decimal(price).scaleb(self.price_precision))

    def units(self, qty: str) -> int:
        return int(Decimal(qty).scaleb(self.qty_precision))

    def price_text(self, ticks: int) -> str:
        return decimal_text(ticks, self.price_precision)

    def qty_text(self, units: int) -> str:
        return decimal_text(units, self.qty_precision)


#: Default pairs: a spread of price precisions (1..6) and price levels, two quote currencies.
DEFAULT_PAIRS: tuple[Pair, ...] = (
    Pair("BTC/USD", "BTC", "USD", 1, 8, "64123.4", "0.25", "0.0001", "0.5"),
    Pair("ETH/USD", "ETH", "USD", 2, 8, "3123.45", "2.5", "0.002", "0.5"),
    Pair("SOL/USD", "SOL", "USD", 2, 8, "145.67", "40", "0.02", "0.5"),
    Pair("XRP/USD", "XRP", "USD", 5, 8, "0.52345", "4000", "2", "0.5"),
    Pair("ADA/EUR", "ADA", "EUR", 6, 8, "0.412345", "6000", "5", "0.45", marginable=False),
)
PAIRS_BY_SYMBOL = {p.symbol: p for p in DEFAULT_PAIRS}


class SimClock:
    """Simulated time: ``start + index * step``, in integer microseconds since the epoch."""

    def __init__(self, start_us: int, step_us: int) -> None:
        self.start_us = start_us
        self.step_us = max(1, step_us)
        self._second = -1
        self._prefix = ""

    def at(self, index: int) -> int:
        return self.start_us + index * self.step_us

    def text(self, us: int) -> str:
        """RFC 3339 with microseconds, e.g. ``2024-03-01T12:00:00.020000Z`` (cached per second)."""
        second, micro = divmod(us, 1_000_000)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        return f"{self._prefix}.{micro:06d}Z"


class BookSide:
    """One side of the full book: keys best-first, quantity per key, cached price text."""

    __slots__ = ("_checksum_text", "_fragment", "_price_text", "keys", "pair", "qty", "sign")

    def __init__(self, pair: Pair, sign: int) -> None:
        self.pair = pair
        self.sign = sign  # +1 asks (key = ticks), -1 bids (key = -ticks)
        self.keys: list[int] = []
        self.qty: dict[int, int] = {}
        self._price_text: dict[int, str] = {}
        self._fragment: dict[int, str] = {}  # key -> its checksum text, str(ticks) + str(units)
        self._checksum_text: str | None = None  # None: the top ten changed since last computed

    def __len__(self) -> int:
        return len(self.keys)

    def _touch(self, key: int) -> None:
        keys = self.keys
        if len(keys) < CHECKSUM_LEVELS or key <= keys[CHECKSUM_LEVELS - 1]:
            self._checksum_text = None

    def set(self, key: int, units: int) -> None:
        self._touch(key)
        if key not in self.qty:
            insort(self.keys, key)
        self.qty[key] = units
        self._fragment[key] = f"{key * self.sign}{units}"

    def delete(self, key: int) -> None:
        self._touch(key)
        del self.qty[key]
        del self._fragment[key]
        del self.keys[bisect_left(self.keys, key)]

    def boundary(self, depth: int) -> int | None:
        """The worst key inside a ``depth`` view, or None when the side is shallower."""
        return self.keys[depth - 1] if len(self.keys) >= depth else None

    def level_text(self, key: int, units: int) -> str:
        price = self._price_text.get(key)
        if price is None:
            price = self._price_text[key] = self.pair.price_text(key * self.sign)
        return f'{{"price":{price},"qty":{self.pair.qty_text(units)}}}'

    def view_text(self, depth: int) -> str:
        qty = self.qty
        return ",".join([self.level_text(k, qty[k]) for k in self.keys[:depth]])

    def diff_text(self, touched: dict[int, int], depth: int, before: int | None) -> str:
        """The levels a ``depth`` subscriber needs after an event, deletes first.

        ``touched`` maps every key the event changed to its quantity before (0: absent) and
        ``before`` is the view boundary before the event. A level is sent when it is in the
        view after and new or changed; an explicit delete only when it was in the view and
        left the full book. Levels pushed below the view by better inserts get nothing (the
        client truncates); levels that rise into the view because one above was deleted are
        sent as inserts, so the client's view stays ``depth`` deep. Deletes go first so a
        client that truncates after every level ends up with the same book as one that
        truncates after the message.
        """
        keys, qty = self.keys, self.qty
        after = keys[depth - 1] if len(keys) >= depth else None
        deletes: list[str] = []
        sets: list[str] = []
        for key, old in touched.items():
            new = qty.get(key, 0)
            was_in = old > 0 and (before is None or key <= before)
            if new:
                if (after is None or key <= after) and (not was_in or old != new):
                    sets.append(self.level_text(key, new))
            elif was_in:
                deletes.append(self.level_text(key, 0))
        if before is not None and (after is None or after > before):
            for key in keys[bisect_right(keys, before) : depth]:
                if key not in touched:
                    sets.append(self.level_text(key, qty[key]))
        deletes.extend(sets)
        return ",".join(deletes)

    def checksum_text(self) -> str:
        """This side's part of the checksum string, recomputed only when the top ten changed."""
        if self._checksum_text is None:
            fragment = self._fragment
            self._checksum_text = "".join([fragment[k] for k in self.keys[:CHECKSUM_LEVELS]])
        return self._checksum_text


@dataclass(frozen=True, slots=True)
class Trade:
    side: str  # the aggressor: "buy" lifted an ask, "sell" hit a bid
    price: int  # ticks
    qty: int  # units
    ord_type: str
    trade_id: int
    time_us: int


@dataclass(slots=True)
class Candle:
    interval: int  # minutes
    begin_us: int
    open: int
    high: int
    low: int
    close: int
    trades: int
    volume: int  # units
    notional: int  # sum(ticks * units), for the vwap

    @property
    def vwap(self) -> int:
        """Volume-weighted average price, rounded half-up to a tick."""
        return (2 * self.notional + self.volume) // (2 * self.volume)


class SymbolMarket:
    """One pair's simulated market: a full book of ~1,300 levels a side, trades and candles.

    `step` applies one event (it always changes the top ten levels, so every subscribed depth
    gets an update) and records the keys it touched; `update_text` then renders the diff for
    any depth, given the boundaries captured by `boundaries` before the step.
    """

    def __init__(self, pair: Pair, seed: int) -> None:
        self.pair = pair
        self.rng = random.Random(f"kraken-sandbox:{seed}:{pair.symbol}")
        self.asks = BookSide(pair, +1)
        self.bids = BookSide(pair, -1)
        self.recent_trades: deque[Trade] = deque(maxlen=TRADE_HISTORY)
        self.candles: dict[int, Candle] = {}
        self.next_trade_id = self.rng.randrange(10_000_000, 90_000_000)
        self._mu = math.log(pair.units(pair.typical_qty))
        self._touched_asks: dict[int, int] = {}
        self._touched_bids: dict[int, int] = {}
        self._seed_book()

    # -- reading ----------------------------------------------------------------------------

    def boundaries(self, depths: list[int]) -> dict[int, tuple[int | None, int | None]]:
        """Per depth, the (bids, asks) view boundaries; capture before `step`."""
        bids, asks = self.bids, self.asks
        return {d: (bids.boundary(d), asks.boundary(d)) for d in depths}

    def update_text(self, depth: int, before: tuple[int | None, int | None]) -> tuple[str, str]:
        """(bids, asks) level lists of the update a ``depth`` subscriber gets for the last step."""
        return (
            self.bids.diff_text(self._touched_bids, depth, before[0]),
            self.asks.diff_text(self._touched_asks, depth, before[1]),
        )

    def snapshot_text(self, depth: int) -> tuple[str, str]:
        return self.bids.view_text(depth), self.asks.view_text(depth)

    def checksum(self) -> int:
        """Kraken's CRC32 over the top ten asks then the top ten bids."""
        text = self.asks.checksum_text() + self.bids.checksum_text()
        return zlib.crc32(text.encode())

    # -- simulation -------------------------------------------------------------------------

    def step(self, now_us: int) -> Trade | None:
        """Apply one market event; return the trade it printed, if any."""
        rng = self.rng
        self._touched_asks = {}
        self._touched_bids = {}
        trade = None
        bid = rng.random() < 0.5
        r = rng.random()
        if r < _TRADE_P:
            trade = self._trade(bid, now_us)
        elif r < 0.6 and self.asks.keys[0] + self.bids.keys[0] > _WIDE_SPREAD:
            self._insert(bid, 0)  # a quote inside a wide spread, as market makers would
        elif r < _MODIFY_P:
            self._modify(bid, self._near_index())
        elif r < _INSERT_P:
            self._insert(bid, self._near_index())
        else:
            self._remove(bid, self._near_index())
        if rng.random() < _DEEP_P:
            self._deep_change(rng.random() < 0.5)
        self._keep_depth(True)
        self._keep_depth(False)
        return trade

    def _side(self, bid: bool) -> tuple[BookSide, dict[int, int]]:
        if bid:
            return self.bids, self._touched_bids
        return self.asks, self._touched_asks

    def _set(self, bid: bool, key: int, units: int) -> None:
        side, touched = self._side(bid)
        touched.setdefault(key, side.qty.get(key, 0))
        side.set(key, units)

    def _delete(self, bid: bool, key: int) -> None:
        side, touched = self._side(bid)
        touched.setdefault(key, side.qty[key])
        side.delete(key)

    def _near_index(self) -> int:
        return min(int(self.rng.expovariate(0.3)), _NEAR - 1)

    def _qty(self) -> int:
        """A lognormal order size; one in five rounded to a few significant digits."""
        rng = self.rng
        units = max(1, int(rng.lognormvariate(self._mu, 1.1)))
        if rng.random() < 0.2:
            step = 10 ** rng.randint(3, self.pair.qty_precision)
            units = max(step, units // step * step)
        return units

    def _modify(self, bid: bool, index: int) -> None:
        side, _ = self._side(bid)
        key = side.keys[index]
        old = side.qty[key]
        new = self._qty() if self.rng.random() < 0.5 else old + self._qty() // 4
        self._set(bid, key, new if new != old else old + 1)

    def _insert(self, bid: bool, index: int) -> None:
        """A new level just above ``keys[index]`` (inside the spread for index 0)."""
        side, _ = self._side(bid)
        other, _ = self._side(not bid)
        keys = side.keys
        # the opposite touch, mirrored into this side's key space, bounds the spread
        lo = keys[index - 1] if index else -other.keys[0]
        hi = keys[index]
        if hi - lo < 2:
            self._modify(bid, index)
            return
        self._set(bid, self.rng.randint(lo + 1, hi - 1), self._qty())

    def _remove(self, bid: bool, index: int) -> None:
        side, _ = self._side(bid)
        self._delete(bid, side.keys[index])

    def _deep_change(self, bid: bool) -> None:
        side, _ = self._side(bid)
        rng = self.rng
        index = min(int(rng.expovariate(1.0 / _DEEP_MEAN)) + 1, len(side) - 2)
        r = rng.random()
        grow = 0.35 if len(side) < _TARGET_LEVELS else 0.25
        if r < 0.4:
            self._modify(bid, index)
        elif r < 0.4 + grow:
            self._insert(bid, index)
        else:
            self._remove(bid, index)

    def _keep_depth(self, bid: bool) -> None:
        """Add or drop levels far beyond any view so the side stays ~_TARGET_LEVELS deep."""
        side, _ = self._side(bid)
        if len(side) < _MIN_LEVELS:
            key = side.keys[-1] + self.rng.randint(1, 3)
            if key * side.sign > 0:  # never a bid at or below zero
                self._set(bid, key, self._qty())
        elif len(side) > _MAX_LEVELS:
            self._delete(bid, side.keys[-1])

    def _trade(self, bid: bool, now_us: int) -> Trade:
        """A market order against the touch of one side: fills part or all of the best level."""
        side, _ = self._side(bid)
        rng = self.rng
        key = side.keys[0]
        available = side.qty[key]
        if rng.random() < 0.35:
            filled = available
        else:
            filled = min(available, max(1, int(available * rng.uniform(0.05, 0.9))))
        if filled == available:
            self._delete(bid, key)
        else:
            self._set(bid, key, available - filled)
        trade = Trade(
            side="sell" if bid else "buy",
            price=key * side.sign,
            qty=filled,
            ord_type="market" if rng.random() < 0.8 else "limit",
            trade_id=self.next_trade_id,
            time_us=now_us,
        )
        self.next_trade_id += 1
        self.recent_trades.append(trade)
        self._update_candles(trade)
        return trade

    def _update_candles(self, trade: Trade) -> None:
        for interval in OHLC_INTERVALS:
            span = interval * 60_000_000
            begin = trade.time_us - trade.time_us % span
            candle = self.candles.get(interval)
            if candle is None or candle.begin_us != begin:
                p = trade.price
                self.candles[interval] = Candle(interval, begin, p, p, p, p, 0, 0, 0)
                candle = self.candles[interval]
            candle.high = max(candle.high, trade.price)
            candle.low = min(candle.low, trade.price)
            candle.close = trade.price
            candle.trades += 1
            candle.volume += trade.qty
            candle.notional += trade.price * trade.qty

    def _seed_book(self) -> None:
        """Both sides around the start price: mostly adjacent ticks near the touch, sparser deep."""
        rng = self.rng
        mid = self.pair.ticks(self.pair.start_price)
        for bid in (True, False):
            side, _ = self._side(bid)
            price = mid - 1 if bid else mid + 1
            for _ in range(_TARGET_LEVELS):
                side.set(price * side.sign, self._qty())
                gap = 1 if rng.random() < 0.6 else rng.randint(2, 4)
                price += -gap if bid else gap


# -- wire text ------------------------------------------------------------------------------
# Channel messages are rendered here, from integers, with f-strings: exact, and cheap enough
# for tens of thousands of messages a second. Key order follows Kraken's own messages.


def book_snapshot_text(symbol: str, bids: str, asks: str, checksum: int, timestamp: str) -> str:
    return (
        f'{{"channel":"book","type":"snapshot","data":[{{"symbol":"{symbol}",'
        f'"bids":[{bids}],"asks":[{asks}],"checksum":{checksum},"timestamp":"{timestamp}"}}]}}'
    )


def book_update_parts(symbol: str, bids: str, asks: str, timestamp: str) -> tuple[str, str]:
    """An update split around its checksum, so a corrupted copy costs one more join."""
    head = (
        f'{{"channel":"book","type":"update","data":[{{"symbol":"{symbol}",'
        f'"bids":[{bids}],"asks":[{asks}],"checksum":'
    )
    return head, f',"timestamp":"{timestamp}"}}]}}'


def trade_item_text(pair: Pair, trade: Trade, clock: SimClock) -> str:
    return (
        f'{{"symbol":"{pair.symbol}","side":"{trade.side}","price":{pair.price_text(trade.price)},'
        f'"qty":{pair.qty_text(trade.qty)},"ord_type":"{trade.ord_type}",'
        f'"trade_id":{trade.trade_id},"timestamp":"{clock.text(trade.time_us)}"}}'
    )


def candle_item_text(pair: Pair, candle: Candle, now_us: int, clock: SimClock) -> str:
    price = pair.price_text
    return (
        f'{{"symbol":"{pair.symbol}","open":{price(candle.open)},"high":{price(candle.high)},'
        f'"low":{price(candle.low)},"close":{price(candle.close)},"trades":{candle.trades},'
        f'"volume":{pair.qty_text(candle.volume)},"vwap":{price(candle.vwap)},'
        f'"interval_begin":"{clock.text(candle.begin_us)}","interval":{candle.interval},'
        f'"timestamp":"{clock.text(now_us)}"}}'
    )


def channel_text(channel: str, kind: str, items: list[str]) -> str:
    return f'{{"channel":"{channel}","type":"{kind}","data":[{",".join(items)}]}}'


def status_text(system: str, connection_id: int, version: str) -> str:
    return (
        f'{{"channel":"status","type":"update","data":[{{"version":"{version}",'
        f'"system":"{system}","api_version":"v2","connection_id":{connection_id}}}]}}'
    )


def _json_bool(value: bool) -> str:
    return "true" if value else "false"


def instrument_snapshot_text(pairs: tuple[Pair, ...]) -> str:
    """The instrument channel's snapshot: assets, then pairs with their precisions."""
    assets: dict[str, int] = {}
    for pair in pairs:
        assets.setdefault(pair.base, pair.qty_precision)
        assets.setdefault(pair.quote, 4)
    asset_items = [
        f'{{"id":"{name}","status":"enabled","precision":{precision},'
        f'"precision_display":{min(precision, 5)},"borrowable":true,'
        f'"collateral_value":1.0,"margin_rate":0.02}}'
        for name, precision in assets.items()
    ]
    pair_items = []
    for p in pairs:
        increment = decimal_text(1, p.price_precision)
        pair_items.append(
            f'{{"symbol":"{p.symbol}","base":"{p.base}","quote":"{p.quote}","status":"online",'
            f'"qty_precision":{p.qty_precision},"qty_increment":{decimal_text(1, p.qty_precision)},'
            f'"price_precision":{p.price_precision},"price_increment":{increment},'
            f'"cost_precision":{p.cost_precision},"marginable":{_json_bool(p.marginable)},'
            f'"has_index":{_json_bool(p.has_index)},"cost_min":{p.cost_min},'
            f'"tick_size":{increment},"qty_min":{p.qty_min}}}'
        )
    return (
        f'{{"channel":"instrument","type":"snapshot","data":{{"assets":[{",".join(asset_items)}],'
        f'"pairs":[{",".join(pair_items)}]}}}}'
    )
