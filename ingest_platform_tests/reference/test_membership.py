"""The shipped S&P 500 history reconciles into exact membership, and bad history files are
refused with the file and line named."""

from __future__ import annotations

import re
import shutil

import pandas as pd
import pytest

from ingest_platform.core import settings
from ingest_platform.reference import membership, universe
from ingest_platform.reference.membership_files import (
    CHANGES_FILE,
    SYMBOL_CHANGES_FILE,
    MembershipFileError,
)


@pytest.fixture(scope="module")
def history():
    return membership.load_history(settings.reference_dir())


def _symbols(history, day):
    return {symbol for _, symbol in history.members_on(day)}


def _id_of(history, day, symbol):
    (ident,) = [i for i, s in history.members_on(day) if s == symbol]
    return ident


def test_a_rename_keeps_the_instrument_and_the_ticker_in_force_changes(history):
    assert "FB" in _symbols(history, "2022-06-08") and "META" not in _symbols(history, "2022-06-08")
    assert "META" in _symbols(history, "2022-06-09") and "FB" not in _symbols(history, "2022-06-09")
    assert _id_of(history, "2022-06-08", "FB") == _id_of(history, "2022-06-09", "META")
    assert _id_of(history, "2022-06-09", "META") == "FB@2018-01-01"
    # Fiserv went FISV -> FI -> FISV: one instrument throughout.
    ids = {_id_of(history, d, s) for d, s in [("2023-01-03", "FISV"), ("2024-01-02", "FI"),
                                               ("2026-01-02", "FISV")]}  # fmt: skip
    assert ids == {"FISV@2018-01-01"}


def test_a_reused_ticker_is_two_instruments(history):
    # 2019-03-19: FOXA left with 21st Century Fox and came back with Fox Corporation.
    assert _id_of(history, "2019-03-18", "FOXA") != _id_of(history, "2019-03-19", "FOXA")
    # 2020-03-02: Ingersoll-Rand plc became Trane (TT); the new Ingersoll Rand joined as IR.
    assert _id_of(history, "2020-02-28", "IR") == _id_of(history, "2020-03-02", "TT")
    assert _id_of(history, "2020-03-02", "IR") == "IR@2020-03-02"


def test_removals_and_additions_take_effect_on_their_day(history):
    before, after = _symbols(history, "2023-03-14"), _symbols(history, "2023-03-15")
    assert {"SIVB", "SBNY"} <= before and not {"SIVB", "SBNY"} & after
    assert {"PODD", "BG"} <= after and not {"PODD", "BG"} & before
    # A company that joined later is absent before its day; a removed one present before.
    assert "TSLA" not in _symbols(history, "2020-12-18") and "TSLA" in _symbols(
        history, "2020-12-21"
    )
    assert "AAL" in _symbols(history, "2024-09-20") and "AAL" not in _symbols(history, "2024-09-23")


@pytest.mark.slow
def test_every_day_since_2018_has_a_plausible_count_and_today_is_the_snapshot(history):
    counts = [len(history.members_on(d)) for d in pd.bdate_range("2018-01-02", "2026-06-30")]
    assert min(counts) >= 503 and max(counts) <= 507
    snapshot = pd.read_csv(settings.reference_dir() / universe.CONSTITUENTS_FILE, dtype=str)
    assert _symbols(history, "2026-06-30") == set(snapshot["symbol"])
    with pytest.raises(ValueError, match="before 2018-01-01"):
        history.members_on("2017-12-29")


def test_members_by_partition_is_members_on_per_key(history):
    keys = ["2022-06-08", "2022-06-09"]
    by_key = history.members_by_partition(keys)
    assert by_key == {k: history.members_on(k) for k in keys}
    assert ("FB@2018-01-01", "FB") in by_key["2022-06-08"]
    assert ("FB@2018-01-01", "META") in by_key["2022-06-09"]


@pytest.fixture
def folder(tmp_path):
    copy = tmp_path / "reference"
    shutil.copytree(settings.reference_dir(), copy)
    return copy


def _edit(folder, name, edit):
    path = folder / name
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def _insert_at(date, row):
    """Insert `row` where its date keeps the file in order; returns (edit, line number)."""
    place = {}

    def edit(lines):
        i = next(i for i, line in enumerate(lines[1:], start=1) if line[:10] > date)
        place["line"] = i + 1
        return [*lines[:i], row, *lines[i:]]

    return edit, place


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            "2021-05-03,,,AAPL,Apple Inc.,",
            r"removes AAPL on 2021-05-03, but AAPL is still a member",
        ),
        ("2021-05-03,,,,,", r"the row adds and removes nothing"),
        ("2021-05-03,brk/b,Berkshire,,,", r"added_ticker 'brk/b' is not a ticker"),
        ("2021-05-03,ZZZ,,,Gone Inc.,", r"removed_security 'Gone Inc.' has no ticker"),
    ],
)
def test_a_bad_changes_row_is_refused_with_its_line(folder, row, message):
    edit, place = _insert_at("2021-05-03", row)
    _edit(folder, CHANGES_FILE, edit)
    with pytest.raises(MembershipFileError, match=message) as caught:
        membership.load_history(folder)
    assert f"{CHANGES_FILE}:{place['line']}" in str(caught.value)


def test_adding_a_member_twice_names_both_lines(folder):
    # TSLA joined on 2020-12-21 (line 71); a second addition without a removal between.
    edit, place = _insert_at("2021-05-03", "2021-05-03,TSLA,Tesla,,,")
    _edit(folder, CHANGES_FILE, edit)
    expected = (
        f"{CHANGES_FILE}:71: adds TSLA on 2020-12-21, but TSLA is not a member after that day: "
        f"it is added again at {CHANGES_FILE}:{place['line']} with no removal between"
    )
    with pytest.raises(MembershipFileError, match=re.escape(expected)):
        membership.load_history(folder)


def test_a_date_out_of_order_or_malformed_is_refused_with_its_line(folder):
    _edit(folder, CHANGES_FILE, lambda lines: [*lines, "2019-01-02,ZZZ,Late Inc.,,,"])
    with pytest.raises(MembershipFileError, match=r":174: date 2019-01-02 is out of order"):
        membership.load_history(folder)
    _edit(folder, CHANGES_FILE, lambda lines: [*lines[:-1], "2026-13-01,ZZZ,Late Inc.,,,"])
    with pytest.raises(MembershipFileError, match=r":174: date '2026-13-01' is not a YYYY-MM-DD"):
        membership.load_history(folder)
    _edit(folder, CHANGES_FILE, lambda lines: ["day,added,removed", *lines[1:]])
    with pytest.raises(MembershipFileError, match=r":1: header must be date,added_ticker"):
        membership.load_history(folder)


def test_a_count_that_drifts_from_500_is_refused_naming_the_lines(folder):
    # Twelve removals of tickers that were never members: consistent, but the count drifts.
    rows = [f"2021-05-03,,,ZZ{chr(65 + i)},Phantom {i}," for i in range(12)]
    edit, place = _insert_at("2021-05-03", rows[0])
    _edit(folder, CHANGES_FILE, lambda lines: (e := edit(lines))[: place["line"]] + rows[1:]
          + e[place["line"]:])  # fmt: skip
    with pytest.raises(MembershipFileError, match=r"members before 2021-05-03, outside 495\.\.510"):
        membership.load_history(folder)


def test_a_ticker_change_of_a_non_member_is_refused_with_its_line(folder):
    def edit(lines):
        return [*lines[:4], "2019-06-02,NOPE,NOPE2,Nobody,made up,test", *lines[4:]]

    _edit(folder, SYMBOL_CHANGES_FILE, edit)
    expected = re.escape(f"{SYMBOL_CHANGES_FILE}:5: NOPE -> NOPE2 on 2019-06-02, but NOPE2 is not")
    with pytest.raises(MembershipFileError, match=expected):
        membership.load_history(folder)


def test_a_symbol_change_without_its_new_ticker_is_refused(folder):
    _edit(folder, SYMBOL_CHANGES_FILE, lambda lines: [*lines, "2026-02-01,MMM,,3M,x,y"])
    with pytest.raises(MembershipFileError, match=r":34: old_symbol and new_symbol are both req"):
        membership.load_history(folder)
