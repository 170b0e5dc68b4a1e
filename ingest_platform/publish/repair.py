"""`ingest-platform audit --repair`: the runs that bring the copies back in line.

The lake is what the data *is*; the other copies follow it. So a disagreement is repaired by
materializing, through the platform's own assets, the copy that is behind:

1. a lake partition that is unreadable, missing although Dagster recorded it, or unrecorded,
   or whose content Dagster does not know: the dataset's own asset, for those partitions (the
   source assets with ``refresh: true``, so they re-fetch instead of trusting what is there);
2. a warehouse table that differs from the lake: its ``warehouse_*`` asset, for those
   partitions;
3. metadata.json: ``dataset_metadata``.

Steps run in that order, because each later copy is built from the lake. The runs are recorded
in the instance like any other, so the UI shows the repair. Without ``--repair`` the audit only
prints the equivalent ``dagster asset materialize`` commands.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from dagster import AssetSelection, DagsterInstance, Definitions, define_asset_job

from ingest_platform.core.dataset import Dataset
from ingest_platform.core.lake import UNPARTITIONED
from ingest_platform.publish.audit import DAGSTER, LAKE, METADATA, WAREHOUSE, AuditReport
from ingest_platform.publish.catalogue import DATASETS

#: Datasets whose asset re-fetches from its source with ``refresh: true``, and the op whose
#: config carries it (corporate actions come from the Yahoo op).
REFRESH_OP = {
    "yahoo_daily_bars": "yahoo_daily_bars",
    "corporate_actions": "yahoo_daily_bars",
    "alpha_vantage_daily_bars": "alpha_vantage_daily_bars",
    "polygon_daily_bars": "polygon_daily_bars",
}
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


@dataclass(frozen=True)
class Repair:
    """One materialization that repairs a copy: an asset, over stretches of partitions."""

    step: int
    asset: str
    stretches: tuple[tuple[str, str], ...] = ()
    config: dict[str, Any] = field(default_factory=dict)
    why: str = ""

    def commands(self) -> list[str]:
        """The same runs as ``dagster asset materialize`` commands (from the project root)."""
        base = f"dagster asset materialize -m ingest_platform.definitions --select {self.asset}"
        config = f" --config-json '{json.dumps(self.config)}'" if self.config else ""
        if not self.stretches:
            return [base + config]
        return [
            f"{base} --partition {first}{config}"
            if first == last
            else f"{base} --partition-range {first}...{last}{config}"
            for first, last in self.stretches
        ]


def _dataset(name: str) -> Dataset:
    return next(d for d in DATASETS if d.name == name)


def _stretches(dataset: Dataset, keys: set[str]) -> tuple[tuple[str, str], ...]:
    if not dataset.partitioned or keys <= {UNPARTITIONED} or None in keys:
        return ()
    return tuple((first, last) for first, last, _ in dataset.scheme.runs(keys))


def plan(report: AuditReport) -> list[Repair]:
    """The repairs for the report's disagreements, in the order they must run."""
    lake: dict[str, set[str]] = {}
    warehouse: dict[str, set[str | None]] = {}
    metadata = False
    for d in report.disagreements:
        if d.copies in ((LAKE, DAGSTER), (LAKE, LAKE)):
            lake.setdefault(d.dataset, set()).add(d.partition or UNPARTITIONED)
        elif d.copies == (LAKE, WAREHOUSE):
            warehouse.setdefault(d.dataset, set()).add(d.partition)
        elif d.copies == (LAKE, METADATA):
            metadata = True
    repairs: list[Repair] = []
    for name, keys in sorted(lake.items()):
        dataset = _dataset(name)
        op = REFRESH_OP.get(name)
        config = {"ops": {op: {"config": {"refresh": True}}}} if op else {}
        repairs.append(
            Repair(1, name, _stretches(dataset, keys), config, "the lake is behind its record")
        )
    for name, wkeys in sorted(warehouse.items()):
        dataset = _dataset(name)
        whole = None in wkeys or not dataset.partitioned
        partitions = set() if whole else {k for k in wkeys if k is not None}
        stretches = () if whole else _stretches(dataset, partitions)
        repairs.append(
            Repair(2, f"warehouse_{name}", stretches, {}, "the warehouse differs from the lake")
        )
    if metadata or lake:
        repairs.append(Repair(3, "dataset_metadata", (), {}, "metadata.json is out of date"))
    return repairs


def execute(
    defs: Definitions, instance: DagsterInstance, repairs: Sequence[Repair], out: TextIO
) -> bool:
    """Run `repairs` in process against `instance`; True when every run succeeded."""
    ok = True
    for repair in repairs:
        name = f"audit_repair_{repair.asset}"
        job = define_asset_job(name, selection=AssetSelection.assets(repair.asset))
        resolved = Definitions.merge(defs, Definitions(jobs=[job])).resolve_job_def(name)
        for first, last in repair.stretches or ((None, None),):
            tags: dict[str, str] = (
                {
                    "dagster/asset_partition_range_start": first,
                    "dagster/asset_partition_range_end": last,
                }
                if first is not None and last is not None
                else {}
            )
            where = "" if first is None else f" {first}" if first == last else f" {first}...{last}"
            try:
                result = resolved.execute_in_process(
                    run_config={**QUIET, **repair.config},
                    instance=instance,
                    tags={**tags, "ingest_platform/repair": repair.why},
                    raise_on_error=False,
                )
            except Exception as exc:  # config it cannot resolve (a key not in the environment)
                reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                print(f"  repair {repair.asset}{where}: could not start: {reason}", file=out)
                ok = False
                continue
            print(
                f"  repair {repair.asset}{where}: "
                f"{'ok' if result.success else 'FAILED'} (run {result.run_id})",
                file=out,
            )
            ok &= result.success
    return ok
