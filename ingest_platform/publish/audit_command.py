"""What `ingest-platform audit` prints and returns.

Exit codes:

- 0: every copy agrees (after ``--repair``: agrees now);
- 2: copies disagree (each disagreement on its own line: dataset, partition, which copies, the
  figures); after ``--repair``: still disagree once the repairs ran;
- 1: the audit could not run (no lake, an instance it cannot read); one line says why.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TextIO

from dagster import DagsterInstance, Definitions
from sqlalchemy.engine import Engine

from ingest_platform.core.dataset import Dataset
from ingest_platform.core.lake import ParquetLake
from ingest_platform.publish import repair
from ingest_platform.publish.audit import AuditReport, run_audit
from ingest_platform.publish.catalogue import DATASETS

EXIT_CONSISTENT, EXIT_CANNOT_RUN, EXIT_INCONSISTENT = 0, 1, 2
#: Audit, repair, audit again: a lake repair makes the warehouse and metadata.json follow.
MAX_ROUNDS = 3


def summary(report: AuditReport) -> str:
    lines = [
        f"{'dataset':<26} {'partitions':>10} {'rows':>10}  compared with{'':<28} disagreements"
    ]
    for a in report.datasets:
        lines.append(
            f"{a.dataset:<26} {a.partitions:>10} {a.rows:>10}  "
            f"{', '.join(a.compared):<41} {len(a.disagreements)}"
            + (f" ({a.unverified} unverified: no hash recorded)" if a.unverified else "")
        )
    return "\n".join(lines)


def _print(report: AuditReport, out: TextIO) -> None:
    print(summary(report), file=out)
    print("", file=out)
    for d in report.disagreements:
        print(f"DISAGREE {d.line()}", file=out)
    state = "consistent" if report.consistent else f"{len(report.disagreements)} disagreement(s)"
    print(f"audit: {state} ({report.seconds:.1f} s)", file=out)


def main(
    defs: Definitions,
    instance: DagsterInstance,
    lake: ParquetLake,
    engine: Engine | None,
    *,
    as_json: bool = False,
    fix: bool = False,
    datasets: Sequence[str] = (),
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    unknown = sorted(set(datasets) - {d.name for d in DATASETS})
    if unknown:
        print(f"ingest-platform audit: unknown dataset(s) {unknown}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    chosen: list[Dataset] = [d for d in DATASETS if not datasets or d.name in datasets]
    try:
        report = run_audit(lake, instance, engine, chosen)
    except Exception as exc:  # the audit itself failed: say why on one line
        print(f"ingest-platform audit: cannot run: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    rounds = 0
    while fix and not report.consistent and rounds < MAX_ROUNDS:
        rounds += 1
        repairs = repair.plan(report)
        if not as_json:
            _print(report, out)
            print(f"\nrepair, round {rounds}:", file=out)
        repair.execute(defs, instance, repairs, sys.stderr if as_json else out)
        report = run_audit(lake, instance, engine, chosen)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, default=str), file=out)
    else:
        if rounds:
            print("\nafter the repairs:", file=out)
        _print(report, out)
        if not report.consistent and not fix:
            print("\nto repair (or run `ingest-platform audit --repair`):", file=out)
            for step in repair.plan(report):
                for command in step.commands():
                    print(f"  {command}", file=out)
    return EXIT_CONSISTENT if report.consistent else EXIT_INCONSISTENT
