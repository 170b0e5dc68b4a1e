"""Backfill benchmark: three years of the point-in-time universe through the real Dagster CLI.

The universe is each day's S&P 500 members (former members included, fetched like any other
symbol: one request per symbol per source) plus the ETFs, FX pairs, indices and futures.

Against one sandbox (in its own process) it times, interleaved and repeated (A B C A B C …),
so that one noisy moment on a shared machine cannot decide a ratio:

- **ours**: ``dagster asset materialize`` of market_bars and its upstreams (yahoo_daily_bars,
  corporate_actions, alpha_vantage_daily_bars, polygon_daily_bars) over the partition range,
  on a fresh instance and a fresh lake each time;
- **floor**: the same five assets with empty bodies (`dagster_floor_defs.py`) through the same
  CLI and instance: what Dagster itself costs for that many partitions;
- **bare**: ``yf.download`` + ``to_parquet`` of the same symbols' Yahoo data, nothing else
  (no membership cut: every row the download returns);
- **before** (with ``--before PATH``): ``ours`` run from another checkout of the project (for
  example ``git archive <commit> | tar -x -C /tmp/before``), to compare a change in the same
  run (before point-in-time membership: today's list on every date).

Each Dagster variant runs on every instance asked for: ``sqlite`` (the repository's
dagster.yaml) and ``postgres`` (deploy/dagster-postgres.yaml on a fresh database of the server
at 127.0.0.1:5432, with ``DAGSTER_EVENT_BATCH_SIZE``). It prints medians, the ratios the goals
are stated in, the universe's symbols (today's members, former members, other instruments),
requests per source and rows written, for ``ours`` and ``before``. Timings are never asserted
anywhere.

    .venv/bin/python benchmarks/market_backfill.py                      # 3 years, SQLite, x3
    .venv/bin/python benchmarks/market_backfill.py --instances sqlite,postgres --repeat 3
    .venv/bin/python benchmarks/market_backfill.py --before /tmp/before --quick
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
from _common import (  # the script's folder is on sys.path
    BIN,
    ROOT,
    Home,
    Variant,
    fresh_home,
    get,
    load_note,
    materialize_cmd,
    print_table,
    start_sandbox,
    stop_sandbox,
    timed,
)

AS_OF = "2026-11-20"
ASSETS = (
    "yahoo_daily_bars,corporate_actions,alpha_vantage_daily_bars,polygon_daily_bars,market_bars"
)
#: The reference datasets the market assets read: the instruments and each day's members.
REFERENCE = "instruments,index_membership"
#: The keys the sandbox's Alpha Vantage and Polygon accept (any non-empty key).
SOURCE_KEYS = {"ALPHA_VANTAGE_API_KEY": "bench-av-key-0001", "POLYGON_API_KEY": "bench-pg-key-0001"}

BARE_SCRIPT = r"""
import sys, datetime as dt
import pandas as pd, yfinance as yf
from yfinance import cache
from ingest_platform.market.sources.yahoo_session import routed_session
url, start, end, out, cache_dir = sys.argv[1:6]
cache.set_cache_location(cache_dir)
tickers = pd.read_parquet(sys.argv[6])["yahoo_symbol"].tolist()
end_exclusive = (dt.date.fromisoformat(end) + dt.timedelta(days=1)).isoformat()
frame = yf.download(tickers, start=start, end=end_exclusive, session=routed_session(url + "/yahoo"),
                    auto_adjust=False, actions=True, threads=8, progress=False)
frame.to_parquet(out)
print(len(frame.stack(level=1, future_stack=True).dropna(how="all")))
"""


def _materialize(home: Home, target: list[str], args, pythonpath: str | None) -> tuple:
    env = dict(home.env)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    cmd = materialize_cmd(home, target, ASSETS, f"{args.start}...{args.end}")
    return timed(cmd, env, home.path)[:3]


def backfill_lake(home: Home, start: str, end: str) -> float:
    """instruments, then the five market assets over start..end, into `home`'s lake through the
    same CLI path as ``ours`` (the untimed setup other benchmarks start from); wall seconds."""
    target = ["-m", "ingest_platform.definitions"]
    wall = timed(materialize_cmd(home, target, REFERENCE), home.env, home.path)[0]
    cmd = materialize_cmd(home, target, ASSETS, f"{start}...{end}")
    return wall + timed(cmd, home.env, home.path)[0]


def _lake_rows(home: Home) -> dict[str, int]:
    import pyarrow.dataset as ds

    lake = home.path / "data" / "lake"
    return {
        name: ds.dataset(str(lake / name), format="parquet").count_rows()
        for name in ASSETS.split(",")
    }


def point_in_time_symbols(lake: Path, start: str, end: str) -> dict[str, list[str]]:
    """The run's universe by kind, as the ingest picks it: every non-equity instrument, today's
    members and the former ones that were members on some day of [start, end] (yahoo
    symbols)."""
    instruments = pd.read_parquet(lake / "instruments" / "all.parquet")
    spells = pd.read_parquet(lake / "index_membership" / "all.parquet")
    for column in ("added", "removed"):  # stored as Arrow dates
        spells[column] = pd.to_datetime(spells[column])
    touching = spells[
        (spells["added"] <= pd.Timestamp(end))
        & (spells["removed"].isna() | (spells["removed"] > pd.Timestamp(start)))
    ]
    member = instruments["instrument_id"].isin(touching["instrument_id"])
    equity = instruments["asset_class"] == "equity"
    kinds = {
        "members in force today": instruments[equity & member & instruments["active"]],
        "former members": instruments[equity & member & ~instruments["active"]],
        "ETFs, FX, indices, futures": instruments[~equity],
    }
    return {kind: sorted(frame["yahoo_symbol"]) for kind, frame in kinds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2023-01-02")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--quick", action="store_true", help="one quarter instead of three years")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every variant")
    parser.add_argument("--instances", default="sqlite", help="sqlite, postgres or both")
    parser.add_argument("--batch", type=int, default=500, help="DAGSTER_EVENT_BATCH_SIZE (pg)")
    parser.add_argument("--before", default=None, help="another checkout to compare against")
    parser.add_argument("--skip", default="", help="variants to leave out (ours,floor,bare)")
    args = parser.parse_args()
    if args.quick:
        args.start, args.end = "2025-10-01", "2025-12-31"
    instances = [i for i in args.instances.split(",") if i]
    skip = set(args.skip.split(","))

    variants: list[Variant] = []
    for instance in instances:
        for name in ("ours", "before", "floor"):
            if name in skip or (name == "before" and not args.before):
                continue
            variants.append(Variant(name, instance))
    if "bare" not in skip:
        variants.append(Variant("bare", None))

    base = Path(tempfile.mkdtemp(prefix="market-backfill-"))
    env = {**os.environ, **SOURCE_KEYS}
    env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
    sandbox, url = start_sandbox(env, AS_OF)
    try:
        env["INGEST_PLATFORM_SANDBOX_URL"] = url
        # The universe, once, and a warm-up fetch so no timed run pays for the sandbox's
        # series generation.
        setup = fresh_home(base, env, "sqlite", args.batch)
        timed(
            [
                str(BIN / "dagster"),
                *("asset", "materialize", "-m", "ingest_platform.definitions"),
                *("--select", REFERENCE, "-c", str(setup.path / "quiet.yaml")),
            ],
            setup.env,
            setup.path,
        )
        reference = {name: base / f"{name}.parquet" for name in REFERENCE.split(",")}
        for name, copy in reference.items():
            shutil.copy(setup.path / "data" / "lake" / name / "all.parquet", copy)
        universe = point_in_time_symbols(setup.path / "data" / "lake", args.start, args.end)
        # The bare script downloads the same symbols the ingest asks for.
        instruments = base / "universe.parquet"
        pd.DataFrame(
            {"yahoo_symbol": [s for symbols in universe.values() for s in symbols]}
        ).to_parquet(instruments)
        bare_args = [url, args.start, args.end]
        timed(
            [
                *(sys.executable, "-c", BARE_SCRIPT, *bare_args),
                *(str(base / "warm.parquet"), str(base / "yf-warm"), str(instruments)),
            ],
            env,
            base,
        )
        for round_no in range(args.repeat):
            for variant in variants:
                if variant.name == "bare":
                    out = base / f"bare-{round_no}"
                    out.mkdir()
                    wall, rss, stdout, _ = timed(
                        [
                            *(sys.executable, "-c", BARE_SCRIPT, *bare_args),
                            *(str(out / "bars.parquet"), str(out / "yf"), str(instruments)),
                        ],
                        env,
                        base,
                    )
                    variant.rows = {"bare": int(stdout.strip() or 0)}
                    shutil.rmtree(out, ignore_errors=True)
                else:
                    assert variant.instance is not None
                    home = fresh_home(base, env, variant.instance, args.batch)
                    try:
                        for name, copy in reference.items():
                            lake = home.path / "data" / "lake" / name
                            lake.mkdir(parents=True)
                            shutil.copy(copy, lake / "all.parquet")
                        get(f"{url}/_sandbox/counters", "DELETE")
                        if variant.name == "floor":
                            target = ["-f", str(ROOT / "benchmarks" / "dagster_floor_defs.py")]
                        else:
                            target = ["-m", "ingest_platform.definitions"]
                        pythonpath = args.before if variant.name == "before" else None
                        wall, rss, _ = _materialize(home, target, args, pythonpath)
                        if variant.name != "floor":
                            variant.rows = _lake_rows(home)
                            variant.requests = get(f"{url}/_sandbox/counters")
                            variant.unavailable = _unavailable(home)
                    finally:
                        home.close()
                variant.walls.append(wall)
                variant.rss.append(rss)
                print(f"round {round_no + 1}: {variant.label:<20} {wall:7.1f} s", flush=True)
    finally:
        stop_sandbox(sandbox)
        shutil.rmtree(base, ignore_errors=True)
    _report(args, variants, universe)


def _unavailable(home: Home) -> int:
    """How many symbols the run recorded as unavailable from Yahoo (0 before the record)."""
    import json

    record = home.path / "data" / "lake" / "unavailable_yahoo.json"
    return len(json.loads(record.read_text())["symbols"]) if record.exists() else 0


def _report(args, variants: list[Variant], universe: dict[str, list[str]]) -> None:
    from dagster import PartitionKeyRange

    from ingest_platform.core.partitions import market_day_partitions

    partitions = len(
        market_day_partitions.get_partition_keys_in_range(PartitionKeyRange(args.start, args.end))
    )
    print(
        f"\nBackfill {args.start}...{args.end}: {partitions} daily partitions, 5 assets, "
        f"{os.cpu_count()} cores, {args.repeat} interleaved rounds (medians); {load_note()}"
    )
    print_table(variants)
    by = {(v.name, v.instance): v for v in variants}
    bare = by.get(("bare", None))
    for instance in {v.instance for v in variants if v.instance}:
        ours, floor = by.get(("ours", instance)), by.get(("floor", instance))
        before = by.get(("before", instance))
        if ours and floor:
            print(f"[{instance}] ours / floor = {ours.median / floor.median:.2f}")
            if bare:
                goal = 1.5 * bare.median + floor.median
                print(f"[{instance}] ours / (1.5 x bare + floor) = {ours.median / goal:.2f}")
            print(f"[{instance}] ours above the floor = {ours.median - floor.median:.1f} s")
        if ours and before:
            same_rows = ours.rows == before.rows
            same_requests = ours.requests == before.requests
            print(
                f"[{instance}] before / ours = {before.median / ours.median:.2f}; "
                f"rows identical: {same_rows}; requests identical: {same_requests}"
            )
    sqlite_floor, pg_floor = by.get(("floor", "sqlite")), by.get(("floor", "postgres"))
    if sqlite_floor and pg_floor:
        print(f"floor postgres / floor sqlite = {pg_floor.median / sqlite_floor.median:.2f}")
    total = sum(len(s) for s in universe.values())
    print(
        f"point-in-time universe: {total} symbols ("
        + ", ".join(f"{len(s)} {kind}" for kind, s in universe.items())
        + ")"
    )
    for name in ("ours", "before"):
        run = next((v for v in variants if v.name == name and v.requests), None)
        if run is None:
            continue
        print(f"{name}: requests per source (symbols, total, most for one symbol):")
        for endpoint in ("yahoo.chart", "alpha_vantage.daily", "polygon.aggs"):
            per_symbol = run.requests.get(endpoint, {})
            print(
                f"  {endpoint:<22} {len(per_symbol):>5} {sum(per_symbol.values()):>7} "
                f"{max(per_symbol.values(), default=0):>4}"
            )
        print(f"{name}: rows written: " + ", ".join(f"{k} {n:,}" for k, n in run.rows.items()))
        print(f"{name}: symbols recorded unavailable from yahoo: {run.unavailable}")
    if bare:
        print(f"bare script rows: {bare.rows.get('bare', 0):,}")


if __name__ == "__main__":
    main()
