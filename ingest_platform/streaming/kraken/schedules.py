"""The minute bars' daily schedule: compact each UTC day of the stream log once it has ended.

``kraken_book_minute_bars_daily`` runs at 00:15 UTC for the day that just ended. The quarter
hour is for the log: the stream publishes a day's last segments once a row of the next day
arrives or they are ``segment_max_seconds`` (5 min by default) old. It is RUNNING by default,
yet most installs never stream (the stream sensor ships STOPPED), so a day the log does not
hold is a `SkipReason` naming the day and the log root, not a run that fails every night.
(Materializing such a day by hand does fail: `assets` refuses to write an empty partition.)

(No ``from __future__ import annotations``: Dagster resolves schedule annotations at runtime.)
"""

import datetime as dt

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from ingest_platform.core.partitions import stream_day_partitions
from ingest_platform.streaming.kraken.assets import kraken_book_minute_bars
from ingest_platform.streaming.kraken.log.replay import missing_days
from ingest_platform.streaming.kraken.resources import KrakenStream

kraken_book_minute_bars_job = define_asset_job(
    "kraken_book_minute_bars_job",
    selection=[kraken_book_minute_bars],  # partitioned like it: one UTC day per run
    description="Replay, verify and compact one UTC day of the Kraken stream log.",
)


def latest_closed_stream_day(now: dt.datetime) -> str | None:
    """The newest UTC day partition that has ended by ``now`` (None before the first one)."""
    keys = stream_day_partitions.get_partition_keys(current_time=now)
    return keys[-1] if keys else None


@schedule(
    name="kraken_book_minute_bars_daily",
    job=kraken_book_minute_bars_job,
    cron_schedule="15 0 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Compact the UTC day that just ended into minute bars; skipped (naming the "
    "day) when the stream log holds nothing for it.",
)
def kraken_book_minute_bars_daily(
    context: ScheduleEvaluationContext, kraken_stream: KrakenStream
) -> RunRequest | SkipReason:
    now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
    day = latest_closed_stream_day(now)
    if day is None:
        return SkipReason("no stream day partition has ended yet")
    root = kraken_stream.log_path()
    if missing_days(root, [day]):
        return SkipReason(
            f"no Kraken stream log for {day} under {root}: nothing to compact "
            "(is kraken_stream_sensor on?)"
        )
    return RunRequest(run_key=f"kraken_book_minute_bars:{day}", partition_key=day)
