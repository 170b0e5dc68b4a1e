"""Audit benchmark: `ingest-platform audit` on three years of the full universe.

Built once, untimed, through the real CLI path (market_backfill.py's): a SQLite instance and a
lake holding instruments and the five market assets for 2023-01-02..2025-12-31 (the sandbox as
of 2026-11-20), published to the SQLite warehouse (warehouse_instruments, warehouse_market_bars,
warehouse_corporate_actions) and described by dataset_metadata. Then, interleaved A B A B … in
fresh processes:

A. **ours**: ``ingest-platform audit`` (every dataset: lake rows and content hashes against the
   latest materialization of each partition, the warehouse table and metadata.json);
B. **floor**: the reads an audit cannot avoid, and nothing else: every lake partition of every
   dataset read with pyarrow, every warehouse table selected whole, the latest materialization
   record of every partition fetched from the instance (`floor_reads` below).

It prints both medians, the ratio, peak RSS, and the audit's exit code (0: the copies agree,
which they must on this clean build). Timings are never asserted.

    .venv/bin/python benchmarks/audit.py                  # 3 years, 5 rounds
    .venv/bin/python benchmarks/audit.py --quick          # one quarter
    .venv/bin/python benchmarks/audit.py --keep /tmp/audit-home  # reuse a built home
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from _common import (
    BIN,
    ROOT,
    fresh_home,
    load_note,
    materialize_cmd,
    start_sandbox,
    stop_sandbox,
    timed,
)
from market_backfill import AS_OF, SOURCE_KEYS, backfill_lake

FLOOR = r"""
import sys
import pyarrow.dataset as ds
import sqlalchemy as sa
from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance
from ingest_platform.publish.catalogue import DATASETS
lake, warehouse = sys.argv[1], sys.argv[2]
rows = 0
for d in DATASETS:
    folder = f"{lake}/{d.name}"
    try:
        rows += ds.dataset(folder, format="parquet").to_table().num_rows
    except (FileNotFoundError, ValueError):
        pass
engine = sa.create_engine(f"sqlite:///{warehouse}")
with engine.connect() as c:
    for name in sa.inspect(engine).get_table_names():
        rows += len(c.execute(sa.text(f'select * from "{name}"')).fetchall())
with DagsterInstance.get() as instance:
    for d in DATASETS:
        key = AssetKey(d.name)
        ids = sorted(instance.event_log_storage.get_latest_storage_id_by_partition(
            key, DagsterEventType.ASSET_MATERIALIZATION).values())
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            instance.fetch_materializations(
                AssetRecordsFilter(asset_key=key, storage_ids=chunk), limit=len(chunk))
print(rows)
"""


def build(home, start: str, end: str) -> None:
    """The untimed build: backfill, publish, describe (see the module docstring)."""
    backfill_lake(home, start, end)
    target = ["-m", "ingest_platform.definitions"]
    for select, partitions in (
        ("warehouse_instruments", None),
        ("warehouse_market_bars", f"{start}...{end}"),
        ("warehouse_corporate_actions", f"{start}...{end}"),
        ("dataset_metadata", None),
    ):
        timed(materialize_cmd(home, target, select, partitions), home.env, home.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2023-01-02")
    parser.add_argument("--end", default="2025-12-31")
    parser.add_argument("--quick", action="store_true", help="one quarter instead of three years")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", default=None, help="build into (or reuse) this folder")
    args = parser.parse_args()
    if args.quick:
        args.start, args.end = "2025-10-01", "2025-12-31"

    env = {**os.environ, **SOURCE_KEYS, "FRED_API_KEY": "bench-fred-key-0001"}
    env.pop("DAGSTER_EVENT_BATCH_SIZE", None)
    base = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    sandbox, url = start_sandbox(env, AS_OF)
    env["INGEST_PLATFORM_SANDBOX_URL"] = url
    env["INGEST_PLATFORM_NOW"] = "2026-01-01T14:00:00+00:00"
    keep = Path(args.keep) if args.keep else None
    reuse = keep is not None and (keep / "dagster.yaml").exists()
    home = fresh_home(base, env, "sqlite", path=keep)
    try:
        if not reuse:
            print(f"building {args.start}..{args.end} (untimed) in {home.path} ...", flush=True)
            build(home, args.start, args.end)
        lake = home.path / "data" / "lake"
        warehouse = home.path / "data" / "warehouse" / "warehouse.sqlite"
        ours = [str(BIN / "ingest-platform"), "audit"]
        floor = [sys.executable, "-c", FLOOR, str(lake), str(warehouse)]
        walls: dict[str, list[float]] = {"ours": [], "floor": []}
        rss: dict[str, list[float]] = {"ours": [], "floor": []}
        codes, out = [], ""
        for _ in range(args.repeat):
            for name, cmd in (("ours", ours), ("floor", floor)):
                wall, peak, stdout, code = timed(cmd, home.env, home.path, check=False)
                walls[name].append(wall)
                rss[name].append(peak)
                if name == "ours":
                    codes.append(code)
                    out = stdout
        print(out.strip())
        print()
        print(f"{'run':<8}{'median s':>10}{'min s':>8}{'max s':>8}{'peak RSS MB':>13}")
        for name in walls:
            print(
                f"{name:<8}{statistics.median(walls[name]):>10.2f}{min(walls[name]):>8.2f}"
                f"{max(walls[name]):>8.2f}{max(rss[name]):>13.0f}"
            )
        ratio = statistics.median(walls["ours"]) / statistics.median(walls["floor"])
        print(f"\nours / floor: {ratio:.2f}x   audit exit codes: {sorted(set(codes))}")
        print(f"range {args.start}..{args.end}, {args.repeat} rounds, {load_note()}")
    finally:
        stop_sandbox(sandbox)
        if keep is None:
            home.close()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
