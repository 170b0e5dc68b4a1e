"""Economic backfill benchmark: 36 monthly partitions of economic_indicators through the real
Dagster CLI path, against the sandbox's FRED and World Bank.

Against one sandbox (in its own process, as of 2025-12-31, with the platform's clock pinned to
2026-01-01 08:00 UTC) it times, interleaved and repeated (A B C A B C …), so that one noisy
moment on a shared machine cannot decide a ratio:

- **ours**: ``dagster asset materialize --select economic_indicators --partition-range
  2023-01-01...2025-12-01``: the asset's single-run backfill policy makes the range one run,
  one request per FRED series (every vintage from the day before the first month) and one per
  World Bank indicator and country, then the lake's 36 monthly partitions and the economic
  checks the selection brings along; fresh instance and fresh lake each time (instruments and
  variable_mappings, built once untimed, copied in);
- **floor**: `economic_floor_defs.py` through the same CLI and instance: the same asset key,
  partitions, backfill policy and check keys with empty bodies: what Dagster itself costs;
- **bare**: a requests + pandas script asking the same sandbox endpoints for the same series
  with the same parameters (two threads, as the resources' default) and writing one Parquet
  file: the fetching alone, no validation, vintage logic or bookkeeping.

Each Dagster variant runs on every instance asked for (``sqlite``: the repository's
dagster.yaml; ``postgres``: deploy/dagster-postgres.yaml on a fresh database of the server at
127.0.0.1:5432). It prints medians, ratios, and the sandbox's request counters per source for
the whole 36-month run, against what the issue requires: ONE ``series/observations`` request
per mapped FRED series and one request per mapped World Bank indicator and country (more only
where paging or FRED's 2,000-vintage cap demands it). Timings are never asserted anywhere.

    .venv/bin/python benchmarks/economic_backfill.py                              # SQLite, x3
    .venv/bin/python benchmarks/economic_backfill.py --instances sqlite,postgres --repeat 3
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from _common import (  # the script's folder is on sys.path
    ROOT,
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

AS_OF = "2025-12-31"
NOW = "2026-01-01T08:00:00+00:00"
ASSET = "economic_indicators"
SETUP = "instruments,variable_mappings"

BARE_SCRIPT = r"""
import sys, datetime as dt
from concurrent.futures import ThreadPoolExecutor
import numpy as np, pandas as pd, requests
url, key, first_month, mappings_path, out = sys.argv[1:6]
mappings = pd.read_parquet(mappings_path)
realtime_start = (dt.date.fromisoformat(first_month) - dt.timedelta(days=1)).isoformat()
session = requests.Session()

def fred(row):
    params = {"series_id": row.series_id, "api_key": key, "file_type": "json",
              "observation_start": "2018-01-01", "output_type": 1, "sort_order": "asc",
              "limit": 100000}
    if row.knowledge_basis == "vintages":
        params.update(realtime_start=realtime_start, realtime_end="9999-12-31")
    answer = session.get(f"{url}/fred/series/observations", params=params, timeout=60)
    answer.raise_for_status()
    frame = pd.DataFrame(answer.json()["observations"])
    frame["value"] = pd.to_numeric(frame["value"].replace(".", np.nan))
    frame["series_id"] = row.series_id
    return frame

def worldbank(row):
    indicator, country = row.series_id.split("/", 1)
    rows, page = [], 1
    while True:
        answer = session.get(
            f"{url}/worldbank/v2/country/{country}/indicator/{indicator}",
            params={"format": "json", "date": "2018:2026", "per_page": 1000, "page": page},
            timeout=60,
        )
        answer.raise_for_status()
        header, chunk = answer.json()
        rows += chunk or []
        if page >= int(header["pages"]):
            break
        page += 1
    return pd.DataFrame({"series_id": row.series_id, "date": [r["date"] for r in rows],
                         "value": [r["value"] for r in rows]})

with ThreadPoolExecutor(2) as pool:
    fred_frames = list(pool.map(fred, mappings[mappings["source"] == "fred"].itertuples()))
    wb_frames = list(pool.map(worldbank, mappings[mappings["source"] == "worldbank"].itertuples()))
frame = pd.concat(fred_frames + wb_frames, ignore_index=True)
frame["value"] = frame["value"].astype(float)
frame.to_parquet(out)
print(len(frame))
"""


def _lake_rows(lake: Path) -> int:
    import pyarrow.dataset as ds

    return ds.dataset(str(lake / ASSET), format="parquet").count_rows()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2023-01-01", help="first monthly partition")
    parser.add_argument("--end", default="2025-12-01", help="last monthly partition")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of every variant")
    parser.add_argument("--instances", default="sqlite", help="sqlite, postgres or both")
    parser.add_argument("--batch", type=int, default=500, help="DAGSTER_EVENT_BATCH_SIZE (pg)")
    parser.add_argument("--skip", default="", help="variants to leave out (ours,floor,bare)")
    args = parser.parse_args()
    instances = [i for i in args.instances.split(",") if i]
    skip = set(args.skip.split(","))

    variants: list[Variant] = []
    for instance in instances:
        variants += [Variant(n, instance) for n in ("ours", "floor") if n not in skip]
    if "bare" not in skip:
        variants.append(Variant("bare", None))

    base = Path(tempfile.mkdtemp(prefix="economic-backfill-"))
    env = {**os.environ, "FRED_API_KEY": "bench-fred-key-0001", "INGEST_PLATFORM_NOW": NOW}
    env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
    sandbox, url = start_sandbox(env, AS_OF)
    try:
        env["INGEST_PLATFORM_SANDBOX_URL"] = url
        # instruments and variable_mappings once (untimed): every timed run starts from them.
        setup = fresh_home(base, env, "sqlite")
        target = ["-m", "ingest_platform.definitions"]
        timed(materialize_cmd(setup, target, SETUP), setup.env, base)
        seeds = {name: setup.lake / name for name in SETUP.split(",")}
        mappings = get_mappings(setup.lake)
        bare_args = [url, env["FRED_API_KEY"], args.start, str(setup.lake / "variable_mappings")]
        # A warm-up fetch, so no timed run pays for the sandbox's series generation.
        warm = base / "warm.parquet"
        timed([sys.executable, "-c", BARE_SCRIPT, *bare_args, str(warm)], env, base)
        partition_range = f"{args.start}...{args.end}"
        for round_no in range(args.repeat):
            for variant in variants:
                get(f"{url}/_sandbox/counters", "DELETE")
                if variant.name == "bare":
                    out = base / f"bare-{round_no}.parquet"
                    wall, rss, stdout, _ = timed(
                        [sys.executable, "-c", BARE_SCRIPT, *bare_args, str(out)], env, base
                    )
                    variant.rows = {ASSET: int(stdout.strip().splitlines()[-1])}
                    out.unlink(missing_ok=True)
                else:
                    assert variant.instance is not None
                    home = fresh_home(base, env, variant.instance, args.batch)
                    try:
                        home.seed(seeds)
                        if variant.name == "floor":
                            target = ["-f", str(ROOT / "benchmarks" / "economic_floor_defs.py")]
                        else:
                            target = ["-m", "ingest_platform.definitions"]
                        cmd = materialize_cmd(home, target, ASSET, partition_range)
                        wall, rss, _, _ = timed(cmd, home.env, home.path)
                        if variant.name == "ours":
                            variant.rows = {ASSET: _lake_rows(home.lake)}
                            partitions = sorted(p.stem for p in (home.lake / ASSET).iterdir())
                            variant.rows["partitions"] = len(partitions)
                    finally:
                        home.close()
                if variant.name != "floor":
                    variant.requests = get(f"{url}/_sandbox/counters")
                variant.walls.append(wall)
                variant.rss.append(rss)
                print(f"round {round_no + 1}: {variant.label:<20} {wall:7.1f} s", flush=True)
    finally:
        stop_sandbox(sandbox)
        shutil.rmtree(base, ignore_errors=True)
    _report(args, variants, mappings)


def get_mappings(lake: Path):
    import pandas as pd

    return pd.read_parquet(lake / "variable_mappings")


def _report(args, variants: list[Variant], mappings) -> None:
    from dagster import PartitionKeyRange

    from ingest_platform.core.partitions import economic_month_partitions

    keys = economic_month_partitions.get_partition_keys_in_range(
        PartitionKeyRange(args.start, args.end)
    )
    print(
        f"\nEconomic backfill {args.start}...{args.end}: {len(keys)} monthly partitions, "
        f"{os.cpu_count()} cores, {args.repeat} interleaved rounds (medians); {load_note()}"
    )
    print_table(variants)
    by = {(v.name, v.instance): v for v in variants}
    bare = by.get(("bare", None))
    for instance in [i for i in dict.fromkeys(v.instance for v in variants) if i]:
        ours, floor = by.get(("ours", instance)), by.get(("floor", instance))
        if ours and floor:
            print(f"[{instance}] ours / floor = {ours.median / floor.median:.2f}")
            print(f"[{instance}] ours above the floor = {ours.median - floor.median:.1f} s")
            if bare:
                goal = 1.5 * bare.median + floor.median
                print(f"[{instance}] ours / (1.5 x bare + floor) = {ours.median / goal:.2f}")
        if ours and bare:
            print(f"[{instance}] ours / bare = {ours.median / bare.median:.2f}")
    fred = sorted(mappings.loc[mappings["source"] == "fred", "series_id"])
    worldbank = sorted(mappings.loc[mappings["source"] == "worldbank", "series_id"])
    wb_expected: dict[str, int] = {}
    for series_id in worldbank:
        indicator = series_id.split("/", 1)[0]
        wb_expected[indicator] = wb_expected.get(indicator, 0) + 1
    for variant in (v for v in variants if v.requests):
        requests = variant.requests
        observations = requests.get("fred.observations", {})
        indicators = requests.get("worldbank.indicator", {})
        print(f"\nrequests for the whole run, {variant.label} (sandbox counters):")
        print(f"  {'endpoint':<22}{'symbols':>8}{'requests':>9}{'max/symbol':>11}")
        for endpoint, counts in sorted(requests.items()):
            print(
                f"  {endpoint:<22}{len(counts):>8}{sum(counts.values()):>9}"
                f"{max(counts.values(), default=0):>11}"
            )
        fred_ok = observations == dict.fromkeys(fred, 1)
        wb_ok = indicators == wb_expected
        asked = ("fred.observations", "worldbank.indicator")
        others = sorted(e for e in requests if e not in asked)
        print(
            f"  FRED: {sum(observations.values())} series/observations requests for "
            f"{len(fred)} mapped series; one per series: {fred_ok}"
        )
        print(
            f"  World Bank: {sum(indicators.values())} requests for {len(worldbank)} mapped "
            f"indicator/country pairs ({', '.join(worldbank)}); one per pair: {wb_ok}"
        )
        print(f"  other endpoints asked: {', '.join(others) if others else 'none'}")
        print("  rows: " + ", ".join(f"{k} {n:,}" for k, n in variant.rows.items()))


if __name__ == "__main__":
    main()
