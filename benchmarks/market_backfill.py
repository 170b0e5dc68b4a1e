"""Backfill benchmark: three years of the full universe through the real Dagster CLI path.

In one run, against one sandbox (in its own process), it times:

1. **ours**: ``dagster asset materialize`` of market_bars and its upstreams (yahoo_daily_bars,
   corporate_actions, alpha_vantage_daily_bars, polygon_daily_bars) over the partition range,
   on a fresh copy of the repository's instance config (SQLite) and a fresh lake;
2. **bare**: a script that does the same Yahoo fetch with ``yf.download`` and ``to_parquet``
   and nothing else (no validation, no partitions, no metadata);
3. **floor**: the same five assets with empty bodies through the same CLI and instance config:
   what Dagster itself costs for that many partitions.

Goal (issue #4): ours <= 1.5 x bare + floor. It prints wall time, peak RSS, requests per source
(with the most requests any one symbol got) and the rows written. Timings are never asserted.

    .venv/bin/python benchmarks/market_backfill.py            # 2023-01-02...2025-12-31
    .venv/bin/python benchmarks/market_backfill.py --quick    # one quarter
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
AS_OF = "2026-11-20"
ASSETS = (
    "yahoo_daily_bars,corporate_actions,alpha_vantage_daily_bars,polygon_daily_bars,market_bars"
)
QUIET = "loggers:\n  console:\n    config:\n      log_level: WARNING\n"

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


_MEASURE = (
    "import resource, subprocess, sys; code = subprocess.call(sys.argv[1:]); "
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; "
    "sys.stderr.write(f'\\nPEAK_RSS_KB={peak}\\n'); "
    "sys.exit(code)"
)


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float, str]:
    """Run `cmd`; return wall seconds, peak RSS (MB) of the largest process in its tree, stdout.

    A fresh launcher process runs the command so its RUSAGE_CHILDREN covers only this run
    (ru_maxrss is the largest resident set among the waited-for descendants).
    """
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cmd], env=env, cwd=cwd, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}")
    peak_kb = int(proc.stderr.rsplit("PEAK_RSS_KB=", 1)[1].split()[0])
    return wall, peak_kb / 1024, proc.stdout


def _get(url: str, method: str = "GET"):
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=60) as response:
        body = response.read()
    return json.loads(body) if body else None


def _start_sandbox(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [
            str(BIN / "ingest-platform"),
            "sandbox",
            "--http-port",
            "0",
            "--kraken-port",
            "0",
            "--as-of",
            AS_OF,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in proc.stdout:
        if line.strip().startswith("export INGEST_PLATFORM_SANDBOX_URL="):
            return proc, line.strip().split("=", 1)[1]
    raise SystemExit("sandbox did not start")


def _dagster(env, home: Path, *args: str) -> tuple[float, float, str]:
    return _timed(
        [str(BIN / "dagster"), "asset", "materialize", *args, "-c", str(home / "quiet.yaml")],
        env,
        home,
    )


def _fresh_home(base: Path, name: str) -> Path:
    home = base / name
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    (home / "quiet.yaml").write_text(QUIET)
    return home


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2023-01-02")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--quick", action="store_true", help="one quarter instead of three years")
    args = parser.parse_args()
    if args.quick:
        args.start, args.end = "2025-10-01", "2025-12-31"

    base = Path(tempfile.mkdtemp(prefix="market-backfill-"))
    env = {
        **os.environ,
        "ALPHA_VANTAGE_API_KEY": "bench-av-key-0001",
        "POLYGON_API_KEY": "bench-pg-key-0001",
    }
    sandbox, url = _start_sandbox(env)
    try:
        env["INGEST_PLATFORM_SANDBOX_URL"] = url
        # Warm the sandbox's series cache so neither timed run pays for generating them.
        ours_home = _fresh_home(base, "ours")
        run_env = {
            **env,
            "DAGSTER_HOME": str(ours_home),
            "INGEST_PLATFORM_DATA_DIR": str(ours_home / "data"),
        }
        _dagster(run_env, ours_home, "-m", "ingest_platform.definitions", "--select", "instruments")
        instruments = ours_home / "data" / "lake" / "instruments" / "all.parquet"
        warm_dir = base / "warm"
        warm_dir.mkdir()
        _timed(
            [
                sys.executable,
                "-c",
                BARE_SCRIPT,
                url,
                args.start,
                args.end,
                str(warm_dir / "w.parquet"),
                str(warm_dir / "yf"),
                str(instruments),
            ],
            env,
            base,
        )
        _get(f"{url}/_sandbox/counters", "DELETE")

        wall, rss, _ = _dagster(
            run_env,
            ours_home,
            "-m",
            "ingest_platform.definitions",
            "--select",
            ASSETS,
            "--partition-range",
            f"{args.start}...{args.end}",
        )
        counters = _get(f"{url}/_sandbox/counters")
        import pyarrow.dataset as ds

        lake = ours_home / "data" / "lake"
        rows = {
            name: ds.dataset(str(lake / name), format="parquet").count_rows()
            for name in ASSETS.split(",")
        }

        bare_dir = base / "bare"
        bare_dir.mkdir()
        bare_wall, bare_rss, bare_out = _timed(
            [
                sys.executable,
                "-c",
                BARE_SCRIPT,
                url,
                args.start,
                args.end,
                str(bare_dir / "bars.parquet"),
                str(bare_dir / "yf"),
                str(instruments),
            ],
            env,
            base,
        )

        floor_home = _fresh_home(base, "floor")
        floor_env = {**env, "DAGSTER_HOME": str(floor_home)}
        floor_wall, floor_rss, _ = _dagster(
            floor_env,
            floor_home,
            "-f",
            str(ROOT / "benchmarks" / "dagster_floor_defs.py"),
            "--select",
            ASSETS,
            "--partition-range",
            f"{args.start}...{args.end}",
        )
    finally:
        sandbox.terminate()
        sandbox.wait(10)

    from dagster import PartitionKeyRange

    from ingest_platform.core.partitions import market_day_partitions

    partitions = len(
        market_day_partitions.get_partition_keys_in_range(PartitionKeyRange(args.start, args.end))
    )
    budget = 1.5 * bare_wall + floor_wall
    print(
        f"\nBackfill {args.start}...{args.end}: {partitions} daily partitions, 5 assets, "
        f"SQLite instance, {os.cpu_count()} cores"
    )
    print(f"{'run':<48}{'wall s':>9}{'peak RSS MB':>14}")
    print(f"{'ours: dagster asset materialize (market_bars+up)':<48}{wall:>9.1f}{rss:>14.0f}")
    print(f"{'bare: yf.download + to_parquet':<48}{bare_wall:>9.1f}{bare_rss:>14.0f}")
    print(
        f"{'floor: same 5 assets, empty bodies, same CLI':<48}{floor_wall:>9.1f}{floor_rss:>14.0f}"
    )
    print(f"goal: ours <= 1.5 x bare + floor = {budget:.1f} s -> ours / goal = {wall / budget:.2f}")
    print(
        f"ours minus floor = {wall - floor_wall:.1f} s "
        f"= {(wall - floor_wall) / bare_wall:.2f} x bare"
    )
    print("requests per source (symbols, total, most for one symbol):")
    for endpoint in ("yahoo.chart", "alpha_vantage.daily", "polygon.aggs"):
        per_symbol = counters.get(endpoint, {})
        print(
            f"  {endpoint:<22} {len(per_symbol):>5} {sum(per_symbol.values()):>7} "
            f"{max(per_symbol.values(), default=0):>4}"
        )
    print(
        "rows written: "
        + ", ".join(f"{k} {v:,}" for k, v in rows.items())
        + f"; bare script {int(bare_out.strip() or 0):,}"
    )
    print(
        "reproduce: .venv/bin/python benchmarks/market_backfill.py"
        + (" --quick" if args.quick else "")
    )
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
