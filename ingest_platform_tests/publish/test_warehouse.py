"""The SQL warehouse, on the embedded SQLite file and on the real PostgreSQL server.

Every behaviour is checked on both engines: typed tables with the natural key as primary key,
a window replaced in one transaction (re-publishing never duplicates a row), a window that
does not cover the rows refused, and a writer killed mid-publish that leaves the previous
content intact.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from ingest_platform.market.schema import MARKET_BARS
from ingest_platform.publish.warehouse import (
    WarehouseError,
    Window,
    create_tables,
    publish,
)

T0 = pd.Timestamp("2024-07-10 22:00", tz="UTC")


def bars(days: list[str], symbols: list[str], close: float = 100.0) -> pd.DataFrame:
    rows = [
        {
            "symbol": s,
            "instrument_id": f"{s}@2018-01-01",
            "date": pd.Timestamp(d),
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "adj_close": None if s == "EURUSD" else close * 0.98,
            "volume": 0 if s == "EURUSD" else 1000,
            "source": "yahoo",
            "ingested_at": T0,
        }
        for d in days
        for s in symbols
    ]
    return MARKET_BARS.validate(pd.DataFrame(rows))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warehouse.sqlite'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    yield engine
    engine.dispose()


def table_rows(engine) -> pd.DataFrame:
    with engine.connect() as conn:
        rows = pd.read_sql(sa.text("SELECT * FROM market_bars ORDER BY symbol, date"), conn)
    rows["date"] = pd.to_datetime(rows["date"])  # SQLite hands dates back as text
    return rows


DAYS = ["2024-07-08", "2024-07-09", "2024-07-10"]


def test_the_table_is_typed_keyed_and_indexed_from_the_dataset(engine):
    create_tables(engine, [MARKET_BARS])
    inspector = sa.inspect(engine)
    assert inspector.get_pk_constraint("market_bars")["constrained_columns"] == ["symbol", "date"]
    assert any(ix["column_names"] == ["date"] for ix in inspector.get_indexes("market_bars"))
    types = {c["name"]: c["type"] for c in inspector.get_columns("market_bars")}
    assert isinstance(types["date"], sa.Date)
    assert isinstance(types["close"], sa.Float | sa.Double)
    assert isinstance(types["volume"], sa.BigInteger | sa.Integer)
    assert isinstance(types["ingested_at"], sa.DateTime)
    nullable = {c["name"]: c["nullable"] for c in inspector.get_columns("market_bars")}
    assert nullable["adj_close"] and not nullable["close"]


def test_republishing_a_window_never_duplicates_a_row(engine):
    frame = bars(DAYS, ["AAPL", "MSFT", "EURUSD"])
    window = Window("date", DAYS[0], DAYS[-1])
    first = publish(engine, MARKET_BARS, frame, window)
    again = publish(engine, MARKET_BARS, frame, window)
    assert (first.deleted, first.inserted) == (0, 9)
    assert (again.deleted, again.inserted) == (9, 9)
    rows = table_rows(engine)
    assert len(rows) == 9 and not rows.duplicated(["symbol", "date"]).any()
    assert rows["adj_close"].isna().sum() == 3  # FX has no adjusted close: NULL, not 0

    # A later day is appended; republishing one day replaces only that day.
    publish(
        engine,
        MARKET_BARS,
        bars(["2024-07-11"], ["AAPL"]),
        Window("date", "2024-07-11", "2024-07-11"),
    )
    publish(
        engine,
        MARKET_BARS,
        bars(["2024-07-09"], ["AAPL"], 50.0),
        Window("date", "2024-07-09", "2024-07-09"),
    )
    rows = table_rows(engine)
    assert len(rows) == 7 + 1  # 07-09 now holds AAPL only
    assert rows.loc[rows["date"] == pd.Timestamp("2024-07-09"), "close"].tolist() == [50.0]
    day = rows.loc[rows["date"] == pd.Timestamp("2024-07-08"), "symbol"]
    assert day.tolist() == ["AAPL", "EURUSD", "MSFT"]


@pytest.mark.slow
def test_three_years_published_twice_hold_one_row_per_symbol_and_date(engine):
    """The whole backfill range as one window, twice (a re-run of a three-year backfill)."""
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2023-01-02", "2025-12-31")]
    symbols = [f"S{i:03d}" for i in range(40)] + ["EURUSD"]
    frame = bars(days, symbols)
    window = Window("date", days[0], days[-1])
    publish(engine, MARKET_BARS, frame, window)
    again = publish(engine, MARKET_BARS, frame, window)
    assert again.deleted == again.inserted == len(days) * len(symbols) == 783 * 41
    with engine.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM market_bars")).scalar_one()
        repeated = conn.execute(
            sa.text(
                "SELECT count(*) FROM (SELECT symbol, date FROM market_bars "
                "GROUP BY symbol, date HAVING count(*) > 1) AS repeated"
            )
        ).scalar_one()
    assert (total, repeated) == (783 * 41, 0)


def test_rows_outside_the_window_are_refused_and_nothing_changes(engine):
    publish(engine, MARKET_BARS, bars(DAYS, ["AAPL"]), Window("date", DAYS[0], DAYS[-1]))
    with pytest.raises(WarehouseError, match=r"market_bars: 2 row\(s\) fall outside"):
        publish(engine, MARKET_BARS, bars(DAYS, ["MSFT"]), Window("date", DAYS[0], DAYS[0]))
    assert table_rows(engine)["symbol"].tolist() == ["AAPL"] * 3


def test_a_duplicate_key_fails_the_publish_and_keeps_the_previous_content(engine):
    publish(engine, MARKET_BARS, bars(DAYS, ["AAPL"]), Window("date", DAYS[0], DAYS[-1]))
    twice = pd.concat([bars(DAYS, ["MSFT"]), bars(DAYS[:1], ["MSFT"])], ignore_index=True)
    with pytest.raises(WarehouseError, match=r"market_bars.*nothing changed"):
        publish(engine, MARKET_BARS, twice, Window("date", DAYS[0], DAYS[-1]))
    assert table_rows(engine)["symbol"].tolist() == ["AAPL"] * 3


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    import pandas as pd, sqlalchemy as sa
    from ingest_platform.market.schema import MARKET_BARS
    from ingest_platform.publish import warehouse

    url, marker = sys.argv[1], sys.argv[2]
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-01-01", "2024-12-31")]
    frame = MARKET_BARS.validate(pd.DataFrame(
        [{"symbol": s, "instrument_id": f"{s}@2018-01-01", "date": pd.Timestamp(d),
          "open": 2.0, "high": 2.0, "low": 2.0,
          "close": 2.0, "adj_close": 2.0, "volume": 1, "source": "polygon",
          "ingested_at": pd.Timestamp("2024-07-10", tz="UTC")}
         for d in days for s in ("AAPL", "MSFT")]))

    def stall(*args, **kwargs):
        # The window's old rows are deleted inside the open transaction: die now.
        open(marker, "w").close()
        time.sleep(600)

    warehouse._copy_postgres = stall
    warehouse._records = stall
    warehouse.publish(sa.create_engine(url), MARKET_BARS, frame,
                      warehouse.Window("date", days[0], days[-1]))
    """
)


@pytest.mark.slow
def test_a_writer_killed_mid_publish_leaves_the_previous_content(engine, tmp_path):
    days = [d.strftime("%Y-%m-%d") for d in pd.bdate_range("2024-01-01", "2024-12-31")]
    before = bars(days, ["AAPL"])
    publish(engine, MARKET_BARS, before, Window("date", days[0], days[-1]))
    engine.dispose()

    marker = tmp_path / "deleted-and-stalled"
    writer = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, engine.url.render_as_string(False), str(marker)],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert writer.poll() is None, writer.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the writer never reached the insert"
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(10)

    after = table_rows(engine)
    assert len(after) == len(before) and set(after["close"]) == {100.0}
    assert set(after["source"]) == {"yahoo"}  # nothing of the killed publish is visible
