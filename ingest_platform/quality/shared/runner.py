"""`ingest-platform check`: run the asset checks against the lake, for CI.

Dagster has no command that runs asset checks alone (``dagster asset`` materializes, lists and
wipes). This runs a checks-only job over the selected assets' standalone checks against the
configured instance, so the results show in the UI like any other evaluation, and nothing is
materialized. A failing non-blocking check leaves a Dagster run successful even at ERROR
severity, so the exit code comes from the check evaluations, never from the run's status:

- 0: nothing failed at or above ``--fail-on`` (default ``error``);
- 2: a check failed at that level (even when others could not run: a range whose partitions
  are missing fails `partitions_present`, and the checks with no rows to read cannot run);
- 1: the checks could not run (a bad selection, an empty lake, a broken config) and none
  failed; the reason is printed on one line.

Without ``--select`` the runner checks what there is to check (`scope_checks`): an asset whose
partitions do not include ``--partition``/``--partition-range`` (a day asked of a monthly
dataset) or whose dataset has nothing in the lake (a deployment that never streams) is left
out, and one line names it. With ``--select`` nothing is left out silently: an asset without
that partition is a usage error (exit 1), an empty one reports "could not run".
"""

from __future__ import annotations

import json
import sys
import threading
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from dagster import (
    AssetCheckKey,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    define_asset_job,
)

from ingest_platform.core import settings
from ingest_platform.core.lake import ParquetLake
from ingest_platform.quality.shared.factory import COULD_NOT_RUN

JOB_NAME = "ingest_platform_checks"
EXIT_OK, EXIT_CANNOT_RUN, EXIT_FAILED = 0, 1, 2


class CannotRun(Exception):
    """The checks could not run; the message is the one line the runner prints."""


@dataclass(frozen=True)
class Evaluation:
    """One check's result as the runner reports it."""

    asset: str
    check: str
    window: str
    severity: str  # WARN or ERROR (the severity it fails with)
    passed: bool
    could_not_run: bool
    description: str
    key_figure: str
    offending: str

    @property
    def status(self) -> str:
        if self.could_not_run:
            return "NOT RUN"
        return "PASS" if self.passed else self.severity

    def fails_at(self, level: str) -> bool:
        if self.passed or self.could_not_run:
            return False
        return level == "warn" or self.severity == "ERROR"


def parse_range(
    partition: str | None, partition_range: str | None
) -> tuple[str | None, str | None]:
    """``--partition KEY`` or ``--partition-range START...END`` as (start, end)."""
    if partition and partition_range:
        raise CannotRun("give --partition or --partition-range, not both")
    if partition:
        return partition, partition
    if partition_range:
        start, sep, end = partition_range.partition("...")
        if not sep or not start or not end:
            raise CannotRun(f"--partition-range {partition_range!r}: use START...END")
        if start > end:
            raise CannotRun(f"--partition-range {partition_range!r}: START is after END")
        return start, end
    return None, None


def select_checks(defs: Definitions, selection: str | None) -> list[AssetCheckKey]:
    """The standalone checks (not those a materialization emits) of the selected assets."""
    graph = defs.resolve_asset_graph()
    try:
        assets = (
            AssetSelection.from_string(selection).resolve(graph)
            if selection
            else graph.get_all_asset_keys()
        )
    except Exception as exc:
        raise CannotRun(f"bad --select {selection!r}: {str(exc).splitlines()[0]}") from None
    keys = [
        key
        for checks_def in defs.asset_checks or []
        for key in checks_def.check_keys
        if key.asset_key in assets
    ]
    if not keys:
        shown = ", ".join(sorted(a.to_user_string() for a in assets)[:5])
        raise CannotRun(f"no asset checks on the selected assets ({shown})")
    return sorted(keys, key=str)


def _has_partitions(partitions_def: Any, start: str, end: str) -> bool:
    """Whether both ends of the window are keys of `partitions_def` (Dagster's own test: a
    monthly definition has 2025-03-01, not 2025-03-14, though the strings sort together)."""
    try:
        return bool(
            partitions_def.has_partition_key(start) and partitions_def.has_partition_key(end)
        )
    except Exception:  # keys it cannot tell without an instance (dynamic): let the check say
        return True


def _in_lake(lake: ParquetLake, asset: str, partitioned: bool) -> bool:
    return bool(lake.partition_keys(asset)) if partitioned else lake.has_partition(asset)


def scope_checks(
    defs: Definitions,
    keys: Sequence[AssetCheckKey],
    selection: str | None,
    start: str | None,
    end: str | None,
    lake: ParquetLake,
    out: TextIO,
) -> list[AssetCheckKey]:
    """The checks worth running for the window: see the module docstring.

    Partition keys are only comparable within one partitions definition, so the window is
    matched against each asset's own definition, never as strings across grains.
    """
    graph = defs.resolve_asset_graph()
    window = start if start == end else f"{start}...{end}"
    assets = sorted({k.asset_key for k in keys}, key=lambda a: a.to_user_string())
    outside, empty = [], []
    for asset in assets:
        partitions_def = graph.get(asset).partitions_def
        name = asset.to_user_string()
        if start and end and partitions_def and not _has_partitions(partitions_def, start, end):
            if selection:
                raise CannotRun(
                    f"--select {selection!r}: {name} has no partition {window} "
                    f"({type(partitions_def).__name__}, keys like "
                    f"{partitions_def.get_first_partition_key()}); narrow --select"
                )
            outside.append(asset)
        elif not selection and not _in_lake(lake, name, partitions_def is not None):
            empty.append(asset)
    if outside:
        names = ", ".join(a.to_user_string() for a in outside)
        print(f"skipped {names}: {window} is not one of their partitions", file=out)
    if empty:
        names = ", ".join(a.to_user_string() for a in empty)
        print(f"skipped {names}: nothing in the lake to check", file=out)
    kept = [k for k in keys if k.asset_key not in {*outside, *empty}]
    if not kept:
        raise CannotRun("nothing to check: every asset with checks was skipped")
    return kept


def _evaluation(event: Any) -> Evaluation:
    data = event.event_specific_data
    meta = {k: v.value for k, v in (data.metadata or {}).items()}
    return Evaluation(
        asset=data.asset_key.to_user_string(),
        check=data.check_name,
        window=str(meta.get("window", "")),
        severity=data.severity.value,
        passed=bool(data.passed),
        could_not_run=bool(meta.get(COULD_NOT_RUN, False)),
        description=data.description or "",
        key_figure=str(meta.get("key_figure", "")),
        offending=str(meta.get("offending", "")),
    )


POLL_SECONDS = 0.5


def run_checks(
    defs: Definitions,
    keys: Sequence[AssetCheckKey],
    start: str | None,
    end: str | None,
    instance: DagsterInstance,
    out: TextIO,
) -> tuple[list[Evaluation], str]:
    """Execute the checks-only job; print each result as it lands. Returns the evaluations
    and the run id (the run is in the instance, so the UI shows the same results)."""
    job = define_asset_job(JOB_NAME, selection=AssetSelection.checks(*keys))
    resolved = Definitions.merge(defs, Definitions(jobs=[job])).resolve_job_def(JOB_NAME)
    ops = {f"{asset.to_user_string()}_quality" for asset in {k.asset_key for k in keys}}
    run_config: dict[str, Any] = {
        "ops": {op: {"config": {"start": start, "end": end}} for op in sorted(ops)},
        "loggers": {"console": {"config": {"log_level": "CRITICAL"}}},
    }
    run_id = str(uuid.uuid4())
    outcome: dict[str, Any] = {}

    def execute() -> None:
        try:
            outcome["result"] = resolved.execute_in_process(
                run_config=run_config, instance=instance, raise_on_error=False, run_id=run_id
            )
        except Exception as exc:  # a broken config: the checks could not run
            outcome["error"] = exc

    worker = threading.Thread(target=execute, name="ingest-platform-check")
    worker.start()
    cursor: str | None = None
    evaluations: list[Evaluation] = []
    print(f"running {len(keys)} check(s) in run {run_id} ...", file=out, flush=True)
    while True:
        alive = worker.is_alive()
        # Only the records after the cursor: a poll reads what landed since the last one.
        connection = instance.get_records_for_run(
            run_id, cursor=cursor, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
        )
        cursor = connection.cursor
        for record in connection.records:
            event = record.event_log_entry.dagster_event
            if event is not None:
                evaluation = _evaluation(event)
                evaluations.append(evaluation)
                print(
                    f"  [{len(evaluations)}/{len(keys)}] {evaluation.asset}:{evaluation.check} "
                    f"{evaluation.status}",
                    file=out,
                    flush=True,
                )
        if not alive:
            break
        # Wait for the run, waking at least twice a second to print what has landed: each
        # poll opens the run's event store, so polling faster only slows the run it watches.
        worker.join(POLL_SECONDS)
    if "error" in outcome:
        raise CannotRun(f"the checks could not start: {str(outcome['error']).splitlines()[0]}")
    result = outcome["result"]
    if not evaluations and not result.success:
        failures = [e.message for e in result.all_events if e.is_failure and e.message]
        raise CannotRun(f"the checks could not run: {(failures or ['run failed'])[0]}")
    return evaluations, run_id


def table(evaluations: Sequence[Evaluation]) -> str:
    """check | asset | partition range | severity | status | key figure."""
    header = ("check", "asset", "partitions", "severity", "status", "key figure")
    rows = [
        (e.check, e.asset, e.window, "" if e.passed else e.severity, e.status, e.key_figure)
        for e in evaluations
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def write_junit(path: Path, evaluations: Sequence[Evaluation], fail_on: str) -> None:
    """One test case per check and partition range; failures carry the offending rows."""
    suite = ET.Element(
        "testsuite",
        name="ingest-platform check",
        tests=str(len(evaluations)),
        failures=str(sum(e.fails_at(fail_on) for e in evaluations)),
        errors=str(sum(e.could_not_run for e in evaluations)),
        skipped="0",
    )
    for e in evaluations:
        case = ET.SubElement(
            suite, "testcase", classname=e.asset, name=f"{e.check} [{e.window or 'all'}]"
        )
        if e.could_not_run:
            ET.SubElement(case, "error", message=e.description).text = e.description
        elif e.fails_at(fail_on):
            failure = ET.SubElement(case, "failure", message=e.description, type=e.severity)
            failure.text = f"{e.description}\n\n{e.offending}".strip()
        elif not e.passed:
            ET.SubElement(case, "system-out").text = f"{e.severity}: {e.description}"
    suites = ET.Element("testsuites")
    suites.append(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suites).write(path, encoding="utf-8", xml_declaration=True)


def write_json(path: Path, evaluations: Sequence[Evaluation], run_id: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "run_id": run_id,
        "findings": [{**asdict(e), "status": e.status} for e in evaluations],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


def _lake(defs: Definitions) -> ParquetLake:
    """The code location's lake (the one the checks read), else the configured one."""
    lake = (defs.resources or {}).get("lake")
    return lake if isinstance(lake, ParquetLake) else ParquetLake(root=settings.lake_root())


def main(
    defs: Definitions,
    instance: DagsterInstance,
    select: str | None,
    partition: str | None,
    partition_range: str | None,
    fail_on: str,
    junit_xml: str | None,
    json_path: str | None,
    out: TextIO | None = None,
) -> int:
    """Run, print, write the reports; return the exit code. `out` defaults to the
    ``sys.stdout`` of the call, not of the import (a test's capture replaces it)."""
    out = out or sys.stdout
    try:
        start, end = parse_range(partition, partition_range)
        keys = select_checks(defs, select)
        keys = scope_checks(defs, keys, select, start, end, _lake(defs), out)
        evaluations, run_id = run_checks(defs, keys, start, end, instance, out)
    except CannotRun as exc:
        print(f"ingest-platform check: cannot run: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    print("", file=out)
    print(table(evaluations), file=out)
    if junit_xml:
        write_junit(Path(junit_xml), evaluations, fail_on)
    if json_path:
        write_json(Path(json_path), evaluations, run_id)
    not_run = [e for e in evaluations if e.could_not_run]
    failed = [e for e in evaluations if e.fails_at(fail_on)]
    for e in failed:
        print(f"FAILED {e.asset}:{e.check} [{e.window}] {e.severity}: {e.description}", file=out)
    if not_run:
        print(
            f"ingest-platform check: cannot run: {not_run[0].asset}:{not_run[0].check}: "
            f"{not_run[0].description}",
            file=sys.stderr,
        )
    # A failed check outranks one that could not run: when a range's partitions are missing,
    # `partitions_present` says so (2) and the checks that had no rows to read could not run.
    if failed:
        return EXIT_FAILED
    return EXIT_CANNOT_RUN if not_run else EXIT_OK
