"""Warehouse publish benchmark: three years of the full-universe market_bars to SQLite and to
PostgreSQL, ours beside a bare bulk load of the same frame.

The frame is built once, untimed, from the sandbox simulator (seed 7, as of 2026-11-20) the way
market_bars holds it: Yahoo bars of every instrument, 2023-01-02..2025-12-31 (about 410k rows),
validated against the dataset's Pandera model. Then, interleaved and repeated (A B C D A B C D
…), each on a fresh target (a new SQLite file; a new PostgreSQL database on 127.0.0.1:5432,
dropped right after):

- **ours (sqlite|postgres)**: what the `warehouse_market_bars` asset does for a run over the
  whole range: `create_tables` (typed columns, primary key (symbol, date), query index) and
  `publish` of the window in one transaction (delete the window, then ``executemany`` in
  batches on SQLite, ``COPY … FROM STDIN`` (CSV) on PostgreSQL);
- **bare (sqlite)**: ``DataFrame.to_sql`` of the same frame into a new table (no key, no
  index, pandas' own types);
- **bare (postgres)**: ``CREATE TABLE`` with the same column types (no key, no index) and a
  bare ``COPY`` of ``DataFrame.to_csv`` through psycopg2's ``copy_expert``, one commit.

It prints rows per second (medians), the ratios ours / bare, and the rows each table holds
afterwards (which must equal the frame's). Timings are never asserted anywhere.

    .venv/bin/python benchmarks/warehouse_publish.py                 # SQLite and PostgreSQL, x3
    .venv/bin/python benchmarks/warehouse_publish.py --targets sqlite --repeat 5
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from _common import PG, drop_database, load_note, postgres_database

from ingest_platform.core import settings
from ingest_platform.market.schema import MARKET_BARS
from ingest_platform.publish.warehouse import Window, create_tables, publish
from ingest_platform.reference.universe import load_instruments
from ingest_platform.sandbox.data import MarketSimulator

START, END = "2023-01-02", "2025-12-31"
INGESTED_AT = pd.Timestamp("2026-01-01 14:00", tz="UTC")
TABLE = "market_bars"


def build_frame() -> pd.DataFrame:
    """market_bars over three years of the full universe (untimed)."""
    sim = MarketSimulator(seed=7, as_of="2026-11-20")
    symbols = sorted(load_instruments(settings.reference_dir())["symbol"])
    frames = []
    for symbol in symbols:
        frame = sim.daily_bars(symbol, START, END, provider="yahoo").reset_index()
        frame.insert(0, "symbol", symbol)
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True).assign(source="yahoo", ingested_at=INGESTED_AT)
    return MARKET_BARS.validate(frame.reindex(columns=MARKET_BARS.columns))


def _pg_url(database: str) -> str:
    return f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{database}"


def ours(engine: sa.Engine, frame: pd.DataFrame) -> None:
    metadata = create_tables(engine, [MARKET_BARS])
    window = Window(MARKET_BARS.partition_column, *MARKET_BARS.key_window([START, END]))
    publish(engine, MARKET_BARS, frame, window, metadata)


def bare_sqlite(engine: sa.Engine, frame: pd.DataFrame) -> None:
    frame.to_sql(TABLE, engine, index=False)


_PG_TYPES = {
    "symbol": "text",
    "date": "date",
    "open": "double precision",
    "high": "double precision",
    "low": "double precision",
    "close": "double precision",
    "adj_close": "double precision",
    "volume": "bigint",
    "source": "text",
    "ingested_at": "timestamptz",
}


def bare_postgres(engine: sa.Engine, frame: pd.DataFrame) -> None:
    raw = engine.raw_connection()
    try:
        columns = list(frame.columns)
        with raw.cursor() as cursor:
            ddl = ", ".join(f'"{c}" {_PG_TYPES[c]}' for c in columns)
            cursor.execute(f'CREATE TABLE "{TABLE}" ({ddl})')
            buffer = io.StringIO()
            frame.to_csv(buffer, header=False, index=False, na_rep="\\N")
            buffer.seek(0)
            cursor.copy_expert(f"COPY \"{TABLE}\" FROM STDIN WITH (FORMAT csv, NULL '\\N')", buffer)
        raw.commit()
    finally:
        raw.close()


VARIANTS: dict[tuple[str, str], Callable[[sa.Engine, pd.DataFrame], None]] = {
    ("ours", "sqlite"): ours,
    ("bare", "sqlite"): bare_sqlite,
    ("ours", "postgres"): ours,
    ("bare", "postgres"): bare_postgres,
}


def run_once(target: str, body: Callable, frame: pd.DataFrame, base: Path) -> tuple[float, int]:
    """Time `body` on a fresh target; return wall seconds and the rows the table then holds."""
    database = None
    if target == "sqlite":
        url = f"sqlite:///{base / f'warehouse-{time.monotonic_ns()}.db'}"
    else:
        database = postgres_database()
        url = _pg_url(database)
    engine = sa.create_engine(url)
    try:
        with engine.connect():
            pass  # connect before the clock starts, as a long-lived resource would be
        started = time.perf_counter()
        body(engine, frame)
        wall = time.perf_counter() - started
        with engine.connect() as connection:
            rows = connection.execute(sa.text(f'SELECT count(*) FROM "{TABLE}"')).scalar_one()
    finally:
        engine.dispose()
        if database:
            drop_database(database)
    return wall, int(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every variant")
    parser.add_argument("--targets", default="sqlite,postgres", help="sqlite, postgres or both")
    args = parser.parse_args()
    targets = [t for t in args.targets.split(",") if t]

    started = time.perf_counter()
    frame = build_frame()
    print(
        f"frame built in {time.perf_counter() - started:.1f} s: {len(frame):,} rows of "
        f"{frame['symbol'].nunique()} symbols, {START}..{END}",
        flush=True,
    )
    base = Path(tempfile.mkdtemp(prefix="warehouse-publish-"))
    walls: dict[tuple[str, str], list[float]] = {k: [] for k in VARIANTS if k[1] in targets}
    tables: dict[tuple[str, str], set[int]] = {k: set() for k in walls}
    try:
        for round_no in range(1, args.repeat + 1):
            for (name, target), values in walls.items():
                wall, rows = run_once(target, VARIANTS[(name, target)], frame, base)
                values.append(wall)
                tables[(name, target)].add(rows)
                label = f"{name} ({target})"
                print(
                    f"round {round_no}: {label:<16} {wall:6.2f} s "
                    f"{len(frame) / wall:>10,.0f} rows/s",
                    flush=True,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)

    print(
        f"\nPublish of {len(frame):,} market_bars rows, {os.cpu_count()} cores, "
        f"{args.repeat} interleaved rounds (medians); {load_note()}"
    )
    print(f"{'run':<20}{'median s':>10}{'rows/s':>12}{'min s':>8}{'max s':>8}  rows in table")
    for (name, target), values in walls.items():
        median = statistics.median(values)
        held = ", ".join(f"{n:,}" for n in sorted(tables[(name, target)]))
        print(
            f"{name + ' (' + target + ')':<20}{median:>10.2f}{len(frame) / median:>12,.0f}"
            f"{min(values):>8.2f}{max(values):>8.2f}  {held}"
        )
    for target in targets:
        ours_s = statistics.median(walls[("ours", target)])
        bare_s = statistics.median(walls[("bare", target)])
        print(
            f"[{target}] ours / bare (time) = {ours_s / bare_s:.2f}; "
            f"ours rows/s = {bare_s / ours_s:.2f} x bare's"
        )


if __name__ == "__main__":
    main()
