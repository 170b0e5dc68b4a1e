"""`variable_series` follows every change of what it is built from, month by month.

Its months are UTC months of when values became known; its market input is New York days and
its stream input UTC days. Dagster's partition mappings refuse to map New York days to UTC
months, so its dependency on `market_bars` covers every partition, and an automation condition
on it would rebuild every month after any market run. This sensor does the mapping itself,
through the partition schemes (`core.partitioning.map_keys`):

- it reads the materializations recorded since its cursor for each input;
- keeps those whose content changed (the write path records ``rewritten``: a re-run that
  changed nothing moves nothing downstream);
- maps each changed partition to the months whose values it can change (a value becomes known
  at most a day after its own day ends: a session's close, a UTC day's end);
- and requests one run per stretch of consecutive months.

A rewrite of older history (a split rebasing a year of bars, a repaired file) therefore reaches
exactly the months it touches; an input without partitions (the registry's mappings, the
sessions) touches every month.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pandas as pd
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from ingest_platform.core import settings
from ingest_platform.core.dataset import Dataset
from ingest_platform.core.partitions import KNOWN_MONTHS
from ingest_platform.economic.schema import ECONOMIC_INDICATORS
from ingest_platform.market.schema import MARKET_BARS
from ingest_platform.reference.schema import INSTRUMENTS, TRADING_SESSIONS
from ingest_platform.registry.schema import VARIABLE_MAPPINGS
from ingest_platform.streaming.kraken.schemas import KRAKEN_BOOK_MINUTE_BARS
from ingest_platform.variables.schedules import variable_series_job

#: What `variable_series` is built from.
INPUTS: tuple[Dataset, ...] = (
    VARIABLE_MAPPINGS,
    ECONOMIC_INDICATORS,
    MARKET_BARS,
    KRAKEN_BOOK_MINUTE_BARS,
    TRADING_SESSIONS,
    INSTRUMENTS,
)
#: A value of a day becomes known at most this long after its day ends.
KNOWLEDGE_DELAY = pd.Timedelta(days=1)
#: Materializations read per input and tick (the cursor carries on from where it stopped).
PAGE = 1000


def months_touched(dataset: Dataset, partition: str | None, now: pd.Timestamp) -> set[str]:
    """The months of `variable_series` a change of `dataset`'s `partition` can change."""
    months = KNOWN_MONTHS.current_keys(now)
    if dataset.partitioning is None or partition is None:
        return set(months)
    start, end = dataset.partitioning.window(partition)
    touched = KNOWN_MONTHS.keys_overlapping(start, end + KNOWLEDGE_DELAY)
    return set(touched) & set(months)


def stretches(months: set[str]) -> Iterator[tuple[str, str]]:
    """Consecutive months as (first, last)."""
    for first, last, _ in KNOWN_MONTHS.runs(months):
        yield first, last


def _changed(record: object) -> bool:
    """Whether a materialization says its content changed (old records without the flag do)."""
    event = getattr(record, "asset_materialization", None)
    if event is None:
        return False
    flag = event.metadata.get("rewritten")
    return True if flag is None else bool(flag.value)


def _since(context: SensorEvaluationContext, dataset: Dataset, after: int) -> Iterator[Any]:
    """Every materialization of `dataset` after storage id `after`, page by page."""
    cursor = None
    while True:
        result = context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey(dataset.name), after_storage_id=after),
            limit=PAGE,
            cursor=cursor,
            ascending=True,
        )
        yield from result.records
        if not result.has_more:
            return
        cursor = result.cursor


@sensor(
    job=variable_series_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
    description="Rebuilds exactly the months of variable_series whose inputs changed (market "
    "days, stream days and economic months mapped to UTC months by their partition schemes).",
)
def variable_series_after_updates(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    after = int(context.cursor) if context.cursor else 0
    now = settings.now()
    newest = after
    months: set[str] = set()
    changed_inputs: set[str] = set()
    for dataset in INPUTS:
        for record in _since(context, dataset, after):
            newest = max(newest, record.storage_id)
            if _changed(record):
                touched = months_touched(dataset, record.partition_key, now)
                months |= touched
                if touched:
                    changed_inputs.add(dataset.name)
    if newest == after:
        return SkipReason("no input of variable_series was materialized since the last tick")
    if not months:
        return SensorResult(
            skip_reason=SkipReason("inputs re-materialized, but no content changed"),
            cursor=str(newest),
        )
    requests = [
        RunRequest(
            run_key=f"variable_series_after:{first}:{last}:{newest}",
            tags={
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
                "ingest_platform/changed_inputs": ",".join(sorted(changed_inputs)),
            },
        )
        for first, last in stretches(months)
    ]
    context.log.info(
        "inputs changed (%s): rebuilding %d month(s) in %d run(s)",
        ", ".join(sorted(changed_inputs)),
        len(months),
        len(requests),
    )
    return SensorResult(run_requests=requests, cursor=str(newest))
