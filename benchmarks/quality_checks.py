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
but no fault other than the simulator's injected drifts. Timings are never asserted.

    .venv/bin/python benchmarks/quality_checks.py              # 5 rounds
    .venv/bin/python benchmarks/quality_checks.py --repeat 9
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from ingest_platform.core import settings
from ingest_platform.quality.anomalies import bar_anomalies, bar_anomaly_rows
from ingest_platform.quality.coverage import bar_coverage, coverage_by_key
from ingest_platform.quality.drift import cross_source_drift
from ingest_platform.quality.expected import expected_sessions
from ingest_platform.quality.mappings import unmapped_variables
from ingest_platform.quality.score import quality_score
from ingest_platform.quality.staleness import bar_staleness, bar_staleness_by_symbol
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
    fx = set(instruments.loc[instruments["asset_class"] == "fx", "symbol"])
    listed = [s for s in symbols if s not in fx]
    av_sample = sorted({*listed[::5], *SPLITS, "AAPL"} - fx)
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
    args = parser.parse_args()
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
