"""Where a market backfill's time goes: cProfile of one run, through the same CLI path as
market_backfill.py, summed into what the performance docs compare (issue 20).

market_backfill.py times ours beside Dagster's floor and the bare script; when ours is above
its goal, this says why. It runs the five market assets over a range (one year by default) on a
fresh SQLite instance, the sandbox in its own process, with ``dagster asset materialize`` under
``python -m cProfile``, then prints the cumulative seconds of the parts that matter: Dagster's
event writes (and of them the run's planned events, written before the first step), and our
asset bodies with their main steps. Figures are under the profiler (slower than a timed run);
compare parts with each other, not with market_backfill.py's wall times.

    .venv/bin/python benchmarks/market_backfill_profile.py                      # 2025, SQLite
    .venv/bin/python benchmarks/market_backfill_profile.py --start 2025-10-01 --keep /tmp/p.prof
"""

from __future__ import annotations

import argparse
import os
import pstats
import shutil
import tempfile
from pathlib import Path

from _common import BIN, fresh_home, load_note, materialize_cmd, start_sandbox, stop_sandbox, timed
from market_backfill import AS_OF, ASSETS, REFERENCE, SOURCE_KEYS

#: (label, file suffix, function name): summed cumulative time of every match.
PARTS = (
    ("Dagster: event writes (all)", "sqlite_event_log.py", "store_event"),
    ("Dagster: planned events, before step 1", "run_domain.py", "_log_asset_planned_events"),
    ("Dagster: SQL statement compilation", "sql/elements.py", "_compile_w_cache"),
    ("Dagster: SQLite commits", "~", "<method 'commit' of 'sqlite3.Connection' objects>"),
    ("ours: yahoo_daily_bars", "market/assets.py", "yahoo_daily_bars"),
    ("ours:   the Yahoo fetch", "market/sources/bars.py", "fetch_bars"),
    ("ours: the secondary sources", "market/assets.py", "_secondary"),
    ("ours: validated partition writes", "core/dataset.py", "write"),
    ("ours: market_bars", "market/assets.py", "market_bars"),
)


def summarize(path: Path) -> list[tuple[str, float, int]]:
    """(label, cumulative seconds, calls) of each of `PARTS` in the profile at `path`."""
    stats = pstats.Stats(str(path)).stats  # type: ignore[attr-defined]
    out = []
    for label, suffix, name in PARTS:
        seconds, calls = 0.0, 0
        for (filename, _line, func), (_cc, ncalls, _tt, cumulative, _callers) in stats.items():
            if func == name and filename.endswith(suffix):
                seconds += cumulative
                calls += ncalls
        out.append((label, seconds, calls))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2025-01-02")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--keep", type=Path, help="also keep the raw profile here")
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="backfill-profile-"))
    env = {**os.environ, **SOURCE_KEYS}
    env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
    sandbox, url = start_sandbox(env, AS_OF)
    try:
        env["INGEST_PLATFORM_SANDBOX_URL"] = url
        home = fresh_home(base, env, "sqlite", None)
        target = ["-m", "ingest_platform.definitions"]
        timed(materialize_cmd(home, target, REFERENCE), home.env, home.path)
        profile = base / "run.prof"
        cmd = materialize_cmd(home, target, ASSETS, f"{args.start}...{args.end}")
        cmd = [str(BIN / "python"), "-m", "cProfile", "-o", str(profile), *cmd]
        wall = timed(cmd, home.env, home.path)[0]
        if args.keep:
            shutil.copy(profile, args.keep)
        total = pstats.Stats(str(profile)).total_tt  # type: ignore[attr-defined]
        print(f"{args.start}...{args.end}, five market assets, SQLite, under cProfile")
        print(f"wall {wall:.1f} s, profiled {total:.1f} s; {load_note()}")
        for label, seconds, calls in summarize(profile):
            print(f"  {label:<48} {seconds:7.1f} s  {calls:7d} calls")
    finally:
        stop_sandbox(sandbox)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
