"""KrakenBook and kraken_book_checksum against a real capture and an independent model.

The model below (``RefBook``) is deliberately naive: plain dicts of ``Decimal``,
a full sort on every checksum, and the checksum rule written out with ``zlib`` and
``format()``. It shares no code with the module under test.
"""

from __future__ import annotations

import json
import random
import zlib
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_platform.streaming.kraken.book import (
    KrakenBook,
    kraken_book_checksum,
    parse_message,
)

# --- independent reference -------------------------------------------------------------


def ref_format(value: Decimal, precision: int) -> str:
    return format(value, f".{precision}f").replace(".", "").lstrip("0")


def ref_checksum(asks: dict, bids: dict, pp: int, qp: int) -> int:
    top = sorted(asks.items())[:10] + sorted(bids.items(), reverse=True)[:10]
    return zlib.crc32("".join(ref_format(p, pp) + ref_format(q, qp) for p, q in top).encode())


class RefBook:
    def __init__(self, depth: int, pp: int, qp: int) -> None:
        self.depth, self.pp, self.qp = depth, pp, qp
        self.asks: dict[Decimal, Decimal] = {}
        self.bids: dict[Decimal, Decimal] = {}

    def apply(self, item: dict, snapshot: bool = False) -> int:
        if snapshot:
            self.asks, self.bids = {}, {}
        for side, levels, best_first_desc in (
            (self.asks, item["asks"], False),
            (self.bids, item["bids"], True),
        ):
            for level in levels:
                price, qty = Decimal(level["price"]), Decimal(level["qty"])
                if qty == 0:
                    side.pop(price, None)
                else:
                    side[price] = qty
            keep = sorted(side, reverse=best_first_desc)[: self.depth]
            for price in set(side) - set(keep):
                del side[price]
        return ref_checksum(self.asks, self.bids, self.pp, self.qp)

    def sorted_asks(self) -> list[tuple[Decimal, Decimal]]:
        return sorted(self.asks.items())

    def sorted_bids(self) -> list[tuple[Decimal, Decimal]]:
        return sorted(self.bids.items(), reverse=True)


# --- the real capture ------------------------------------------------------------------


@pytest.fixture(scope="module")
def capture(kraken_capture_path: Path) -> dict:
    return json.loads(kraken_capture_path.read_text(), parse_float=Decimal)


def capture_messages(capture: dict) -> list[dict]:
    return [capture["init"], *capture["updates"]]


def raw_messages(path: Path) -> list[str]:
    """Each message as Kraken would send it: compact JSON text, numbers as in the file."""
    with path.open() as handle:
        doc = json.load(handle)  # floats re-serialise to the file's own shortest text
    return [json.dumps(m, separators=(",", ":")) for m in [doc["init"], *doc["updates"]]]


def test_capture_all_510_checksums_verify(capture: dict) -> None:
    messages = capture_messages(capture)
    assert len(messages) == 510
    book = KrakenBook("BTC/USD", depth=10, price_precision=1, qty_precision=8)
    results = []
    for message in messages:
        for item in message["data"]:
            if message["type"] == "snapshot":
                results.append(book.apply_snapshot(item))
            else:
                results.append(book.apply_update(item))
    assert results.count(True) == 510
    assert len(book.bids()) == len(book.asks()) == 10


@pytest.mark.parametrize("numbers_as_text", [False, True])
def test_capture_through_parse_message(
    capture: dict, kraken_capture_path: Path, numbers_as_text: bool
) -> None:
    raws = raw_messages(kraken_capture_path)
    # the re-serialised text parses to exactly the capture's Decimals
    assert [parse_message(raw) for raw in raws] == capture_messages(capture)
    book = KrakenBook("BTC/USD", 10, 1, 8)
    ok = [book.apply_message(parse_message(raw, numbers_as_text=numbers_as_text)) for raw in raws]
    assert ok.count(True) == 510


def test_parse_message_matches_json_loads_and_falls_back() -> None:
    raw = '{"a":[1.50,2,"x"],"b":1e-5}'
    expected = json.loads(raw, parse_float=Decimal)
    assert parse_message(raw) == expected
    assert parse_message(f"  {raw}\n") == expected
    assert parse_message(raw.encode()) == expected
    assert parse_message(raw, numbers_as_text=True) == {"a": ["1.50", 2, "x"], "b": "1e-5"}
    with pytest.raises(json.JSONDecodeError):
        parse_message(raw + "garbage")
    with pytest.raises(json.JSONDecodeError):
        parse_message("")


def snapshot_levels(capture: dict) -> tuple[list, list]:
    item = capture["init"]["data"][0]
    asks = [(lv["price"], lv["qty"]) for lv in item["asks"]]
    bids = [(lv["price"], lv["qty"]) for lv in item["bids"]]
    return asks, bids


def test_checksum_function_on_capture_snapshot(capture: dict) -> None:
    expected = capture["init"]["data"][0]["checksum"]
    asks, bids = snapshot_levels(capture)
    assert kraken_book_checksum(asks, bids, 1, 8) == expected

    rng = random.Random(7)
    shuffled_asks, shuffled_bids = asks[:], bids[:]
    rng.shuffle(shuffled_asks)
    rng.shuffle(shuffled_bids)
    assert kraken_book_checksum(shuffled_asks, shuffled_bids, 1, 8) == expected

    # levels worse than the best 10 do not count, wherever they appear
    deeper_asks = [(max(p for p, _ in asks) + i, Decimal("1.5")) for i in range(1, 6)]
    deeper_bids = [(min(p for p, _ in bids) - i, Decimal("2")) for i in range(1, 6)]
    assert kraken_book_checksum(deeper_asks + asks, bids + deeper_bids, 1, 8) == expected

    as_text = [(str(p), str(q)) for p, q in asks], [(str(p), str(q)) for p, q in bids]
    assert kraken_book_checksum(*as_text, 1, 8) == expected


def test_formatting_to_precision_is_what_makes_checksums_match(capture: dict) -> None:
    """Regression guard: str(float) drops trailing zeros, and Kraken's checksum needs them."""
    # 0.001 at qty precision 8 is 0.00100000 -> "000100000" -> "100000", not "1"
    assert str(float("0.001")).replace(".", "").lstrip("0") == "1"
    one_level = kraken_book_checksum([(Decimal("29431.1"), Decimal("0.001"))], [], 1, 8)
    assert one_level == zlib.crc32(b"294311" + b"100000")
    assert one_level != zlib.crc32(b"294311" + b"1")

    asks, bids = snapshot_levels(capture)

    def float_formatted(levels: list) -> str:
        return "".join(
            str(float(p)).replace(".", "").lstrip("0") + str(float(q)).replace(".", "").lstrip("0")
            for p, q in levels
        )

    naive = zlib.crc32((float_formatted(asks) + float_formatted(bids)).encode())
    assert naive != capture["init"]["data"][0]["checksum"]
    assert kraken_book_checksum(asks, bids, 1, 8) == capture["init"]["data"][0]["checksum"]


def test_checksum_function_rejects_float() -> None:
    with pytest.raises(TypeError, match="float"):
        kraken_book_checksum([(29431.1, Decimal(1))], [], 1, 8)


# --- synthetic behaviour ------------------------------------------------------------------


def lv(price: str, qty: str) -> dict:
    return {"price": Decimal(price), "qty": Decimal(qty)}


def item(asks: list, bids: list, checksum: int, symbol: str = "BTC/USD") -> dict:
    return {"symbol": symbol, "asks": asks, "bids": bids, "checksum": checksum}


def ten_by_ten() -> tuple[KrakenBook, RefBook]:
    book, ref = KrakenBook("BTC/USD", 10, 1, 8), RefBook(10, 1, 8)
    snap = item(
        [lv(f"{100 + i}.5", "1.25") for i in range(10)],
        [lv(f"{99 - i}.5", "0.001") for i in range(10)],
        0,
    )
    snap["checksum"] = ref.apply(snap, snapshot=True)
    assert book.apply_snapshot(snap)
    return book, ref


def test_levels_beyond_depth_fall_out_without_deletes() -> None:
    book, ref = ten_by_ten()
    update = item([], [lv("99.6", "3"), lv("99.7", "4"), lv("99.8", "5")], 0)
    update["checksum"] = ref.apply(update)
    assert book.apply_update(update)
    assert len(book.bids()) == 10
    assert book.bids()[0] == (Decimal("99.8"), Decimal("5"))
    assert book.bids()[-1][0] == Decimal("93.5")  # 92.5, 91.5 and 90.5 fell out
    assert book.bids() == ref.sorted_bids()
    assert book.checksum() == ref_checksum(ref.asks, ref.bids, 1, 8)

    # Kraken does not resend truncated levels, so deleting a top level leaves 9
    delete = item([], [lv("99.8", "0")], 0)
    delete["checksum"] = ref.apply(delete)
    assert book.apply_update(delete)
    assert len(book.bids()) == 9
    assert book.bids() == ref.sorted_bids()


def test_truncation_happens_after_the_whole_message() -> None:
    """A level pushed past the depth mid-message survives if a later level frees room."""
    book, ref = ten_by_ten()
    update = item([lv("100.1", "1"), lv("101.5", "0")], [], 0)
    update["checksum"] = ref.apply(update)
    assert book.apply_update(update)
    assert [p for p, _ in book.asks()][-1] == Decimal("109.5")
    assert book.asks() == ref.sorted_asks()


def test_qty_zero_deletes_and_missing_delete_is_harmless() -> None:
    book, _ = ten_by_ten()
    before = book.checksum()
    assert book.apply_update(item([lv("555.5", "0")], [lv("1.0", "0.0")], before))
    assert book.checksum() == before and len(book) == 20

    rest = [(p, q) for p, q in book.asks() if p != Decimal("100.5")]
    expected = kraken_book_checksum(rest, book.bids(), 1, 8)
    assert book.apply_update(item([{"price": Decimal("100.5"), "qty": 0}], [], expected))
    assert book.best_ask() == (Decimal("101.5"), Decimal("1.25"))
    assert len(book.asks()) == 9


def test_mismatched_checksum_returns_false() -> None:
    book, _ = ten_by_ten()
    assert book.apply_update(item([lv("100.5", "2")], [], book.checksum())) is False
    assert book.apply_update(item([], [], book.checksum())) is True


def test_numbers_as_decimal_str_and_int_are_the_same_book() -> None:
    books = [KrakenBook("ETH/USD", 25, 2, 8) for _ in range(3)]
    forms = [
        {"asks": [lv("2000.10", "1.50000000")], "bids": [lv("1999", "4")]},
        {"asks": [{"price": "2000.1", "qty": "1.5"}], "bids": [{"price": "1999.00", "qty": "4.0"}]},
        {"asks": [{"price": "2000.1", "qty": "1.5"}], "bids": [{"price": 1999, "qty": 4}]},
    ]
    for book, form in zip(books, forms, strict=True):
        book.apply_snapshot({"symbol": "ETH/USD", **form, "checksum": 0})
    assert books[0].checksum() == books[1].checksum() == books[2].checksum()
    assert books[0].asks() == books[1].asks() == [(Decimal("2000.1"), Decimal("1.5"))]
    assert str(books[2].asks()[0][1]) == "1.50000000"  # read back at the pair's precision
    ref = ref_checksum({Decimal("2000.1"): Decimal("1.5")}, {Decimal(1999): Decimal(4)}, 2, 8)
    assert books[2].checksum() == ref


def test_exact_beyond_decimal_context_precision() -> None:
    """Ticks are ints, so 38 significant digits survive (the default Decimal context keeps 28)."""
    qty = Decimal("12345678.123456789012345678901234567891")
    book = KrakenBook("X/Y", 10, 2, 30)
    ref = ref_checksum({Decimal("1.25"): qty}, {}, 2, 30)
    assert book.apply_snapshot(item([lv("1.25", str(qty))], [], ref, "X/Y"))
    assert book.asks() == [(Decimal("1.25"), qty)]


def test_bad_numbers_are_rejected() -> None:
    book = KrakenBook("BTC/USD", 10, 1, 8)
    with pytest.raises(TypeError, match="float"):
        book.apply_update(item([{"price": 29431.1, "qty": Decimal(1)}], [], 0))
    with pytest.raises(ValueError, match="at most 1 decimals"):
        book.apply_update(item([lv("29431.15", "1")], [], 0))
    with pytest.raises(ValueError, match=">= 0"):
        book.apply_update(item([{"price": "-1.0", "qty": "1"}], [], 0))
    with pytest.raises(ValueError, match="not a decimal"):
        book.apply_update(item([{"price": "abc", "qty": "1"}], [], 0))
    with pytest.raises(ValueError, match="finite"):
        book.apply_update(item([{"price": Decimal("NaN"), "qty": "1"}], [], 0))


def test_a_bad_level_leaves_the_levels_before_it_in_the_checksum() -> None:
    """The book is half-applied after a bad level, and its checksum says so (a caller comparing
    it to a later snapshot must not see the checksum of the book before the message)."""
    for side in ("asks", "bids"):
        book, _ = ten_by_ten()
        good = {"price": "100.5" if side == "asks" else "99.5", "qty": "7"}
        bad = {"price": "abc", "qty": "1"}
        with pytest.raises(ValueError, match="not a decimal"):
            book.apply_update({"symbol": "BTC/USD", side: [good, bad], "checksum": 0})
        assert (book.best_ask() if side == "asks" else book.best_bid())[1] == Decimal(7)
        assert book.checksum() == kraken_book_checksum(book.asks(), book.bids(), 1, 8)


def test_a_long_drift_through_many_distinct_prices_stays_exact() -> None:
    """Prices arrive as text and the book memoises them (a bounded memo, emptied when full):
    a market drifting through more distinct prices than the memo holds still verifies."""
    rng = random.Random(20)
    book, ref = KrakenBook("BTC/USD", 10, 1, 8), RefBook(10, 1, 8)
    mid = 300_000  # ticks of 0.1
    snap = item(
        [{"price": f"{(mid + i) / 10:.1f}", "qty": "1"} for i in range(1, 11)],
        [{"price": f"{(mid - i) / 10:.1f}", "qty": "1"} for i in range(1, 11)],
        0,
    )
    snap["checksum"] = ref.apply(snap, snapshot=True)
    assert book.apply_snapshot(snap)
    for n in range(12_000):  # the mid walks 12,000 ticks: over 8,192 prices per side
        mid += 1
        ask = {"price": f"{(mid + rng.randint(1, 3)) / 10:.1f}", "qty": f"0.{rng.randint(1, 99)}"}
        bid = {"price": f"{(mid - rng.randint(1, 3)) / 10:.1f}", "qty": f"{rng.randint(1, 9)}"}
        update = item([ask], [bid], 0)
        update["checksum"] = ref.apply(update)
        assert book.apply_update(update), f"update {n}"
    assert book.asks() == ref.sorted_asks() and book.bids() == ref.sorted_bids()


def test_constructor_validation_names_the_bad_value() -> None:
    with pytest.raises(
        ValueError, match=r"depth must be one of \[10, 25, 100, 500, 1000\], got 50"
    ):
        KrakenBook("BTC/USD", 50, 1, 8)
    with pytest.raises(ValueError, match=r"price_precision.*got -1"):
        KrakenBook("BTC/USD", 10, -1, 8)
    with pytest.raises(ValueError, match=r"qty_precision.*got '8'"):
        KrakenBook("BTC/USD", 10, 1, "8")
    with pytest.raises(ValueError, match="symbol must be a non-empty string, got ''"):
        KrakenBook("", 10, 1, 8)


def test_item_for_another_symbol_names_both_and_keeps_the_book() -> None:
    book, _ = ten_by_ten()
    before = book.checksum()
    with pytest.raises(ValueError, match=r"'BTC/USD'.*'ETH/USD'"):
        book.apply_snapshot(item([], [], 0, symbol="ETH/USD"))
    with pytest.raises(ValueError, match=r"'BTC/USD'.*'ETH/USD'"):
        book.apply_update(item([], [], 0, symbol="ETH/USD"))
    assert book.checksum() == before and len(book) == 20


def test_read_side_helpers() -> None:
    book = KrakenBook("BTC/USD", 10, 1, 8)
    assert book.best_bid() is None and book.mid() is None and book.spread() is None
    book, _ = ten_by_ten()
    assert book.best_ask() == (Decimal("100.5"), Decimal("1.25"))
    assert book.best_bid() == (Decimal("99.5"), Decimal("0.001"))
    assert book.spread() == Decimal("1.0")
    assert book.mid() == Decimal("100.0")
    top = book.top(2)
    assert top["asks"] == [["100.5", "1.25000000"], ["101.5", "1.25000000"]]
    assert top["bids"] == [["99.5", "0.00100000"], ["98.5", "0.00100000"]]
    assert top["checksum"] == book.checksum()
    assert json.loads(json.dumps(top)) == top
    with pytest.raises(ValueError, match="unknown book message type 'heartbeat'"):
        book.apply_message({"type": "heartbeat", "data": []})


# --- property-style: random streams against the reference ----------------------------------


def random_number(rng: random.Random, ticks: int, precision: int) -> object:
    """The same value in the shapes JSON parsing can produce: Decimal, str, int."""
    text = f"{Decimal(ticks).scaleb(-precision):f}"
    if "." in text and rng.random() < 0.3:
        text += "0" * rng.randint(1, 3)  # more digits than the precision, same value
    if "." in text and rng.random() < 0.3:
        text = text.rstrip("0").rstrip(".")  # as JSON re-serialisation loses them
    value = Decimal(text)
    shape = rng.random()
    if shape < 0.2:
        return text
    if shape < 0.3 and value == value.to_integral_value():
        return int(value)
    return value


@pytest.mark.slow
@pytest.mark.parametrize("depth", [10, 25, 100, 500, 1000])
def test_random_streams_match_reference(depth: int) -> None:
    rng = random.Random(depth)
    pp, qp = rng.randint(0, 4), rng.randint(0, 8)
    book, ref = KrakenBook("R/ND", depth, pp, qp), RefBook(depth, pp, qp)
    mid = 10_000 * 10**pp
    width = 3 * depth  # prices both inside and beyond the depth

    def level(side: str, delete: bool) -> dict:
        offset = int(rng.expovariate(1 / depth)) % width + 1
        price = mid + offset if side == "ask" else mid - offset
        qty = 0 if delete else rng.choice([1, 10**qp, rng.randint(1, 10 ** (qp + 3))])
        return {"price": random_number(rng, price, pp), "qty": random_number(rng, qty, qp)}

    def levels(side: str, n: int, delete_rate: float) -> list[dict]:
        return [level(side, rng.random() < delete_rate) for _ in range(n)]

    messages = 600 if depth <= 100 else 250
    for i in range(messages):
        snapshot = i == 0 or rng.random() < 0.01
        if snapshot:
            n = rng.choice([0, 3, depth, depth + 5])  # empty, < 10 levels, full, over-full
            msg = item(levels("ask", n, 0), levels("bid", n, 0), 0, "R/ND")
        else:
            msg = item(
                levels("ask", rng.choice([0, 1, 1, 2, 5, 20]), 0.35),
                levels("bid", rng.choice([0, 1, 1, 2, 5, 20]), 0.35),
                0,
                "R/ND",
            )
        msg["checksum"] = ref.apply(msg, snapshot=snapshot)
        ok = book.apply_snapshot(msg) if snapshot else book.apply_update(msg)
        assert ok, f"message {i} at depth {depth}"
        assert book.asks() == ref.sorted_asks()
        assert book.bids() == ref.sorted_bids()
        assert len(book) <= 2 * depth


# --- Hypothesis: any stream of levels, every number shape, against the reference ------------

ZERO_TEXTS = ["0.0", "0", "0.00000000000", "00", "0E-8", "-0.0"]
"""Zero quantities as text: Kraken's ``0.0`` (the book's fast path) and what else parses as 0."""


def hypothesis_number(data: st.DataObject, ticks: int, precision: int) -> object:
    """The value ``ticks * 10**-precision`` as JSON parsing can hand it over: text (as sent, with
    trailing zeros beyond the precision, or cut back), ``Decimal`` or ``int``."""
    if ticks == 0 and data.draw(st.booleans()):
        return data.draw(st.sampled_from([*ZERO_TEXTS, Decimal(0), 0, Decimal("0.0")]))
    text = f"{Decimal(ticks).scaleb(-precision):f}"
    shape = data.draw(st.sampled_from(["text", "padded", "stripped", "decimal", "int"]))
    if shape == "padded" and "." in text:
        return text + "0" * data.draw(st.integers(1, 3))
    if shape == "stripped" and "." in text:
        return text.rstrip("0").rstrip(".") or "0"
    if shape == "decimal":
        return Decimal(text)
    if shape == "int" and ticks % 10**precision == 0:
        return ticks // 10**precision
    return text


@settings(max_examples=100, deadline=None, derandomize=True)
@given(data=st.data(), depth=st.sampled_from([10, 25]), pp=st.integers(0, 3), qp=st.integers(0, 8))
def test_hypothesis_streams_match_reference(
    data: st.DataObject, depth: int, pp: int, qp: int
) -> None:
    """Every checksum, every level and the truncation agree with ``RefBook`` after every message,
    whatever mix of sets, deletes (present or absent), snapshots and number shapes arrives."""
    book, ref = KrakenBook("H/YP", depth, pp, qp), RefBook(depth, pp, qp)
    mid = 1_000 * 10**pp

    def levels(side: str, most: int) -> list[dict]:
        result = []
        for _ in range(data.draw(st.integers(0, most))):
            offset = data.draw(st.integers(1, 3 * depth))
            price = mid + offset if side == "ask" else mid - offset
            round_qty = st.sampled_from([1, 10**qp, max(1, 10**qp // 2)])  # 1E-8, 1, 0.5
            qty = (
                0
                if data.draw(st.booleans())
                else data.draw(st.integers(1, 10 ** (qp + 2)) | round_qty)
            )
            result.append(
                {
                    "price": hypothesis_number(data, price, pp),
                    "qty": hypothesis_number(data, qty, qp),
                }
            )
        return result

    for i in range(data.draw(st.integers(1, 25))):
        snapshot = i == 0 or data.draw(st.integers(0, 20)) == 0
        most = depth + 5 if snapshot else 6
        msg = item(levels("ask", most), levels("bid", most), 0, "H/YP")
        msg["checksum"] = ref.apply(msg, snapshot=snapshot)
        kind = "snapshot" if snapshot else "update"
        assert book.apply_message({"type": kind, "data": [msg]}), f"message {i}"
        assert book.checksum() == msg["checksum"]
        assert book.asks() == ref.sorted_asks()
        assert book.bids() == ref.sorted_bids()
