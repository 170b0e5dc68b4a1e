"""Minute coverage of a stream, judged per key and UTC day (`quality.stream.coverage`)."""

from __future__ import annotations

import pandas as pd

from ingest_platform.quality.shared.finding import Status
from ingest_platform.quality.stream.coverage import stream_minute_coverage

DAYS = ["2026-11-02", "2026-11-03", "2026-11-04"]


def minutes(symbol: str, day: str, wanted) -> pd.DataFrame:
    stamps = pd.Timestamp(day, tz="UTC") + pd.to_timedelta(list(wanted), unit="min")
    return pd.DataFrame({"symbol": symbol, "minute": stamps, "gap": False})


def test_one_dead_day_fails_on_its_own_while_the_window_would_pass():
    full = range(1440)
    stream = pd.concat(
        [minutes("BTC/USD", d, full) for d in DAYS[:2]] + [minutes("BTC/USD", DAYS[2], [])]
    )
    found = stream_minute_coverage(stream, ["BTC/USD"], DAYS)
    assert found.status is Status.ERROR
    assert found.figures["coverage_overall"] > 0.66  # two of three days whole
    (row,) = found.offending.itertuples()
    assert (row.symbol, row.date, row.present) == ("BTC/USD", pd.Timestamp(DAYS[2]), 0)
    assert row.missing_minutes == "00:00..23:59"


def test_missing_minutes_are_named_as_runs_the_first_three_then_an_ellipsis():
    # Missing: 00:10, 01:00..01:04, 02:00..02:59, 03:30, and the last 600 minutes.
    missing = {10, *range(60, 65), *range(120, 180), 210, *range(840, 1440)}
    stream = minutes("ETH/USD", DAYS[0], sorted(set(range(1440)) - missing))
    found = stream_minute_coverage(stream, ["ETH/USD"], DAYS[:1])
    assert found.status is Status.ERROR  # 773 of 1440 minutes
    assert found.offending.loc[0, "missing_minutes"] == "00:10, 01:00..01:04, 02:00..02:59 …"
    assert found.offending.loc[0, "missing"] == len(missing)
