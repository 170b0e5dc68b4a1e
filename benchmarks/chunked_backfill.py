"""Chunked against single-run market backfill: requests, wall time, and the two lakes compared.

The point-in-time universe (each day's S&P 500 members, former ones included, plus the ETFs,
FX pairs, indices and futures) over a range, the five market assets, against one sandbox in its
own process, with the sandbox's defaults (Alpha Vantage samples 20 symbols, Polygon 25; no
limits):

- **single**: one run over the range, on a SQLite instance;
- **chunked**: the range registered as one asset backfill on a PostgreSQL instance
  (deploy/dagster-postgres.yaml, every pool one step at a time) with
  ``INGEST_PLATFORM_BACKFILL_CHUNK`` set so it makes ``--chunks`` runs, and those runs started
  together, each in its own process, tagged as the backfill daemon tags them.

Each run is ``materialize`` in a process of its own (the CLI refuses a range of multi-run
assets); the wall time is from the start signal to the last run's end, imports excluded. The
clock is pinned (``INGEST_PLATFORM_NOW``), so the two lakes must be equal file by file; the
script says which files differ, if any. Timings are never asserted anywhere.

    .venv/bin/python benchmarks/chunked_backfill.py                 # a quarter, 2 chunks
    .venv/bin/python benchmarks/chunked_backfill.py --start 2025-01-02 --chunks 3
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
from _common import (  # the script's folder is on sys.path
    Home,
    fresh_home,
    get,
    load_note,
    materialize_cmd,
    start_sandbox,
    stop_sandbox,
    timed,
)

AS_OF = "2026-11-20"
NOW = f"{AS_OF}T12:00:00+00:00"
MARKET = ("yahoo_daily_bars", "corporate_actions", "alpha_vantage_daily_bars",
          "polygon_daily_bars", "market_bars")  # fmt: skip
SOURCE_KEYS = {"ALPHA_VANTAGE_API_KEY": "bench-av-key-0001", "POLYGON_API_KEY": "bench-pg-key-0001"}
ENDPOINTS = ("yahoo.chart", "alpha_vantage.daily", "polygon.aggs")

WORKER = textwrap.dedent(
    """
    import pathlib, sys, time
    from dagster import DagsterInstance, materialize
    from ingest_platform.definitions import build_definitions

    start, end, backfill, barrier = sys.argv[1:5]
    defs = build_definitions()
    assets = [defs.get_assets_def(n) for n in
              ("yahoo_daily_bars", "alpha_vantage_daily_bars", "polygon_daily_bars", "market_bars")]
    tags = {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}
    if backfill:
        tags["dagster/backfill"] = backfill
    barrier = pathlib.Path(barrier)
    (barrier / f"ready-{start}").touch()
    while not (barrier / "go").exists():
        time.sleep(0.02)
    with DagsterInstance.get() as instance:
        result = materialize(assets, resources=defs.resources, instance=instance, tags=tags,
                             raise_on_error=False)
    print("ok" if result.success else f"failed {result.run_id}")
    """
)


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """This process's environment set to `env` for a while (to load a home's definitions)."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def run_together(home: Home, ranges: list[tuple[str, str]], backfill: str = "") -> float:
    """Start one run per range at once; the wall seconds until the last one ended."""
    barrier = home.path / f"barrier-{uuid.uuid4().hex[:6]}"
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, start, end, backfill, str(barrier)],
            env=home.env,
            cwd=home.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for start, end in ranges
    ]
    while len(list(barrier.glob("ready-*"))) < len(procs):
        if any(p.poll() is not None for p in procs):
            raise SystemExit("a run process died early:\n" + procs[0].stderr.read()[-2000:])
        time.sleep(0.02)
    began = time.monotonic()
    (barrier / "go").touch()
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode or out.strip().splitlines()[-1:] != ["ok"]:
            raise SystemExit(f"a run failed: {out[-500:]}\n{err[-3000:]}")
    return time.monotonic() - began


def register_backfill(home: Home, keys: list[str]) -> tuple[str, int]:
    """The range as one asset backfill of the home's instance (nobody runs the daemon: the
    runs are started here, as it would start them); its id and the chunk size it has."""
    from dagster import AssetKey, DagsterInstance
    from dagster._core.execution.backfill import PartitionBackfill

    with environment(home.env):
        from ingest_platform.definitions import build_definitions

        defs = build_definitions()
        policy = defs.get_assets_def("market_bars").backfill_policy
        assert policy is not None and policy.max_partitions_per_run
        backfill_id = uuid.uuid4().hex[:8]
        with DagsterInstance.get() as instance:
            for pool in ("yahoo", "alpha_vantage", "polygon", "lake", "warehouse"):
                instance.event_log_storage.initialize_concurrency_limit_to_default(pool)
            instance.add_backfill(
                PartitionBackfill.from_asset_partitions(
                    backfill_id=backfill_id,
                    asset_graph=defs.resolve_asset_graph(),
                    partition_names=keys,
                    asset_selection=[AssetKey(n) for n in MARKET],
                    backfill_timestamp=time.time(),
                    tags={},
                    dynamic_partitions_store=instance,
                    all_partitions=False,
                    title="benchmarks/chunked_backfill.py",
                    description=None,
                    run_config=None,
                )
            )
    return backfill_id, policy.max_partitions_per_run


def differences(one: Path, other: Path) -> tuple[int, list[str]]:
    """How many lake files were compared, and those whose content differs or that only one
    lake has (Parquet compared as rows, in any order; other files byte for byte)."""
    files = {str(p.relative_to(one)) for p in one.rglob("*") if p.is_file()}
    others = {str(p.relative_to(other)) for p in other.rglob("*") if p.is_file()}
    differ = sorted(files ^ others)
    for name in sorted(files & others):
        a, b = one / name, other / name
        if name.endswith(".parquet"):
            fa, fb = pd.read_parquet(a), pd.read_parquet(b)
            fa, fb = (f.sort_values(list(f.columns)).reset_index(drop=True) for f in (fa, fb))
            if not fa.equals(fb):
                differ.append(name)
        elif a.read_bytes() != b.read_bytes():
            differ.append(name)
    return len(files | others), differ


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2025-10-01")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--chunks", type=int, default=2)
    args = parser.parse_args()

    base = Path(tempfile.mkdtemp(prefix="chunked-backfill-"))
    env = {**os.environ, **SOURCE_KEYS, "INGEST_PLATFORM_NOW": NOW}
    env.pop("INGEST_PLATFORM_BACKFILL_CHUNK", None)
    sandbox, url = start_sandbox(env, AS_OF)
    homes: list[Home] = []
    try:
        env["INGEST_PLATFORM_SANDBOX_URL"] = url
        single = fresh_home(base, env, "sqlite")
        chunked = fresh_home(base, env, "postgres")
        homes += [single, chunked]
        target = ["-m", "ingest_platform.definitions"]
        for home in homes:
            home.env["INGEST_PLATFORM_LAKE_ROOT"] = str(home.lake)
            reference = materialize_cmd(home, target, "instruments,index_membership")
            timed(reference, home.env, home.path)

        from ingest_platform.market.schema import MARKET_BARS

        keys = MARKET_BARS.scheme.keys_between(
            pd.Timestamp(args.start).date(), pd.Timestamp(args.end).date()
        )
        chunked.env["INGEST_PLATFORM_BACKFILL_CHUNK"] = str(math.ceil(len(keys) / args.chunks))
        backfill_id, size = register_backfill(chunked, keys)
        ranges = [(keys[i], keys[min(i + size, len(keys)) - 1]) for i in range(0, len(keys), size)]

        figures = {}
        for label, home, runs, tag in (
            ("single run", single, [(keys[0], keys[-1])], ""),
            (f"{len(ranges)} chunks at once", chunked, ranges, backfill_id),
        ):
            get(f"{url}/_sandbox/counters", "DELETE")
            wall = run_together(home, runs, tag)
            counts = get(f"{url}/_sandbox/counters")
            requests = {e: sum(counts.get(e, {}).values()) for e in ENDPOINTS}
            figures[label] = (wall, requests)

        compared, differ = differences(single.lake, chunked.lake)
        print(f"{len(keys)} days {keys[0]}..{keys[-1]}, chunks of {size}: {ranges}")
        print(f"{'run':<20}{'wall s':>8}" + "".join(f"{e:>22}" for e in ENDPOINTS))
        for label, (wall, requests) in figures.items():
            print(f"{label:<20}{wall:>8.1f}" + "".join(f"{requests[e]:>22}" for e in ENDPOINTS))
        verdict = "equal" if not differ else f"DIFFERENT in {len(differ)}: {differ[:10]}"
        print(f"lakes: {compared} files compared, {verdict}")
        print(load_note())
    finally:
        stop_sandbox(sandbox)
        for home in homes:
            home.close()


if __name__ == "__main__":
    main()
