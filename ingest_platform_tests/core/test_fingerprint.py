"""Content hashes: equal for the same values however they are held, different otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest_platform.core import fingerprint
from ingest_platform.core.lake import ParquetLake
from ingest_platform.market.schema import MARKET_BARS

SCHEMA = MARKET_BARS.arrow_schema


def bars(n: int = 4, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = rng.uniform(10, 500, n).round(4)
    return MARKET_BARS.validate(
        pd.DataFrame(
            {
                "symbol": [f"S{i}" for i in range(n)],
                "instrument_id": [f"S{i}@2018-01-01" for i in range(n)],
                "date": pd.Timestamp("2024-06-10"),
                "open": close,
                "high": close * 1.01,
                "low": close * 0.99,
                "close": close,
                "adj_close": close,
                "volume": rng.integers(1, 10**7, n),
                "source": "yahoo",
                "ingested_at": pd.Timestamp("2024-06-11T02:00:00.123456", tz="UTC"),
            }
        )
    )


def test_the_hash_ignores_row_order_and_dtype_but_not_values():
    frame = bars()
    reference = fingerprint.content_hash(frame, SCHEMA)
    shuffled = frame.sample(frac=1, random_state=3).reset_index(drop=True)
    assert fingerprint.content_hash(shuffled, SCHEMA) == reference
    # The same instants in another unit and zone, the same strings as objects.
    other = frame.assign(
        ingested_at=frame["ingested_at"]
        .dt.tz_convert("America/New_York")
        .astype("datetime64[us, America/New_York]"),
        symbol=frame["symbol"].astype(object),
    )
    assert fingerprint.content_hash(other, SCHEMA) == reference
    changed = frame.copy()
    changed.loc[2, "close"] = changed.loc[2, "close"] * (1 + 1e-12)
    assert fingerprint.content_hash(changed, SCHEMA) != reference
    assert fingerprint.content_hash(frame.iloc[:-1], SCHEMA) != reference
    assert fingerprint.content_hash(frame.iloc[0:0], SCHEMA) == fingerprint.EMPTY


def test_what_the_lake_reads_back_hashes_as_what_was_written(tmp_path):
    lake = ParquetLake(root=str(tmp_path / "lake"))
    frame = bars(50)
    write = MARKET_BARS.write(lake, {"2024-06-10": frame})
    back = lake.read(MARKET_BARS.name, ["2024-06-10"])
    assert fingerprint.content_hash(back, SCHEMA) == write.partitions["2024-06-10"].content_hash


@settings(max_examples=50, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=6),
    seed=st.integers(min_value=0, max_value=1000),
)
@pytest.mark.slow
def test_hashing_many_partitions_at_once_equals_one_at_a_time(sizes, seed):
    frames = {f"2024-06-{10 + i:02d}": bars(n, seed + i) for i, n in enumerate(sizes)}
    together = fingerprint.hashes_of(frames, SCHEMA)
    assert together == {k: fingerprint.content_hash(f, SCHEMA) for k, f in frames.items()}


def test_a_null_differs_from_any_value():
    schema = pyarrow.schema([("x", pyarrow.float64()), ("s", pyarrow.string())])
    with_null = pd.DataFrame({"x": [1.0, None], "s": ["a", None]})
    with_zero = pd.DataFrame({"x": [1.0, 0.0], "s": ["a", ""]})
    assert fingerprint.content_hash(with_null, schema) != fingerprint.content_hash(
        with_zero, schema
    )


@pytest.mark.parametrize(
    "column", ["symbol", "instrument_id", "close", "volume", "date", "ingested_at"]
)
def test_every_column_counts(column):
    frame = bars()
    other = frame.copy()
    value = other.loc[0, column]
    if isinstance(value, str):
        other.loc[0, column] = value + "X"
    elif isinstance(value, pd.Timestamp):
        other.loc[0, column] = value + pd.Timedelta(days=1)
    else:
        other.loc[0, column] = value + 1
    assert fingerprint.content_hash(other, SCHEMA) != fingerprint.content_hash(frame, SCHEMA)


def test_hashes_recorded_by_earlier_releases_still_match():
    # Dagster's materializations, metadata.json and the audit hold hashes written long ago:
    # how a column is held while hashing (strings as a categorical since issue 20) must not
    # change them. The figures were computed by the release before that change.
    assert fingerprint.content_hash(bars(6, seed=5), SCHEMA) == "4b7894c16330e0f4cbbf3c19badc58b3"
    schema = pyarrow.schema([("x", pyarrow.float64()), ("s", pyarrow.string())])
    frame = pd.DataFrame({"x": [1.0, None, 2.5], "s": ["a", None, "é"]})
    assert fingerprint.content_hash(frame, schema) == "f31c044d976ce43a9fb0ec768cf614e5"


def test_slices_of_one_table_hash_as_the_frames_they_hold():
    sizes = {"2024-06-10": 3, "2024-06-11": 0, "2024-06-12": 5}
    frames = {k: bars(n, seed=i) for i, (k, n) in enumerate(sizes.items())}
    stacked = pd.concat([f for f in frames.values() if len(f)], ignore_index=True)
    table = fingerprint.as_table(stacked, SCHEMA)
    assert fingerprint.table_hashes(table, sizes) == fingerprint.hashes_of(frames, SCHEMA)
    assert fingerprint.table_hashes(table, sizes)["2024-06-11"] == fingerprint.EMPTY
    with pytest.raises(ValueError, match="slices of 7 rows for a table of 8"):
        fingerprint.table_hashes(table, {"2024-06-10": 7})
