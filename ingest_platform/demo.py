"""The main job on embedded defaults, as README command 1 runs it.

It starts the sandbox (every source, simulated locally), then runs the platform's jobs
in-process against the repository instance: reference data, the most recent market-bar
partitions from every source, the recent monthly economic partitions and the variable series
built on them, and the Kraken order-book stream for a few seconds. Then it publishes to the
embedded SQLite warehouse, writes the lake's metadata.json, runs a sample query and prints
`ingest-platform status`. A new user sees real output (and the same runs in the UI afterwards)
without network access or API keys.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any, TextIO

import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance, Definitions, ExecuteInProcessResult, materialize

from ingest_platform.core import settings
from ingest_platform.core.partitions import (
    closed_partition_keys,
    economic_month_partitions,
    market_day_partitions,
)
from ingest_platform.domains import build_definitions
from ingest_platform.publish import status
from ingest_platform.publish.catalogue import PUBLISHED
from ingest_platform.sandbox import Sandbox
from ingest_platform.streaming.kraken.log.replay import replay
from ingest_platform.streaming.kraken.log.segments import KINDS, list_segments, read_kind

#: Keys the sandbox accepts; used only when the environment provides none.
DEMO_KEYS = {
    "ALPHA_VANTAGE_API_KEY": "sandbox-demo-key",
    "POLYGON_API_KEY": "sandbox-demo-key",
    "FRED_API_KEY": "sandbox-demo-key",
}
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


#: What the demo shows from the warehouse: the newest closes of one symbol.
SAMPLE_QUERY = (
    "SELECT symbol, date, close, source FROM market_bars "
    "WHERE symbol = 'AAPL' ORDER BY date DESC LIMIT 3"
)


def recent_market_partitions(count: int, now: dt.datetime | None = None) -> tuple[str, str]:
    """The last `count` weekday partitions that have closed."""
    keys = closed_partition_keys(market_day_partitions, now or settings.now())
    return keys[-count], keys[-1]


def recent_months(count: int, now: dt.datetime | None = None) -> tuple[str, str]:
    """The last `count` monthly partitions, this month's included: daily series publish during
    the month, and the daily schedule fills its partition as they do."""
    keys = economic_month_partitions.get_partition_keys(current_time=now or settings.now())
    return keys[-count], keys[-1]


def _range(first: str, last: str) -> dict[str, str]:
    return {
        "dagster/asset_partition_range_start": first,
        "dagster/asset_partition_range_end": last,
    }


def _assets(
    defs: Definitions,
    instance: DagsterInstance,
    names: list[str],
    tags: dict[str, str] | None = None,
) -> ExecuteInProcessResult:
    """Materialize `names` (and their checks) in one run, as a click on Materialize would."""
    keys = {AssetKey(n) for n in names}
    checks = [c for c in defs.asset_checks or [] if {k.asset_key for k in c.check_keys} & keys]
    return materialize(
        [defs.get_assets_def(k) for k in sorted(keys)] + checks,
        resources=dict(defs.resources or {}),
        instance=instance,
        tags=tags or {},
        run_config=QUIET,
        raise_on_error=False,
    )


def _sample_query(url: str, out: TextIO) -> bool:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sa.text(SAMPLE_QUERY)).all()
    finally:
        engine.dispose()
    print(f"  {SAMPLE_QUERY}", file=out)
    for row in rows:
        print("    " + " | ".join(str(v) for v in row), file=out)
    return bool(rows)


def _report(result: ExecuteInProcessResult, name: str, out: TextIO) -> bool:
    print(f"{name}: run {result.run_id} {'succeeded' if result.success else 'FAILED'}", file=out)
    for event in result.all_events:
        if event.is_failure and event.message:
            print(f"  {event.step_key}: {event.message[:500]}", file=out)
    rows: dict[str, int] = {}
    partitions: dict[str, int] = {}
    where: dict[str, str] = {}
    for event in result.get_asset_materialization_events():
        mat = event.step_materialization_data.materialization
        key = mat.asset_key.to_user_string()
        # datasets report dagster/row_count per partition; a publish reports rows_inserted
        count = mat.metadata.get("dagster/row_count") or mat.metadata.get("rows_inserted")
        value = count.value if count is not None else 0
        rows[key] = rows.get(key, 0) + (value if isinstance(value, int) else 0)
        partitions[key] = partitions.get(key, 0) + (1 if mat.partition else 0)
        uri = mat.metadata.get("dagster/uri") or mat.metadata.get("metadata_json")
        table = mat.metadata.get("table")
        if uri is not None:
            path = str(uri.value)
            where[key] = os.path.dirname(path) if mat.partition else path
        elif table is not None:
            where[key] = f"warehouse table {table.value}"
    for key in sorted(rows):
        span = f"{partitions[key]} partition(s)" if partitions[key] else "unpartitioned"
        print(f"  {key:<26} {rows[key]:>8,} rows, {span:<16} -> {where.get(key, '')}", file=out)
    return result.success


def _stream_summary(root: str, out: TextIO) -> bool:
    rows = {kind: read_kind(root, kind).num_rows for kind in KINDS}
    segments = sum(len(list_segments(root, kind)) for kind in KINDS)
    report = replay(root)
    print(
        f"  log {root}: {segments} segment(s); " + ", ".join(f"{k} {n:,}" for k, n in rows.items()),
        file=out,
    )
    print(
        f"  replay: {report.verified:,} checksums re-verified, {report.mismatches} mismatches, "
        f"{report.gaps} gap(s) -> {'OK' if report.ok else 'FAILED'}",
        file=out,
    )
    for problem in report.problems[:5]:
        print(f"    {problem}", file=out)
    return report.ok


def run_demo(
    dagster_home: str,
    out: TextIO,
    market_days: int = 5,
    months: int = 12,
    stream_seconds: float = 8.0,
) -> int:
    """Run every demo job against a fresh sandbox; return a process exit code."""
    for name, value in DEMO_KEYS.items():
        os.environ.setdefault(name, value)
    instance = DagsterInstance.get()
    ok = True
    with Sandbox() as sandbox:
        os.environ.update(sandbox.env())
        print(f"Sandbox: HTTP {sandbox.url}, Kraken {sandbox.kraken_url}\n", file=out)
        defs = build_definitions()
        resources = defs.resources or {}
        lake: Any = resources["lake"]

        result = defs.resolve_job_def("reference_job").execute_in_process(
            instance=instance, raise_on_error=False, run_config=QUIET
        )
        ok &= _report(result, "reference_job", out)

        first, last = recent_market_partitions(market_days)
        result = defs.resolve_job_def("market_bars_job").execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=QUIET,
            tags=_range(first, last),
        )
        ok &= _report(result, f"market_bars_job {first}..{last}", out)

        result = _assets(defs, instance, ["variable_mappings", "economic_release_calendar"])
        ok &= _report(result, "variable_mappings, economic_release_calendar", out)
        month_first, month_last = recent_months(months)
        for job in ("economic_indicators_job", "variable_series_job"):
            result = defs.resolve_job_def(job).execute_in_process(
                instance=instance,
                raise_on_error=False,
                run_config=QUIET,
                tags=_range(month_first, month_last),
            )
            ok &= _report(result, f"{job} {month_first}..{month_last}", out)

        stream: Any = resources["kraken_stream"]
        result = defs.resolve_job_def("kraken_stream_job").execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={
                **QUIET,
                "ops": {"kraken_stream": {"config": {"run_seconds": stream_seconds}}},
            },
        )
        print(
            f"kraken_stream_job ({stream_seconds:g} s of {', '.join(stream.pairs)}): run "
            f"{result.run_id} {'succeeded' if result.success else 'FAILED'}",
            file=out,
        )
        ok &= result.success and _stream_summary(str(stream.log_path()), out)

        windows = {
            "market_bars": (first, last),
            "corporate_actions": (first, last),
            "economic_indicators": (month_first, month_last),
            "variable_series": (month_first, month_last),
        }
        for name, (start, end) in windows.items():
            result = _assets(defs, instance, [f"warehouse_{name}"], _range(start, end))
            ok &= _report(result, f"warehouse_{name} {start}..{end}", out)
        # Yahoo's answer reaches to today, so an action announced after the window (an ex-date
        # today) lands in its own corporate_actions partition: published too, as the publish
        # automation would, or the warehouse would miss what the lake holds.
        for key in [k for k in lake.partition_keys("corporate_actions") if k > last]:
            result = _assets(defs, instance, ["warehouse_corporate_actions"], _range(key, key))
            ok &= _report(result, f"warehouse_corporate_actions {key}", out)
        # Every published dataset without partitions, from the catalogue (never restated here:
        # a dataset added to it is published by the demo too, or the audit says so).
        unpartitioned = [d.name for d in PUBLISHED if not d.partitioned]
        result = _assets(defs, instance, [f"warehouse_{n}" for n in unpartitioned])
        ok &= _report(result, f"warehouse ({', '.join(unpartitioned)})", out)
        result = _assets(defs, instance, ["dataset_metadata"])
        ok &= _report(result, "dataset_metadata", out)
        warehouse: Any = resources["warehouse"]
        print(f"\nWarehouse: {warehouse.redacted_url()}", file=out)
        ok &= _sample_query(warehouse.effective_url(), out)

        print("\n$ ingest-platform status", file=out)
        ok &= status.main(defs, instance, lake, json_out=False, out=out) == 0

    print(f"\nLake:     {lake.root} (metadata.json and README.md describe it)", file=out)
    print(
        f"Instance: {dagster_home}/dagster.yaml (runs and metadata visible in `dagster dev`)",
        file=out,
    )
    return 0 if ok else 1
