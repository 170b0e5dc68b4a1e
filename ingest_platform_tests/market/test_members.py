"""Point-in-time membership of bar partitions (`market.members`) and the unavailable-from-source
record (`market.unavailable`), on small crafted histories."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from ingest_platform.core.http.errors import NoHistory, SourceUnavailable, UnknownSymbol
from ingest_platform.market import unavailable
from ingest_platform.market.members import MemberDays
from ingest_platform.market.sources.bars import BarsFetch, Instrument, empty_actions

T = pd.Timestamp
NAT = pd.NaT

# OLD@2018-01-01 traded as XX until 2023-05-01, then as YY until its removal on 2023-09-01.
# NEW@2024-01-02 is another company that took the ticker XX later: never the same instrument.
# JOIN@2023-03-01 joined on 2023-03-01. SPY is no member of anything.
INSTRUMENTS = pd.DataFrame(
    {
        "symbol": ["YY", "XX", "JOIN", "SPY"],
        "instrument_id": ["OLD@2018-01-01", "NEW@2024-01-02", "JOIN@2023-03-01", "SPY@2018-01-01"],
        "asset_class": ["equity", "equity", "equity", "etf"],
        "active": [False, True, True, True],
    }
)
INTERVALS = pd.DataFrame(
    {
        "instrument_id": ["OLD@2018-01-01", "OLD@2018-01-01", "NEW@2024-01-02", "JOIN@2023-03-01"],
        "symbol": ["XX", "YY", "XX", "JOIN"],
        "added": [T("2018-01-01"), T("2023-05-01"), T("2024-01-02"), T("2023-03-01")],
        "removed": [T("2023-05-01"), T("2023-09-01"), NAT, NAT],
    }
)
RUN = [
    Instrument(s, s, c, "XNYS")
    for s, c in zip(INSTRUMENTS.symbol, INSTRUMENTS.asset_class, strict=True)
]


@pytest.fixture
def members() -> MemberDays:
    return MemberDays.of(INSTRUMENTS, INTERVALS)


def bars(rows: list[tuple[str, str]]) -> pd.DataFrame:
    return pd.DataFrame({"symbol": [s for s, _ in rows], "date": [T(d) for _, d in rows]})


def test_each_day_expects_its_own_members_and_every_non_member(members):
    trading = {k: {"YY", "XX", "JOIN", "SPY"} for k in ("2023-02-01", "2023-06-01", "2024-02-01")}
    expected = members.expected(RUN, trading)
    assert expected == {
        "2023-02-01": {"YY", "SPY"},  # OLD (fetched as YY), before JOIN joined
        "2023-06-01": {"YY", "JOIN", "SPY"},
        "2024-02-01": {"XX", "JOIN", "SPY"},  # OLD removed; NEW, fetched as XX, joined
    }
    # As stored: OLD under the ticker of the day.
    assert members.in_force(expected)["2023-02-01"] == {"XX", "SPY"}
    assert members.canonical({"2023-02-01": {"XX", "SPY"}}) == {"2023-02-01": {"YY", "SPY"}}


def test_days_with_the_same_members_share_one_set(members):
    everyone = {"YY", "XX", "JOIN", "SPY"}
    days = ("2023-02-01", "2023-02-02", "2023-06-01", "2023-06-02")
    expected = members.expected(RUN, dict.fromkeys(days, everyone))
    assert expected["2023-02-01"] == {"YY", "SPY"} and expected["2023-06-01"] == {
        "YY", "JOIN", "SPY"
    }  # fmt: skip
    assert expected["2023-02-01"] is expected["2023-02-02"]
    assert expected["2023-06-01"] is expected["2023-06-02"]
    stored = members.in_force(expected)
    assert stored["2023-02-01"] == {"XX", "SPY"} and stored["2023-06-01"] == {"YY", "JOIN", "SPY"}
    assert stored["2023-02-01"] is stored["2023-02-02"]


def test_fetched_bars_are_cut_to_membership_and_relabelled_by_day(members):
    fetched = bars(
        [
            ("YY", "2023-02-01"),  # OLD as XX that day
            ("YY", "2023-06-01"),
            ("YY", "2023-10-02"),  # after its removal: not a member, dropped
            ("JOIN", "2023-02-01"),  # before it joined: dropped
            ("JOIN", "2023-03-01"),
            ("SPY", "2023-02-01"),
        ]
    )
    kept, dropped = members.cut_and_relabel(fetched)
    assert dropped == 2
    assert list(zip(kept["symbol"], kept["date"].dt.strftime("%Y-%m-%d"), strict=True)) == [
        ("XX", "2023-02-01"),
        ("YY", "2023-06-01"),
        ("JOIN", "2023-03-01"),
        ("SPY", "2023-02-01"),
    ]


def test_a_reused_ticker_is_two_instruments_and_a_rename_is_one(members):
    stored = bars([("XX", "2023-02-01"), ("YY", "2023-06-01"), ("XX", "2024-02-01")])
    ids = members.instrument_ids(stored).tolist()
    assert ids == ["OLD@2018-01-01", "OLD@2018-01-01", "NEW@2024-01-02"]
    assert members.tickers_of(["YY"]) == {"XX", "YY"}
    assert members.overlapping("2023-10-01", "2023-12-29") == {"JOIN"}


def _fetch(failures: dict) -> BarsFetch:
    return BarsFetch(
        "yahoo", dt.date(2023, 1, 3), dt.date(2023, 12, 29), bars([]), empty_actions(), failures
    )


def test_only_a_former_members_no_history_answer_is_unavailable(members):
    failures = {
        "YY": UnknownSymbol("yahoo", "No data found, symbol may be delisted", "YY"),
        "JOIN": UnknownSymbol("yahoo", "No data found, symbol may be delisted", "JOIN"),
    }
    keys = ["2023-01-03", "2023-05-01", "2023-08-31", "2023-09-01"]
    rest, gaps = unavailable.separate(_fetch(failures), members, keys, T("2026-01-05", tz="UTC"))
    assert list(rest.failures) == ["JOIN"]  # a current member unknown to the source: a failure
    assert gaps.to_dict("records") == [
        {
            "source": "yahoo",
            "symbol": "YY",
            "instrument_id": "OLD@2018-01-01",
            "reason": "No data found, symbol may be delisted",
            "first_date": "2023-01-03",
            "last_date": "2023-08-31",
            "recorded_at": "2026-01-05T00:00:00+00:00",
        }
    ]
    # An outage is never taken for a delisting, however former the member.
    outage = {"YY": SourceUnavailable("yahoo", "HTTP 503", "YY")}
    rest, gaps = unavailable.separate(_fetch(outage), members, keys, T("2026-01-05", tz="UTC"))
    assert list(rest.failures) == ["YY"] and gaps.empty


def test_the_record_widens_and_forgets_a_symbol_once_delivered(lake, members):
    now = T("2026-01-05", tz="UTC")
    empty = {"YY": NoHistory("yahoo", "possibly delisted; empty chart", "YY")}
    _, first = unavailable.separate(_fetch(empty), members, ["2023-03-01"], now)
    unavailable.record(lake, "yahoo", first, delivered=[])
    _, second = unavailable.separate(_fetch(empty), members, ["2023-07-03"], now)
    known = unavailable.record(lake, "yahoo", second, delivered=["SPY"])
    assert known[["symbol", "first_date", "last_date"]].values.tolist() == [
        ["YY", "2023-03-01", "2023-07-03"]
    ]
    read = unavailable.read_unavailable(lake)
    assert read["first_date"].tolist() == [T("2023-03-01")]
    assert unavailable.record(lake, "yahoo", unavailable.empty_gaps(), ["YY"]).empty
    assert unavailable.read_unavailable(lake).empty


def test_a_broken_record_is_named(lake):
    lake.write_json(unavailable.record_name("yahoo"), ["not", "a", "record"])
    with pytest.raises(ValueError, match=r"unavailable_yahoo\.json: not an unavailable record"):
        unavailable.read_unavailable(lake)


def test_every_row_is_cut_by_its_own_instruments_spells_among_many():
    # 300 instruments over 12 days: each third renamed on day 4, each fifth removed on day 8,
    # each seventh joined on day 6; ETF rows pass untouched. Every kept row carries the ticker
    # its own instrument had that day, whatever the other instruments' spells say.
    days = pd.bdate_range("2024-01-01", periods=12)
    names = [f"S{i:03d}" for i in range(300)]
    spells = []
    for i, name in enumerate(names):
        added = days[6] if i % 7 == 0 else T("2018-01-01")
        removed = days[8] if i % 5 == 0 else NAT
        if i % 3 == 0 and added < days[4]:
            spells.append((f"{name}@2018-01-01", f"OLD{i:03d}", added, days[4]))
            added = days[4]
        spells.append((f"{name}@2018-01-01", name, added, removed))
    intervals = pd.DataFrame(spells, columns=["instrument_id", "symbol", "added", "removed"])
    instruments = pd.DataFrame(
        {
            "symbol": [*names, "SPY"],
            "instrument_id": [*(f"{n}@2018-01-01" for n in names), "SPY@2018-01-01"],
            "active": [i % 5 != 0 for i in range(300)] + [True],
        }
    )
    members = MemberDays.of(instruments, intervals)
    fetched = bars([(s, str(d.date())) for d in days for s in [*reversed(names), "SPY"]])

    kept, dropped = members.cut_and_relabel(fetched)

    def ticker_on(i: int, day: pd.Timestamp) -> str | None:
        if (i % 7 == 0 and day < days[6]) or (i % 5 == 0 and day >= days[8]):
            return None
        return f"OLD{i:03d}" if i % 3 == 0 and i % 7 != 0 and day < days[4] else names[i]

    expected = [
        (t, d)
        for d in days
        for t in [*(ticker_on(i, d) for i in reversed(range(300))), "SPY"]
        if t is not None
    ]
    assert list(zip(kept["symbol"], kept["date"], strict=True)) == expected
    assert dropped == len(fetched) - len(expected)
