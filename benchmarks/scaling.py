"""Growth curves (issue 20): time and peak memory of a market backfill against the number of
instruments and against the years covered, ours beside Dagster's floor, with log-log slopes.

Nothing in the ingest may grow faster than instruments x days, so each curve's slope (the
exponent b of time = a x size^b, from the smallest and largest point; 1.0 is linear) is printed
for ours, the floor and ours minus the floor (our own work).

- **instruments axis** (at one year): the point-in-time universe of the real reference data
  (561 symbols: the S&P 500 members of the window plus ETFs, FX, indices, futures), then topped
  up with synthetic index members ``SYN00001``... to 1,500 and 5,000 symbols;
- **years axis** (the real universe, no synthetic members): the last 1, 2 and 3.88 years before
  the sandbox's as-of date (the longer windows hold more former members: ~560 to ~610 symbols).
  The market partitions start on 2023-01-02 (``MARKET_START_DATE``), so 3.88 years
  (2023-01-02...2026-11-19, 1,013 weekday partitions) is the longest backfill the code location
  defines: a 10-year curve would need other asset definitions than the ones measured.
- **before** (with ``--before PATH``, instruments axis only): ours from another checkout.

The synthetic members live only in this benchmark: it copies ``data/reference`` into its
temporary folder, appends them to that copy's ``sp500_constituents.csv`` (members since the
history's start, so on every day of every window) and points both the code location and the
sandbox at the copy through ``INGEST_PLATFORM_REFERENCE_DIR``. The history's guard of 495..510
members a day is widened for them in the benchmark's processes only (`synthetic_members.py`).
The sandbox generates any listed symbol's series deterministically from the seed and the symbol,
so a synthetic member is served by Yahoo, Alpha Vantage and Polygon like a real one. Nothing in
the package knows about them.

Each run is ``dagster asset materialize`` of the five market assets (as in market_backfill.py)
on a fresh SQLite instance and lake, with the universe's reference datasets copied in; the floor
is `dagster_floor_defs.py` through the same CLI (its cost depends on partitions only, so one floor
run per window serves every point of the instruments axis). Peak RSS is that of the largest
process of the run (the CLI runs the whole backfill in one process: in-process executor); CPU is
user + system of the run's process tree. The sandbox runs in its own process, its series cache
large enough for every symbol and warmed before the first run, so no timed run pays for series
generation. Rounds are interleaved (A B C A B C ...); figures are medians.

    .venv/bin/python benchmarks/scaling.py                    # both axes, 2 rounds
    .venv/bin/python benchmarks/scaling.py --repeat 1 --instruments real,1500 --years 1
    .venv/bin/python benchmarks/scaling.py --before /tmp/before   # + another checkout's ours
    # the memory goal's two points only (issue 20): the real universe and 5,000, one year
    .venv/bin/python benchmarks/scaling.py --instruments real,5000 --years 1 --skip-floor \
        --before /tmp/before
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import _common  # the script's folder is on sys.path
from _common import ROOT, fresh_home, get, load_note, materialize_cmd, stop_sandbox, timed
from market_backfill import ASSETS, REFERENCE, SOURCE_KEYS, _lake_rows, point_in_time_symbols

AS_OF = "2026-11-20"
END = "2026-11-19"
#: The first market partition (core.partitions.MARKET_START_DATE).
FIRST = "2023-01-02"
REFERENCE_ENV = "INGEST_PLATFORM_REFERENCE_DIR"

SANDBOX = r"""
import sys, threading
from synthetic_members import widen_member_band
widen_member_band()
from ingest_platform.sandbox import MarketSimulator, SandboxHTTPServer
market = MarketSimulator(seed=7, as_of=sys.argv[1], large_drifts=(), series_cache_size=16384)
server = SandboxHTTPServer(market)
server.start()
market.warm()
print(f"URL={server.url}", flush=True)
threading.Event().wait()
"""


def window(years: float) -> tuple[str, str]:
    """The last `years` years of weekdays up to END (never before the first partition)."""
    end = dt.date.fromisoformat(END)
    start = max(end - dt.timedelta(days=round(365.25 * years)) + dt.timedelta(days=1),
                dt.date.fromisoformat(FIRST))  # fmt: skip
    while start.weekday() >= 5:
        start += dt.timedelta(days=1)
    return start.isoformat(), END


def synthetic_reference(folder: Path, count: int) -> Path:
    """A copy of data/reference with `count` synthetic S&P 500 members appended."""
    shutil.copytree(ROOT / "data" / "reference", folder)
    path = folder / "sp500_constituents.csv"
    with path.open("a", newline="") as out:
        writer = csv.writer(out, lineterminator="\n")
        for n in range(1, count + 1):
            symbol = f"SYN{n:05d}"
            writer.writerow([symbol, symbol, f"Synthetic {n:05d}", "Industrials", ""])
    return folder


@dataclass
class Point:
    """One (variant, instruments, window) measured in every round."""

    variant: str  # ours | floor | before
    symbols: int  # 0 for the floor (it has no universe)
    years: float
    walls: list[float] = field(default_factory=list)
    cpus: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    rows: int = 0  # market_bars rows written
    fetched: int = 0  # symbols asked from Yahoo (the point-in-time universe of the window)

    def median(self, what: str) -> float:
        return statistics.median(getattr(self, what))


def _start_sandbox(env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    env = {**env, "PYTHONPATH": str(ROOT / "benchmarks")}
    proc = subprocess.Popen(
        [sys.executable, "-c", SANDBOX, AS_OF], env=env, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("URL="):
            return proc, line.strip().split("=", 1)[1]
    raise SystemExit("sandbox did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--instruments", default="real,1500,5000", help="at one year (real: no synthetic ones)"
    )
    parser.add_argument("--years", default="1,2,3.88", help="at the first --instruments")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--before", default=None, help="another checkout: its ours beside")
    parser.add_argument("--skip-floor", action="store_true")
    args = parser.parse_args()
    spans = [float(y) for y in args.years.split(",")]

    base = Path(tempfile.mkdtemp(prefix="scaling-"))
    env = {**os.environ, **SOURCE_KEYS}
    env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
    # The universe of a one-year window from the real reference data, then enough synthetic
    # members for the largest size (one sandbox serves every size: a smaller one is a prefix).
    real_dir = ROOT / "data" / "reference"
    real = _universe(base, {**env, REFERENCE_ENV: str(real_dir)}, window(1.0))
    sizes = [real if n == "real" else int(n) for n in args.instruments.split(",")]
    top_up = max(sizes) - real
    if top_up < 0:
        raise SystemExit(f"the real one-year universe has {real} symbols, above {max(sizes)}")
    synthetic = synthetic_reference(base / "reference-max", top_up)
    sandbox, url = _start_sandbox({**env, REFERENCE_ENV: str(synthetic)})
    try:
        env["INGEST_PLATFORM_SANDBOX_URL"] = url
        cases: list[tuple[int, float]] = [(n, 1.0) for n in sizes]
        cases += [(sizes[0], y) for y in spans if (sizes[0], y) not in cases]
        references: dict[int, tuple[Path, dict[str, Path]]] = {}
        for n in sorted({n for n, _ in cases}):
            folder = synthetic_reference(base / f"reference-{n}", n - real)
            references[n] = (
                folder,
                _reference_datasets(base, {**env, REFERENCE_ENV: str(folder)}, n, real),
            )
        points = [Point("ours", n, y) for n, y in cases]
        if args.before:  # on the instruments axis, where a step over every spell would show
            points += [Point("before", n, 1.0) for n in sizes]
        if not args.skip_floor:
            points += [Point("floor", 0, y) for y in sorted({y for _, y in cases})]
        for round_no in range(args.repeat):
            for point in points:
                _run(point, base, env, url, references, args.before)
                print(
                    f"round {round_no + 1}: {point.variant:<6} {point.symbols:>5} symbols "
                    f"{point.years:>4} y  {point.walls[-1]:7.1f} s wall "
                    f"{point.cpus[-1]:7.1f} s CPU {point.rss[-1]:6.0f} MB",
                    flush=True,
                )
            _report(args, points, real, sizes, spans, round_no + 1)  # so far, if stopped later
    finally:
        stop_sandbox(sandbox)
        shutil.rmtree(base, ignore_errors=True)


def _universe(base: Path, env: dict[str, str], span: tuple[str, str]) -> int:
    """How many symbols the ingest fetches over `span` with the reference data in `env`."""
    home = fresh_home(base, env, "sqlite")
    try:
        cmd = materialize_cmd(home, ["-m", "ingest_platform.definitions"], REFERENCE)
        timed(cmd, home.env, home.path)
        kinds = point_in_time_symbols(home.lake, *span)
        return sum(len(s) for s in kinds.values())
    finally:
        home.close()


def _reference_datasets(base: Path, env: dict[str, str], n: int, real: int) -> dict[str, Path]:
    """The `instruments` and `index_membership` files of the universe of size `n`, built once
    through the CLI (untimed) and copied into every run's fresh lake."""
    home = fresh_home(base, env, "sqlite")
    try:
        location = ["-f", str(ROOT / "benchmarks" / "synthetic_members.py")]
        # Written before their checks run: index_membership's blocking member_counts check
        # fails on thousands of members (its band is the real index's), so the run's code is
        # not asked; the count below checks the files.
        timed(materialize_cmd(home, location, REFERENCE), home.env, home.path, check=n == real)
        got = sum(len(s) for s in point_in_time_symbols(home.lake, *window(1.0)).values())
        if got != n:
            raise SystemExit(f"universe of {got} symbols, expected {n}")
        out = {}
        for name in REFERENCE.split(","):
            out[name] = base / f"{name}-{n}.parquet"
            shutil.copy(home.lake / name / "all.parquet", out[name])
        return out
    finally:
        home.close()


def _run(point: Point, base: Path, env: dict[str, str], url: str, references, before) -> None:
    n = point.symbols or min(references)
    folder, datasets = references[n]
    home = fresh_home(base, {**env, REFERENCE_ENV: str(folder)}, "sqlite")
    try:
        for name, copy in datasets.items():
            (home.lake / name).mkdir(parents=True)
            shutil.copy(copy, home.lake / name / "all.parquet")
        get(f"{url}/_sandbox/counters", "DELETE")
        if point.variant == "floor":
            target = ["-f", str(ROOT / "benchmarks" / "dagster_floor_defs.py")]
        else:
            target = ["-m", "ingest_platform.definitions"]
        run_env = dict(home.env)
        if point.variant == "before":
            run_env["PYTHONPATH"] = before
        start, end = window(point.years)
        cmd = materialize_cmd(home, target, ASSETS, f"{start}...{end}")
        wall, rss, _, _ = timed(cmd, run_env, home.path)
        point.walls.append(wall)
        point.cpus.append(_common.LAST_CPU_S)
        point.rss.append(rss)
        if point.variant != "floor":
            point.rows = _lake_rows(home)["market_bars"]
            counters = get(f"{url}/_sandbox/counters")
            point.fetched = len(counters.get("yahoo.chart", {}))
    finally:
        home.close()


def slope(x0: float, y0: float, x1: float, y1: float) -> float:
    """The exponent b of y = a x^b through two points (1.0: linear)."""
    if min(x0, y0, x1, y1) <= 0 or x0 == x1:
        return float("nan")
    return math.log(y1 / y0) / math.log(x1 / x0)


def _report(
    args, points: list[Point], real: int, sizes: list[int], spans: list[float], rounds: int
) -> None:
    from dagster import PartitionKeyRange

    from ingest_platform.core.partitions import market_day_partitions

    def days(years: float) -> int:
        start, end = window(years)
        keys = market_day_partitions.get_partition_keys_in_range(PartitionKeyRange(start, end))
        return len(keys)

    print(
        f"\nGrowth curves, sandbox as of {AS_OF}, SQLite, {os.cpu_count()} cores, "
        f"{rounds} interleaved round(s) (medians); {load_note()}"
    )
    print(f"real one-year universe: {real} symbols; the rest synthetic members")
    print(
        f"{'variant':<8}{'symbols':>8}{'years':>6}{'days':>6}{'wall s':>9}{'CPU s':>9}"
        f"{'peak RSS MB':>13}{'rows':>10}{'fetched':>9}"
    )
    for p in points:
        print(
            f"{p.variant:<8}{p.symbols or '-':>8}{p.years:>6}{days(p.years):>6}"
            f"{p.median('walls'):>9.1f}{p.median('cpus'):>9.1f}{max(p.rss):>13.0f}"
            f"{p.rows or '-':>10}{p.fetched or '-':>9}"
        )
    floors = {p.years: p for p in points if p.variant == "floor"}
    for variant in sorted({p.variant for p in points} - {"floor"}):
        by = {(p.symbols, p.years): p for p in points if p.variant == variant}
        for axis, first, last, x in (
            ("instruments", (sizes[0], 1.0), (sizes[-1], 1.0), lambda k: k[0]),
            ("days", (sizes[0], spans[0]), (sizes[0], spans[-1]), lambda k: days(k[1])),
        ):
            if first == last or first not in by or last not in by:
                continue
            a, b = by[first], by[last]
            parts = []
            for what in ("walls", "cpus"):
                label = "wall" if what == "walls" else "CPU"
                ours = slope(x(first), a.median(what), x(last), b.median(what))
                text = f"{label} {ours:.2f}"
                fa, fb = floors.get(first[1]), floors.get(last[1])
                if fa and fb:
                    floor = slope(x(first), fa.median(what), x(last), fb.median(what))
                    net = slope(
                        x(first),
                        a.median(what) - fa.median(what),
                        x(last),
                        b.median(what) - fb.median(what),
                    )
                    text += f" (floor {floor:.2f}, ours - floor {net:.2f})"
                parts.append(text)
            rss = slope(x(first), max(a.rss), x(last), max(b.rss))
            print(f"{variant} slope vs {axis}: " + "; ".join(parts) + f"; peak RSS {rss:.2f}")


if __name__ == "__main__":
    main()
