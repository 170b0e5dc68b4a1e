"""Quality-check benchmark: every check function over three years of the full universe.

Frames are built once, untimed, from the sandbox simulator (seed 7, as of 2026-11-20), the way
the market assets would hold them:

- Yahoo bars (split-adjusted) for every instrument, 2023-01-02..2025-12-31 (about 410k rows);
- two secondary samples, a fifth of the universe each: Alpha Vantage (as traded, with the
  splitters) and Polygon (split-adjusted, with FX), carrying the simulator's drifts;
- the corporate actions (real splits and dividends) of every instrument;
- a registry mapping frame.

Then it times, interleaved A B A B ... on one core (medians and the ratio):

A. **ours**: bar_coverage, bar_staleness, cross_source_drift, bar_anomalies, the quality score
   (recomputing the coverage, staleness and anomaly tables it needs) and unmapped_variables:
   what a CI run over the lake calls;
B. **naive**: a Qlib-style health check over the same bars (Qlib's scripts/check_data_health.py:
   per instrument, required columns, nulls, |pct_change| above 0.5 in a price or 3 in volume).

It also prints how many alarms each raises on this data, which has real splits and dividends
but no fault other than the simulator's injected drifts.

End to end (``--part cli``; issue 10): a lake holding a clean three-year sandbox backfill of the
full universe (2023-01-02..2025-12-31), built once, untimed, through market_backfill.py's CLI
path (instruments, then the five market assets, on a SQLite instance, the sandbox as of
2026-11-20 without injected drifts, the clock pinned to 2026-01-01 14:00 UTC as above). Then,
interleaved A B A B … in fresh processes on that instance:

C. **ingest-platform check** ``--select group:market --partition-range
   2023-01-02...2025-12-31``: every market check (yahoo_daily_bars' and market_bars') over the
   three years, as CI runs it;
D. **floor**: a checks-only job over the same check keys with empty bodies
   (`check_floor_defs.py`), executed in process against the same instance: Dagster's own cost.

It prints both medians, the ratio (goal: at most 1.5x the floor), the exit code of
``ingest-platform check`` on that clean lake (must be 0) and its table. Timings are never
asserted.

    .venv/bin/python benchmarks/quality_checks.py              # both parts: 5 + 3 rounds
    .venv/bin/python benchmarks/quality_checks.py --part functions --repeat 9
    .venv/bin/python benchmarks/quality_checks.py --part cli --cli-repeat 5
    .venv/bin/python benchmarks/quality_checks.py --part cli --keep /tmp/qc-lake  # reuse a lake
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import pandas as pd
from _common import BIN, fresh_home, load_note, start_sandbox, stop_sandbox, timed
from market_backfill import AS_OF, SOURCE_KEYS, backfill_lake

from ingest_platform.core import settings
from ingest_platform.quality.bars.anomalies import bar_anomalies, bar_anomaly_rows
from ingest_platform.quality.bars.coverage import bar_coverage, coverage_by_key
from ingest_platform.quality.bars.drift import cross_source_drift
from ingest_platform.quality.bars.expected import expected_sessions
from ingest_platform.quality.bars.staleness import bar_staleness, bar_staleness_by_symbol
from ingest_platform.quality.registry.mappings import unmapped_variables
from ingest_platform.quality.shared.score import quality_score
from ingest_platform.reference.universe import load_instruments
from ingest_platform.sandbox.data import SPLITS, MarketSimulator

START, END = "2023-01-02", "2025-12-31"
NOW = pd.Timestamp("2026-01-01 14:00", tz="UTC")  # 2025-12-31 settled on every calendar
COLUMNS = ["symbol", "date", "open", "high", "low", "close", "adj_close", "volume", "source"]


def _bars(sim: MarketSimulator, symbols: list[str], provider: str) -> pd.DataFrame:
    frames = []
    for symbol in symbols:
        frame = sim.daily_bars(symbol, START, END, provider=provider).reset_index()
        frame.insert(0, "symbol", symbol)
        frame["source"] = provider
        frames.append(frame.reindex(columns=COLUMNS))
    return pd.concat(frames, ignore_index=True)


def _actions(sim: MarketSimulator, symbols: list[str]) -> pd.DataFrame:
    frames = []
    for symbol in symbols:
        splits, dividends = sim.splits(symbol), sim.dividends(symbol)
        frames.append(
            pd.DataFrame(
                {"symbol": symbol, "date": splits["date"], "action": "split",
                 "value": splits["ratio"]}
            )
        )  # fmt: skip
        frames.append(
            pd.DataFrame(
                {"symbol": symbol, "date": dividends["date"], "action": "dividend",
                 "value": dividends["amount"]}
            )
        )  # fmt: skip
    return pd.concat(frames, ignore_index=True).assign(source="yahoo")


def build_frames() -> dict[str, Any]:
    """The three-year frames (untimed)."""
    sim = MarketSimulator(seed=7, as_of="2026-11-20")
    instruments = load_instruments(settings.reference_dir())
    symbols = sorted(instruments["symbol"])
    # Alpha Vantage's TIME_SERIES_DAILY serves equities and ETFs only (not FX, commodities or
    # indexes, which the universe now holds too).
    stocks = set(instruments.loc[instruments["asset_class"].isin(["equity", "etf"]), "symbol"])
    listed = [s for s in symbols if s in stocks]
    av_sample = sorted({*listed[::5], *SPLITS, "AAPL"} & stocks)
    polygon_sample = sorted({*symbols[2::5], "MSFT", "EURUSD"})
    mappings = pd.DataFrame(
        {
            "variable": [f"var_{i:03d}" for i in range(120)],
            "source": ["fred"] * 117 + [None] * 3,
            "series_id": [f"S{i}" for i in range(117)] + [None] * 3,
            "rule": ["exact"] * 117 + [None] * 3,
            "reason": [None] * 117 + ["no source publishes it"] * 3,
        }
    )
    return {
        "instruments": instruments,
        "bars": _bars(sim, symbols, "yahoo"),
        "alpha_vantage": _bars(sim, av_sample, "alpha_vantage"),
        "polygon": _bars(sim, polygon_sample, "polygon"),
        "actions": _actions(sim, symbols),
        "mappings": mappings,
    }


def ours(f: dict[str, Any], times: dict[str, list[float]] | None = None) -> list[Any]:
    """Every check function, as a CI run over the lake calls them."""
    bars, instruments, actions = f["bars"], f["instruments"], f["actions"]
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("bar_coverage", lambda: bar_coverage(bars, instruments, START, END)),
        ("bar_staleness", lambda: bar_staleness(bars, instruments, NOW)),
        (
            "cross_source_drift",
            lambda: cross_source_drift(
                bars,
                {"alpha_vantage": f["alpha_vantage"], "polygon": f["polygon"]},
                corporate_actions=actions,
                as_traded={"alpha_vantage"},
            ),
        ),
        ("bar_anomalies", lambda: bar_anomalies(bars, actions)),
        (
            "quality_score",
            lambda: quality_score(
                coverage_by_key(bars, expected_sessions(instruments, START, END)),
                staleness=bar_staleness_by_symbol(bars, instruments, NOW),
                anomalies=bar_anomaly_rows(bars, actions),
            ),
        ),
        ("unmapped_variables", lambda: unmapped_variables(f["mappings"])),
    ]
    results = []
    for name, step in steps:
        started = time.perf_counter()
        results.append(step())
        if times is not None:
            times.setdefault(name, []).append(time.perf_counter() - started)
    return results


def naive(f: dict[str, Any]) -> pd.DataFrame:
    """A Qlib-style health check: one pass per instrument, as check_data_health.py loops."""
    alarms = []
    required = ["open", "high", "low", "close", "volume"]
    for symbol, frame in f["bars"].groupby("symbol", sort=True):
        frame = frame.sort_values("date").set_index("date")
        missing = [c for c in required if c not in frame.columns]
        if missing:
            alarms.append((symbol, None, "missing column " + ",".join(missing)))
        nulls = frame[required].isnull().sum()
        for column in nulls.index[nulls > 0]:
            alarms.append((symbol, None, f"{nulls[column]} nulls in {column}"))
        for column in required:
            step = frame[column].pct_change(fill_method=None).abs()
            limit = 3.0 if column == "volume" else 0.5
            for day in step.index[step > limit]:
                alarms.append((symbol, day, f"{column} step {step[day]:.2f}"))
    return pd.DataFrame(alarms, columns=["symbol", "date", "problem"])


CHECK_SELECT = "group:market"
FLOOR_SCRIPT = r"""
import sys
from dagster import DagsterInstance
sys.path.insert(0, sys.argv[1])
from check_floor_defs import JOB_NAME, defs
with DagsterInstance.get() as instance:
    result = defs.resolve_job_def(JOB_NAME).execute_in_process(
        instance=instance, raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}},
    )
sys.exit(0 if result.success else 1)
"""


def end_to_end(repeat: int, keep: str | None) -> None:
    """`ingest-platform check` on a clean three-year lake beside Dagster's floor. With `keep`,
    the instance and lake are built there once and reused by later invocations."""
    base = Path(tempfile.mkdtemp(prefix="quality-checks-"))
    env = {**os.environ, **SOURCE_KEYS, settings.NOW_ENV: NOW.isoformat()}
    env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
    try:
        home = fresh_home(base, env, "sqlite", path=Path(keep).resolve() if keep else None)
        built = 0.0
        if not (home.lake / "market_bars").is_dir():
            sandbox, url = start_sandbox(env, AS_OF)
            try:
                home.env[settings.SANDBOX_URL_ENV] = url
                built = backfill_lake(home, START, END)
            finally:
                stop_sandbox(sandbox)  # the checks read the lake only
        how = f"built in {built:.0f} s (untimed)" if built else f"reused from {home.path}"
        print(f"lake {how}: {START}..{END} through the market assets")
        ours_cmd = [
            *(str(BIN / "ingest-platform"), "check", "--select", CHECK_SELECT),
            *("--partition-range", f"{START}...{END}", "--json", str(base / "findings.json")),
        ]
        floor_cmd = [sys.executable, "-c", FLOOR_SCRIPT, str(Path(__file__).resolve().parent)]
        walls: dict[str, list[float]] = {"ingest-platform check": [], "floor": []}
        cpus: dict[str, list[float]] = {"ingest-platform check": [], "floor": []}
        codes: list[int] = []
        output = ""
        for round_ in range(1, repeat + 1):
            wall, _, output, code = timed(ours_cmd, home.env, home.path, check=False)
            walls["ingest-platform check"].append(wall)
            cpus["ingest-platform check"].append(_common.LAST_CPU_S)
            codes.append(code)
            floor_wall = timed(floor_cmd, home.env, home.path)[0]
            walls["floor"].append(floor_wall)
            cpus["floor"].append(_common.LAST_CPU_S)
            print(
                f"round {round_}: check {wall:.1f} s, {cpus['ingest-platform check'][-1]:.1f} "
                f"CPU s (exit {code})   floor {floor_wall:.1f} s, {cpus['floor'][-1]:.1f} CPU s"
            )
        ours_s = statistics.median(walls["ingest-platform check"])
        floor_s = statistics.median(walls["floor"])
        print(
            f"\ningest-platform check over {START}...{END} ({CHECK_SELECT}), {repeat} "
            f"interleaved rounds, SQLite instance, {os.cpu_count()} cores; {load_note()}"
        )
        print(f"  {'run':<24}{'median s':>9}{'min s':>8}{'max s':>8}{'median CPU s':>14}")
        for name, values in walls.items():
            print(
                f"  {name:<24}{statistics.median(values):>9.1f}{min(values):>8.1f}"
                f"{max(values):>8.1f}{statistics.median(cpus[name]):>14.1f}"
            )
        verdict = "met" if ours_s <= 1.5 * floor_s else "NOT met"
        cpu_ratio = statistics.median(cpus["ingest-platform check"]) / statistics.median(
            cpus["floor"]
        )
        print(f"  check / floor = {ours_s / floor_s:.2f} (goal <= 1.5: {verdict})")
        print(f"  check / floor in CPU time = {cpu_ratio:.2f} (steadier under load)")
        print(f"  exit codes of ingest-platform check on the clean lake: {codes}")
        print("\n" + output.strip())
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    return f"pinned to core {core}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds of A B (default 5)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin to one core")
    parser.add_argument("--part", choices=("functions", "cli", "all"), default="all")
    parser.add_argument("--cli-repeat", type=int, default=3, help="rounds of C D (default 3)")
    parser.add_argument("--keep", default=None, help="build the lake here once and reuse it")
    args = parser.parse_args()
    if args.part in ("cli", "all"):
        end_to_end(
            args.cli_repeat, args.keep
        )  # before pinning: its processes would inherit the pin
        if args.part == "cli":
            return
        print()
    pinned = "not pinned" if args.no_pin else _pin_to_one_core()

    started = time.perf_counter()
    frames = build_frames()
    print(
        f"frames built in {time.perf_counter() - started:.1f} s ({pinned}): "
        f"{len(frames['bars']):,} Yahoo bars of {frames['bars']['symbol'].nunique()} symbols, "
        f"{len(frames['alpha_vantage']):,} Alpha Vantage and {len(frames['polygon']):,} Polygon "
        f"bars, {len(frames['actions']):,} corporate actions"
    )
    ours(frames)  # warm: calendars built once per process, as in any long-lived run
    naive(frames)

    # Wall time, and this process's CPU time: on a shared machine the second is the figure
    # other processes' load does not inflate.
    wall: dict[str, list[float]] = {"ours": [], "naive": []}
    cpu: dict[str, list[float]] = {"ours": [], "naive": []}
    per_function: dict[str, list[float]] = {}
    for round_ in range(1, args.repeat + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        findings = ours(frames, per_function)
        t1, c1 = time.perf_counter(), time.process_time()
        naive(frames)
        t2, c2 = time.perf_counter(), time.process_time()
        wall["ours"].append(t1 - t0)
        wall["naive"].append(t2 - t1)
        cpu["ours"].append(c1 - c0)
        cpu["naive"].append(c2 - c1)
        print(
            f"round {round_}: ours {t1 - t0:.3f} s (cpu {c1 - c0:.3f})   "
            f"naive {t2 - t1:.3f} s (cpu {c2 - c1:.3f})"
        )

    print(f"\nmedians over {args.repeat} rounds:")
    for label, figures in (("wall", wall), ("cpu", cpu)):
        a, b = statistics.median(figures["ours"]), statistics.median(figures["naive"])
        print(f"  {label:<4} ours {a:.3f} s   naive {b:.3f} s   ours / naive = {a / b:.2f}")
    print("ours per function (median):")
    for name, values in per_function.items():
        print(f"  {name:<20} {statistics.median(values):.3f} s")

    print("\nfindings:")
    for finding in findings:
        print(f"  {finding.check:<20} {finding.status.value:<5} {finding.summary[:150]}")
    print("\nalarms on three years of bars with real splits and dividends, no injected fault:")
    for name in ("bars", "alpha_vantage"):
        naive_alarms = naive({"bars": frames[name]})
        our_rows = bar_anomaly_rows(frames[name], frames["actions"])
        basis = "Yahoo, split-adjusted" if name == "bars" else "Alpha Vantage, as traded"
        print(
            f"  {basis:<26} naive {len(naive_alarms):>6,} alarms on "
            f"{naive_alarms['symbol'].nunique():>3} symbols   ours {len(our_rows):>3,} alarms"
        )


if __name__ == "__main__":
    main()
