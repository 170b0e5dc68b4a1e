"""The main job on embedded defaults, as README command 1 runs it.

It executes the platform's jobs in-process against the repository instance, then prints what
landed where, so a new user sees real output (and the same runs in the UI) without API keys.
"""

from __future__ import annotations

from typing import TextIO

from dagster import DagsterInstance

from ingest_platform.definitions import build_definitions
from ingest_platform.lake import ParquetLake

DEMO_JOBS = ("reference_job",)


def run_demo(dagster_home: str, out: TextIO) -> int:
    """Run the demo jobs; return a process exit code (0 when every run succeeded)."""
    instance = DagsterInstance.get()
    defs = build_definitions()
    lake: ParquetLake = defs.resources["lake"]
    failed = []
    for job_name in DEMO_JOBS:
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance, raise_on_error=False
        )
        status = "succeeded" if result.success else "FAILED"
        print(f"{job_name}: run {result.run_id} {status}", file=out)
        if not result.success:
            failed.append(job_name)
            for event in result.all_events:
                if event.is_failure:
                    print(f"  {event.step_key}: {event.message}", file=out)
        for mat in result.get_asset_materialization_events():
            m = mat.step_materialization_data.materialization
            rows = m.metadata.get("dagster/row_count")
            uri = m.metadata.get("dagster/uri")
            part = f" [{m.partition}]" if m.partition else ""
            print(
                f"  {m.asset_key.to_user_string()}{part}: "
                f"{rows.value if rows else '?'} rows -> {uri.value if uri else '?'}",
                file=out,
            )
    print(f"\nLake:     {lake.root}", file=out)
    print(f"Instance: {dagster_home}/dagster.yaml (runs visible in `dagster dev`)", file=out)
    return 1 if failed else 0
