"""The sensor that keeps exactly one stream run alive, and the plain rule it applies.

`kraken_stream_sensor` (every 30 s) launches a run of `kraken_stream_job` when there is none,
cancels extras, and replaces a run whose heartbeat file has gone stale. It is the only thing
that replaces stream runs (the job's runs carry ``dagster/max_retries: 0``), and each launch
has a run key derived from the runs it saw (`stream_run_key`), so it happens once. The
decision is the plain function `decide_stream_runs`; the sensor only reads the instance and
the heartbeat file and applies it. Default status is STOPPED: the stream holds a run slot
forever and connects to Kraken over the internet, which a fresh checkout, the demo or CI must
not do by merely loading the code location; operators switch it on.

(No ``from __future__ import annotations``: Dagster resolves sensor annotations at runtime.)
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

from dagster import (
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    sensor,
)

from ingest_platform.streaming.kraken.heartbeat import (
    Heartbeat,
    HeartbeatUnreadable,
    load_heartbeat,
)
from ingest_platform.streaming.kraken.job import JOB_NAME, RUN_TAGS, kraken_stream_job
from ingest_platform.streaming.kraken.resources import KrakenStream

#: Statuses in which a run counts as "the stream" (waiting or running).
ACTIVE_STATUSES = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
)
_STARTED = DagsterRunStatus.STARTED.value


@dataclass(frozen=True)
class StreamRun:
    """What the sensor needs to know about one active run of the stream job."""

    run_id: str
    status: str  # a DagsterRunStatus value
    created_at: float
    started_at: float | None = None


@dataclass(frozen=True)
class SensorDecision:
    launch: bool
    terminate: tuple[str, ...]
    keep: str | None
    reason: str


def decide_stream_runs(
    runs: Sequence[StreamRun],
    heartbeat: Heartbeat | None,
    now: float,
    stale_after: float,
    start_grace: float,
    halt_cooldown: float = 600.0,
    unreadable: str | None = None,
) -> SensorDecision:
    """Which runs to cancel and whether to launch one, so that exactly one stream runs.

    - No active run: launch, unless the stream halted less than ``halt_cooldown`` ago (a halt
      means mismatches or errors an operator must look at; relaunching at once would only
      repeat it).
    - Several: keep the one the heartbeat file names, else the earliest started, else the
      oldest queued; cancel the others.
    - The kept run, if started: stale when its heartbeat is older than ``stale_after``, or
      when it has written none ``start_grace`` after starting. Stale: cancel it and launch.
      Queued or starting runs are left to the run queue and run monitoring.
    - A heartbeat file that cannot be read (``unreadable`` says why) tells nothing, so the
      stream's liveness is unknown: decided as if no run had written one (a live stream
      rewrites the file every second; one that stays unreadable past ``start_grace`` means
      nobody is writing it). Every reason then says the file was unreadable.
    """
    note = f"; heartbeat file unreadable ({unreadable})" if unreadable else ""

    def decide(launch: bool, terminate: tuple[str, ...], keep: str | None, reason: str):
        return SensorDecision(launch, terminate, keep, reason + note)

    if unreadable:
        heartbeat = None
    if not runs:
        halted_at = heartbeat.halted_at if heartbeat is not None else None
        if heartbeat is not None and halted_at is not None and now - halted_at < halt_cooldown:
            reason = heartbeat.halt.reason if heartbeat.halt is not None else "unknown"
            return decide(
                False,
                (),
                None,
                f"stream halted {now - halted_at:.0f} s ago ({reason}); "
                f"relaunch after {halt_cooldown:.0f} s",
            )
        return decide(True, (), None, "no stream run is queued or running")
    beat_run = heartbeat.run_id if heartbeat is not None else None
    named = [r for r in runs if r.run_id == beat_run]
    started = sorted(
        (r for r in runs if r.status == _STARTED), key=lambda r: r.started_at or r.created_at
    )
    if named:
        keep = named[0]
    elif started:
        keep = started[0]
    else:
        keep = min(runs, key=lambda r: r.created_at)
    extras = tuple(r.run_id for r in runs if r.run_id != keep.run_id)
    reason = f"keeping run {keep.run_id}"
    if extras:
        reason += f"; cancelling {len(extras)} extra run(s)"
    if keep.status != _STARTED:
        return decide(False, extras, keep.run_id, f"{reason} ({keep.status})")
    if heartbeat is not None and beat_run == keep.run_id:
        age = now - heartbeat.updated_at
        if age > stale_after:
            return decide(
                True,
                (*extras, keep.run_id),
                None,
                f"run {keep.run_id}: heartbeat {age:.0f} s old (> {stale_after:.0f} s); replacing",
            )
        return decide(False, extras, keep.run_id, f"{reason}: heartbeat {age:.0f} s old")
    running_for = now - (keep.started_at or keep.created_at)
    if running_for > start_grace:
        return decide(
            True,
            (*extras, keep.run_id),
            None,
            f"run {keep.run_id}: no heartbeat {running_for:.0f} s after starting; replacing",
        )
    return decide(False, extras, keep.run_id, f"{reason}: starting, no heartbeat yet")


def stream_run_key(latest_run_id: str | None) -> str:
    """The run key of a launch: named after the newest run of the stream job so far.

    Two evaluations that see the same runs produce the same key, and Dagster launches a run
    key once per sensor: a stale run is replaced once, however often the sensor looks, and a
    failed run is followed by one new run. (No clock in the key: a timestamp would make every
    evaluation a new launch.)
    """
    return f"kraken-stream-after-{latest_run_id}" if latest_run_id else "kraken-stream-first"


def latest_stream_run_id(instance: DagsterInstance) -> str | None:
    """The most recently created run of the stream job, whatever its status."""
    runs = instance.get_runs(filters=RunsFilter(job_name=JOB_NAME), limit=1)
    return runs[0].run_id if runs else None


def active_stream_runs(instance: DagsterInstance) -> list[StreamRun]:
    records = instance.get_run_records(
        filters=RunsFilter(job_name=JOB_NAME, statuses=list(ACTIVE_STATUSES))
    )
    return [
        StreamRun(
            run_id=record.dagster_run.run_id,
            status=record.dagster_run.status.value,
            created_at=record.create_timestamp.timestamp(),
            started_at=record.start_time,
        )
        for record in records
    ]


def cancel_stream_run(instance: DagsterInstance, run_id: str, reason: str) -> str:
    """Cancel through the run coordinator; a run it cannot stop is marked failed."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.is_finished:
        return "finished"
    try:
        if instance.run_coordinator.cancel_run(run_id):
            return "cancelled"
    except Exception as exc:  # e.g. a launcher that cannot terminate
        reason = f"{reason} (cancel failed: {exc})"
    instance.report_run_failed(run, f"kraken_stream_sensor: {reason}")
    return "marked_failed"


@sensor(
    name="kraken_stream_sensor",
    job=kraken_stream_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Keeps exactly one kraken_stream_job run queued or running; replaces stale ones.",
)
def kraken_stream_sensor(context: SensorEvaluationContext, kraken_stream: KrakenStream):
    now = time.time()
    unreadable = None
    try:
        heartbeat = load_heartbeat(kraken_stream.heartbeat_path())
    except HeartbeatUnreadable as exc:
        heartbeat, unreadable = None, str(exc)
        context.log.warning(f"kraken stream heartbeat file unreadable: {exc}")
    decision = decide_stream_runs(
        active_stream_runs(context.instance),
        heartbeat,
        now,
        kraken_stream.stale_after_seconds,
        kraken_stream.start_grace_seconds,
        kraken_stream.halt_cooldown_seconds,
        unreadable=unreadable,
    )
    for run_id in decision.terminate:
        outcome = cancel_stream_run(context.instance, run_id, decision.reason)
        context.log.warning(f"kraken stream run {run_id}: {outcome} ({decision.reason})")
    if decision.launch:
        return RunRequest(
            run_key=stream_run_key(latest_stream_run_id(context.instance)),
            tags={**RUN_TAGS, "ingest_platform/launch_reason": decision.reason[:500]},
        )
    if heartbeat is not None and heartbeat.bus is not None and decision.keep is not None:
        # The fan-out's health beside the stream's: a bus that is down never replaces the
        # run (the book does not depend on it), but the sensor's tick says so.
        return SkipReason(f"{decision.reason}; {heartbeat.bus.summary()}")
    return SkipReason(decision.reason)
