"""The fan-out's wire format, subjects, message ids and per-pair sequencing: no I/O at all.

Every event is one JSON object (`encode`), described by ``kraken_event.schema.json`` beside
this module (version `FORMAT_VERSION`, the ``v`` field). A ``book`` event carries everything a
consumer needs to re-verify the book on its own:

- prices and sizes as decimal strings: exactly as Kraken sent them in an exchange snapshot or
  update; in a snapshot the stream makes itself (`SnapshotSequencer` asks for one every
  ``snapshot_every`` updates, and at the start of an epoch the bus forced) the book's exact
  levels written out to the pair's precision;
- Kraken's checksum, with the ``price_precision``/``qty_precision`` and ``depth`` it needs;
- ``epoch``: a new one whenever the stream could not promise continuity (a resync, a
  resubscribe, a reconnect, events the bus lost); every epoch starts with a snapshot;
- ``seq``: per pair and epoch, from 0, gapless, assigned only after the checksum verified;
- ``exchange_ts`` (Kraken's timestamp text, or null) and ``recv_us`` (µs since the Unix epoch
  when the stream read the frame).

``Nats-Msg-Id`` is ``pair:epoch:seq`` (`book_msg_id`), so a publish repeated after a reconnect
is stored once. Epochs keep growing across stream restarts: the publisher floors them at the
last epoch the bus holds (`SnapshotSequencer.floor`), so a restarted stream never reuses an id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson

from ingest_platform.streaming.kraken.book import KrakenBook

FORMAT_VERSION = 1
SUBJECT_PREFIX = "kraken"
SCHEMA_FILE = Path(__file__).with_name("kraken_event.schema.json")
PAIR_KINDS = ("book", "trade", "ohlc")
"""Kinds published per pair (``kraken.<kind>.<BASE_QUOTE>``)."""
NOTICE_KINDS = ("status", "halt")
"""Kinds published once for the stream (``kraken.status``, ``kraken.halt``)."""
_NUMBER_FIELDS = frozenset({"price", "qty", "open", "high", "low", "close", "vwap", "volume"})


class MessageError(ValueError):
    """A message that is not a fan-out event of a version this code reads; says what is wrong."""


def pair_token(pair: str) -> str:
    """A pair as a subject token: ``BTC/USD`` -> ``BTC_USD`` (``.``, ``*``, ``>`` refused)."""
    if not pair or any(c in pair for c in ".*> \t"):
        raise ValueError(f"pair {pair!r} cannot be a subject token")
    return pair.replace("/", "_")


def subject(kind: str, pair: str | None = None, prefix: str = SUBJECT_PREFIX) -> str:
    """``kraken.book.BTC_USD``, ``kraken.trade.…``, ``kraken.ohlc.…``; ``kraken.status``,
    ``kraken.halt``."""
    if kind in PAIR_KINDS:
        if pair is None:
            raise ValueError(f"a {kind} subject needs a pair")
        return f"{prefix}.{kind}.{pair_token(pair)}"
    if kind in NOTICE_KINDS:
        return f"{prefix}.{kind}"
    raise ValueError(f"unknown event kind {kind!r}; expected one of {PAIR_KINDS + NOTICE_KINDS}")


def subjects_filter(prefix: str = SUBJECT_PREFIX) -> str:
    """The one subject filter the stream on the bus holds: ``kraken.>``."""
    return f"{prefix}.>"


def book_msg_id(pair: str, epoch: int, seq: int) -> str:
    """``Nats-Msg-Id`` of a book event: ``pair:epoch:seq``."""
    return f"{pair}:{epoch}:{seq}"


def feed_msg_id(kind: str, pair: str, session: str, seq: int) -> str:
    """``Nats-Msg-Id`` of a trade or OHLC event: ``kind:pair:session:seq`` (trades and bars
    need no book epoch; the publisher's session keeps a restarted stream's ids new)."""
    return f"{kind}:{pair}:{session}:{seq}"


def notice_msg_id(kind: str, session: str, n: int) -> str:
    """``Nats-Msg-Id`` of a status or halt event: ``kind:session:n`` (one session per start)."""
    return f"{kind}:{session}:{n}"


def _text(value: Any) -> Any:
    """A JSON number Kraken sent as its text (``parse_float=str``); integers become text too."""
    return str(value) if type(value) is int else value


def level_list(levels: Iterable[tuple[Any, Any]]) -> list[list[Any]]:
    """``[(price, qty), ...]`` as received -> ``[["price", "qty"], ...]`` decimal strings.
    `_text` inlined: this runs for every level of every verified update."""
    return [[str(p) if type(p) is int else p, str(q) if type(q) is int else q] for p, q in levels]


def book_levels(book: KrakenBook) -> tuple[list[list[str]], list[list[str]]]:
    """The book's every level as decimal strings at the pair's precision (never ``1E-8``):
    ``(bids best first, asks best first)``, for a snapshot the stream makes itself."""
    return (
        [[f"{p:f}", f"{q:f}"] for p, q in book.bids()],
        [[f"{p:f}", f"{q:f}"] for p, q in book.asks()],
    )


@dataclass(frozen=True, slots=True)
class BookSnapshot:
    """A verified book at one moment: its every level as decimal strings (`book_levels`), its
    checksum and what the checksum needs. What a snapshot the stream makes is made of; taken
    only when one is due, never per update."""

    bids: list[list[str]]
    asks: list[list[str]]
    checksum: int
    depth: int
    price_precision: int
    qty_precision: int

    @classmethod
    def of(cls, book: KrakenBook) -> BookSnapshot:
        bids, asks = book_levels(book)
        return cls(
            bids, asks, book.checksum(), book.depth, book.price_precision, book.qty_precision
        )


def book_event(
    pair: str,
    epoch: int,
    seq: int,
    kind: str,
    bids: list[list[Any]],
    asks: list[list[Any]],
    checksum: int,
    depth: int,
    price_precision: int,
    qty_precision: int,
    exchange_ts: str | None,
    recv_us: int,
) -> dict[str, Any]:
    """One verified book snapshot or update (``kind``), ready for `encode`."""
    return {
        "v": FORMAT_VERSION,
        "kind": "book",
        "pair": pair,
        "epoch": epoch,
        "seq": seq,
        "type": kind,
        "checksum": checksum,
        "depth": depth,
        "price_precision": price_precision,
        "qty_precision": qty_precision,
        "bids": bids,
        "asks": asks,
        "exchange_ts": exchange_ts,
        "recv_us": recv_us,
    }


def feed_event(
    kind: str, pair: str, session: str, seq: int, type_: str, item: Mapping[str, Any], recv_us: int
) -> dict[str, Any]:
    """A trade or OHLC item (``data``: Kraken's item, prices and sizes as decimal strings);
    ``seq`` counts the pair's events of this kind in the publisher's ``session``, gapless."""
    data = {k: (_text(v) if k in _NUMBER_FIELDS else v) for k, v in item.items()}
    return {
        "v": FORMAT_VERSION,
        "kind": kind,
        "pair": pair,
        "session": session,
        "seq": seq,
        "type": type_,
        "data": data,
        "exchange_ts": item.get("timestamp"),
        "recv_us": recv_us,
    }


def status_event(
    session: str, n: int, scope: str, status: str | None, previous: str | None, at_us: int
) -> dict[str, Any]:
    """A connection (``scope="connection"``) or exchange (``"exchange"``) status change."""
    return {
        "v": FORMAT_VERSION,
        "kind": "status",
        "session": session,
        "n": n,
        "scope": scope,
        "status": status,
        "previous": previous,
        "at_us": at_us,
    }


def halt_event(session: str, n: int, halt: Mapping[str, Any], at_us: int) -> dict[str, Any]:
    """The stream halted itself (``halt``: `Halt.as_dict`); nothing is published after it."""
    return {
        "v": FORMAT_VERSION,
        "kind": "halt",
        "session": session,
        "n": n,
        "reason": halt.get("reason"),
        "detail": halt.get("detail"),
        "mismatches": halt.get("mismatches"),
        "critical_errors": halt.get("critical_errors"),
        "at_us": at_us,
    }


_ENCODE_OPTIONS = orjson.OPT_NON_STR_KEYS


def encode(event: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON (no spaces; keys in the event's order).

    orjson, not ``json.dumps``: a book update of 10 levels a side costs about 1 µs instead of
    12 (`benchmarks/kraken_fanout_publish_cost.py`), for the same bytes on ASCII text (all of
    a book event; non-ASCII text in a halt's detail is written as UTF-8, not ``\\u`` escapes,
    the same JSON to any reader)."""
    return orjson.dumps(event, option=_ENCODE_OPTIONS)


def decode(data: bytes | str) -> dict[str, Any]:
    """An event from its bytes; `MessageError` when it is not JSON, not an object, or of a
    version or kind this code does not read (checked cheaply here; the JSON Schema in
    `SCHEMA_FILE` is the full description).

    orjson here too: ``json.loads`` cost a consumer 5.2 µs of its ~11 µs per re-verified
    update (numbers are text in every event, so no float is ever parsed either way)."""
    try:
        event = orjson.loads(data)
    except ValueError as exc:
        raise MessageError(f"not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise MessageError(f"not a JSON object but {type(event).__name__}")
    if event.get("v") != FORMAT_VERSION:
        raise MessageError(f"format version {event.get('v')!r}; this reader knows {FORMAT_VERSION}")
    if event.get("kind") not in PAIR_KINDS + NOTICE_KINDS:
        raise MessageError(f"unknown kind {event.get('kind')!r}")
    return event


def load_schema() -> dict[str, Any]:
    """The JSON Schema of the format (Draft 2020-12)."""
    schema: dict[str, Any] = json.loads(SCHEMA_FILE.read_text())
    return schema


def levels_as_decimals(levels: Iterable[Iterable[Any]]) -> list[tuple[Decimal, Decimal]]:
    """``[["price", "qty"], ...]`` -> exact ``(Decimal, Decimal)`` pairs."""
    return [(Decimal(p), Decimal(q)) for p, q in levels]


# ---- sequencing ------------------------------------------------------------------------------


@dataclass
class PairSequence:
    """One pair's place in the fan-out: its epoch, next seq, updates since the last snapshot,
    and whether it is live (its epoch's events so far are all on the bus, in order)."""

    epoch: int = 0
    next_seq: int = 0
    since_snapshot: int = 0
    live: bool = False
    floor: int = 0  # the next epoch is at least this (the bus's last epoch + 1)


@dataclass(frozen=True, slots=True)
class Slot:
    """Where an event goes: its epoch and seq."""

    epoch: int
    seq: int


class SnapshotSequencer:
    """Per-pair epochs and gapless seqs, assigned after verification.

    - `new_epoch`: an exchange snapshot verified, or the stream must restart the pair's
      continuity (the bus lost events, the bus came back): a new epoch, seq 0, a snapshot.
    - `update`: the next seq of the live epoch, and whether a snapshot is due after it (every
      ``snapshot_every`` updates); None when the pair is not live (a snapshot must come first).
    - `end`: the epoch can no longer be continued (a checksum mismatch, a lost event).
    """

    def __init__(self, snapshot_every: int) -> None:
        if type(snapshot_every) is not int or snapshot_every < 1:
            raise ValueError(f"snapshot_every must be an int >= 1, got {snapshot_every!r}")
        self.snapshot_every = snapshot_every
        self.pairs: dict[str, PairSequence] = {}

    def _pair(self, pair: str) -> PairSequence:
        state = self.pairs.get(pair)
        if state is None:
            state = self.pairs[pair] = PairSequence()
        return state

    def floor(self, pair: str, last_epoch: int) -> None:
        """The bus already holds ``last_epoch`` for the pair: later epochs must be higher."""
        state = self._pair(pair)
        state.floor = max(state.floor, last_epoch + 1)

    def new_epoch(self, pair: str) -> Slot:
        state = self._pair(pair)
        state.epoch = max(state.epoch + 1, state.floor)
        state.next_seq = 1
        state.since_snapshot = 0
        state.live = True
        return Slot(state.epoch, 0)

    def update(self, pair: str) -> tuple[Slot, bool] | None:
        state = self.pairs.get(pair)
        if state is None or not state.live:
            return None
        slot = Slot(state.epoch, state.next_seq)
        state.next_seq += 1
        state.since_snapshot += 1
        return slot, state.since_snapshot >= self.snapshot_every

    def snapshot(self, pair: str) -> Slot:
        """The next seq of the live epoch, for a periodic snapshot."""
        state = self.pairs[pair]
        slot = Slot(state.epoch, state.next_seq)
        state.next_seq += 1
        state.since_snapshot = 0
        return slot

    def due(self, pair: str) -> bool:
        """A periodic snapshot is due (``snapshot_every`` updates since the last one)."""
        state = self.pairs.get(pair)
        return state is not None and state.live and state.since_snapshot >= self.snapshot_every

    def end(self, pair: str) -> None:
        self._pair(pair).live = False

    def is_live(self, pair: str) -> bool:
        state = self.pairs.get(pair)
        return state is not None and state.live

    def epoch(self, pair: str) -> int:
        state = self.pairs.get(pair)
        return state.epoch if state is not None else 0


class FeedSequencer:
    """Seqs of trade and OHLC events: per (kind, pair), from 0 for each publisher session."""

    def __init__(self) -> None:
        self._next: dict[tuple[str, str], int] = {}

    def next(self, kind: str, pair: str) -> int:
        seq = self._next.get((kind, pair), 0)
        self._next[(kind, pair)] = seq + 1
        return seq
