"""Replay Kraken v2 ``book`` messages through KrakenBook and python-kraken-sdk; print msgs/s.

Both sides get the same raw JSON text, one message at a time, on one core, and do
what they do on a live socket: parse, apply, truncate to depth, verify the
checksum. Nothing touches the network.

* ours: ``json.loads(raw, parse_float=Decimal)`` as the issue states it, then
  :func:`parse_message` (same exact parse, reused decoder) and
  ``parse_message(raw, numbers_as_text=True)`` (the exact ``str`` fast path),
  each followed by ``KrakenBook.apply_message``.
* sdk: ``kraken.spot.SpotOrderBookClient`` (python-kraken-sdk 3.x), driven the way
  its websocket receive loop drives it (``ConnectSpotWebsocket.__run``):
  ``json.loads(raw)``, ``_manage_subscriptions(message)``, ``await on_message(message)``.
  ``on_message`` updates the book and runs its own ``__validate_checksum`` on
  every update; the callback counts ``book["valid"]``. Its REST look-up of the
  pair's decimals is replaced by a stub returning the same precisions. The SDK
  does not clear a book on a snapshot, so each repetition is preceded by the
  unsubscribe acknowledgement that makes it drop the book, as on a resubscribe.

Inputs: the real capture (1 snapshot + 509 updates, BTC/USD depth 10) repeated
``--repeat`` times, and a synthetic depth-``--synthetic-depth`` stream whose
checksums come from a plain dict book and :func:`kraken_book_checksum`.

    .venv/bin/python benchmarks/kraken_book_replay.py            # full run
    .venv/bin/python benchmarks/kraken_book_replay.py --quick    # a few seconds

Timed by the process's CPU time unless ``--clock wall``: on the shared two-core machine the
wall clock mostly measures the other processes' load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

from ingest_platform.streaming.kraken.book import KrakenBook, kraken_book_checksum, parse_message


def default_capture() -> Path:
    """The team fixture: $INGEST_PLATFORM_SHARED_FIXTURES, else ``shared/fixtures`` beside the
    checkout or one of its parent folders (a worktree may sit a level deeper), as the tests
    look for it; override with --capture."""
    checkout = Path(__file__).resolve().parents[1]
    configured = os.environ.get("INGEST_PLATFORM_SHARED_FIXTURES")
    candidates = [Path(configured)] if configured else []
    candidates += [folder / "shared" / "fixtures" for folder in checkout.parents]
    for fixtures in candidates:
        if fixtures.is_dir():
            return fixtures / "kraken" / "orderbook-v2.json"
    return candidates[0] / "kraken" / "orderbook-v2.json"


class Stream:
    """Raw messages for one symbol, with the unsubscribe acks that reset the SDK's book."""

    def __init__(self, name: str, symbol: str, depth: int, pp: int, qp: int) -> None:
        self.name, self.symbol, self.depth, self.pp, self.qp = name, symbol, depth, pp, qp
        self.raws: list[str] = []
        self.book_messages = 0
        self.unsubscribe_ack = json.dumps(
            {
                "method": "unsubscribe",
                "result": {"channel": "book", "depth": depth, "symbol": symbol},
                "success": True,
            }
        )

    def add(self, raws: list[str]) -> None:
        """One subscription: reset, then the snapshot and its updates."""
        self.raws.append(self.unsubscribe_ack)
        self.raws.extend(raws)
        self.book_messages += len(raws)


def dumps(message: dict) -> str:
    """Compact JSON as Kraken sends it; Decimals become JSON numbers via float's shortest repr."""
    return json.dumps(message, separators=(",", ":"), default=float)


def capture_stream(path: Path, repeat: int) -> Stream:
    doc = json.loads(path.read_text())  # floats re-serialise to the file's own text
    raws = [dumps(m) for m in [doc["init"], *doc["updates"]]]
    stream = Stream(f"capture x{repeat}", "BTC/USD", 10, 1, 8)
    for _ in range(repeat):
        stream.add(raws)
    return stream


def synthetic_stream(messages: int, depth: int, seed: int = 1) -> Stream:
    """Random walk around a mid price; checksums from a dict book and kraken_book_checksum."""
    rng = random.Random(seed)
    symbol, pp, qp = "SYN/USD", 1, 8
    asks: dict[Decimal, Decimal] = {}
    bids: dict[Decimal, Decimal] = {}
    mid = 300_000  # in price ticks

    def number(ticks: int, precision: int) -> Decimal:
        value = Decimal(ticks).scaleb(-precision)
        assert Decimal(repr(float(value))) == value  # survives the float re-serialisation
        return value

    def level(is_ask: bool, delete: bool) -> dict:
        offset = int(rng.expovariate(4 / depth)) + 1
        price = mid + offset if is_ask else mid - offset
        qty = 0 if delete else rng.randint(1, 5 * 10**qp)
        return {"price": number(price, pp), "qty": number(qty, qp)}

    raws = []
    for i in range(messages):
        snapshot = i == 0
        if snapshot:
            new_asks = [level(True, False) for _ in range(2 * depth)]
            new_bids = [level(False, False) for _ in range(2 * depth)]
        else:
            mid += rng.choice((-1, 0, 0, 1))
            # Deletes before sets: the SDK truncates after every level, Kraken (and
            # KrakenBook) after every message; with this order both agree.
            new_asks, new_bids = (
                sorted(
                    (level(is_ask, rng.random() < 0.4) for _ in range(rng.choice((0, 1, 1, 2, 3)))),
                    key=lambda lv: lv["qty"] != 0,
                )
                for is_ask in (True, False)
            )
            if not new_asks and not new_bids:
                new_bids = [level(False, False)]
        for side, new, best_first_desc in ((asks, new_asks, False), (bids, new_bids, True)):
            for lv in new:
                if lv["qty"]:
                    side[lv["price"]] = lv["qty"]
                else:
                    side.pop(lv["price"], None)
            for price in sorted(side, reverse=best_first_desc)[depth:]:
                del side[price]
        item = {
            "symbol": symbol,
            "bids": new_bids,
            "asks": new_asks,
            "checksum": kraken_book_checksum(asks.items(), bids.items(), pp, qp),
        }
        if not snapshot:
            item["timestamp"] = "2023-07-30T15:30:00.000000Z"
        kind = "snapshot" if snapshot else "update"
        raws.append(dumps({"channel": "book", "type": kind, "data": [item]}))
    stream = Stream(f"synthetic depth {depth}", symbol, depth, pp, qp)
    stream.add(raws)
    return stream


# --- ours ------------------------------------------------------------------------------


def clock() -> float:
    """The timer every replay uses: the process's CPU time (``--clock cpu``, the default: on
    a shared machine other processes' load barely moves it) or the wall clock."""
    return CLOCKS[CLOCK[0]]()


CLOCKS: dict[str, Callable[[], float]] = {"cpu": time.process_time, "wall": time.perf_counter}
CLOCK = ["cpu"]

Replay = Callable[[Stream], tuple[int | None, float]]
"""Replays a stream; returns (checksums verified, seconds spent in the message loop)."""


def parse_only(parse: Callable[[str], object]) -> Replay:
    """Reference floor: the JSON parse alone, no book."""

    def replay(stream: Stream) -> tuple[None, float]:
        start = clock()
        for raw in stream.raws:
            parse(raw)
        return None, clock() - start

    return replay


def ours(parse: Callable[[str], dict]) -> Replay:
    def replay(stream: Stream) -> tuple[int, float]:
        book = KrakenBook(stream.symbol, stream.depth, stream.pp, stream.qp)
        verified = 0
        start = clock()
        for raw in stream.raws:
            message = parse(raw)
            if message.get("channel") == "book":
                verified += book.apply_message(message)
        return verified, clock() - start

    return replay


def loads_decimal(raw: str) -> dict:
    return json.loads(raw, parse_float=Decimal)


def parse_as_text(raw: str) -> dict:
    return parse_message(raw, numbers_as_text=True)


# --- python-kraken-sdk -----------------------------------------------------------------


class _AssetPairs:
    """Stands in for ``kraken.spot.Market``: the SDK asks REST for the pair's decimals."""

    def __init__(self, pp: int, qp: int) -> None:
        self.pp, self.qp = pp, qp

    def get_asset_pairs(self, pair: str) -> dict:
        return {pair: {"pair_decimals": self.pp, "lot_decimals": self.qp}}


def sdk(stream: Stream) -> tuple[int, float]:
    return asyncio.run(_sdk_replay(stream))


async def _sdk_replay(stream: Stream) -> tuple[int, float]:
    from kraken.spot import SpotOrderBookClient  # optional "bench" extra

    verified = 0

    def on_book_update(pair: str, message: dict) -> None:
        nonlocal verified
        verified += client.get(pair)["valid"]

    client = SpotOrderBookClient(depth=stream.depth, callback=on_book_update)
    client._SpotOrderBookClient__market = _AssetPairs(stream.pp, stream.qp)
    connection = client._pub_conn  # never started: no socket
    loads, manage, on_message = json.loads, connection._manage_subscriptions, client.on_message
    try:
        start = clock()
        for raw in stream.raws:  # ConnectSpotWebsocket.__run, minus the socket
            message = loads(raw)
            manage(message=message)
            await on_message(message)
        elapsed = clock() - start
    finally:
        await client.close()
    return verified, elapsed


# --- driver ----------------------------------------------------------------------------


SDK = "sdk   SpotOrderBookClient.on_message"
TEXT = "ours  parse_message(numbers_as_text)"
IMPLEMENTATIONS: dict[str, Replay] = {
    "ours  json.loads(parse_float=Decimal)": ours(loads_decimal),
    "ours  parse_message (Decimal)": ours(parse_message),
    TEXT: ours(parse_as_text),
    SDK: sdk,
    "floor parse only: json.loads (float)": parse_only(json.loads),
    "floor parse only: parse_message": parse_only(parse_message),
    "floor parse only: parse_message(text)": parse_only(parse_as_text),
}


def measure(stream: Stream, rounds: int) -> dict[str, list[float]]:
    """msgs/s per implementation and round; implementations interleave within a round."""
    rates: dict[str, list[float]] = {name: [] for name in IMPLEMENTATIONS}
    for _ in range(rounds):
        for name, replay in IMPLEMENTATIONS.items():
            verified, elapsed = replay(stream)
            if verified is not None and verified != stream.book_messages:
                print(f"!! {name}: {verified}/{stream.book_messages} checksums verified")
            rates[name].append(stream.book_messages / elapsed)
    return rates


def pin_to_one_core() -> str:
    if hasattr(os, "sched_setaffinity"):
        core = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {core})
        return f"pinned to core {core}"
    return "not pinned"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small inputs, a few seconds")
    parser.add_argument("--capture", type=Path, default=None, help="default: the shared fixture")
    parser.add_argument("--repeat", type=int, help="capture repetitions (default 40, quick 4)")
    parser.add_argument("--rounds", type=int, help="timed rounds (default 5, quick 2)")
    parser.add_argument("--synthetic", type=int, help="synthetic messages (default 20000)")
    parser.add_argument("--synthetic-depth", type=int, default=100)
    parser.add_argument(
        "--clock", choices=sorted(CLOCKS), default="cpu", help="cpu (default) or wall time"
    )
    args = parser.parse_args(argv)
    CLOCK[0] = args.clock
    repeat = args.repeat or (4 if args.quick else 40)
    rounds = args.rounds or (2 if args.quick else 5)
    synthetic = args.synthetic if args.synthetic is not None else (2000 if args.quick else 20000)

    pinned = pin_to_one_core()
    print(
        f"python {platform.python_version()}, "
        f"python-kraken-sdk {version('python-kraken-sdk')}, {platform.machine()}, {pinned}"
    )
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    streams = [capture_stream(args.capture or default_capture(), repeat)]
    if synthetic:
        streams.append(synthetic_stream(synthetic, args.synthetic_depth))

    header = (
        f"{'input':24} {'implementation':38} {'msgs':>7} {'best msg/s':>11} {'median':>9} "
        f"{'x sdk':>6} {'% floor':>7}"
    )
    print(f"\n{header}\n{'-' * len(header)}")
    for stream in streams:
        rates = measure(stream, rounds)
        sdk_best = max(rates[SDK])
        floor = max(rates["floor parse only: parse_message(text)"])
        for name, values in rates.items():
            share = f"{max(values) / floor:7.1%}" if name == TEXT else ""
            print(
                f"{stream.name:24} {name:38} {stream.book_messages:7d} {max(values):11,.0f} "
                f"{statistics.median(values):9,.0f} {max(values) / sdk_best:6.1f} {share}"
            )
        print()
    print(
        f"msgs/s over the message loop by {args.clock} time, best and median of {rounds} rounds,\n"
        "one core. Every checksum was verified by each book (the SDK skips snapshots, ours\n"
        "checks them too).\n"
        "floor rows only parse: no book implementation can beat its parser. % floor: the\n"
        "numbers_as_text row over the parse it does, parse_message(text) alone."
    )


if __name__ == "__main__":
    main()
