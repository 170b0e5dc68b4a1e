"""The alert sensors: thin wrappers that read the instance, reconcile incidents and deliver.

- ``run_failure_alerts`` (a `run_failure_sensor`): a failed run, once (its cursor is Dagster's;
  the run's ``ingest_platform/alert`` tag guards against a second alert after a cursor reset);
- ``run_recovery_alerts``: resolves a failed run's incident when a later run of the same job
  and partitions succeeds, and retries deliveries that failed;
- ``blocking_check_alerts``: a blocking check failing at ERROR; resolved when it passes;
- ``kraken_stream_alerts``: a halt, a replaced or failed stream run; resolved when another run
  streams (the stream job's failures are left to this sensor, which knows when they end);
- ``freshness_alerts``: a dataset past its freshness policy; resolved when it is fresh again.

All ship running and send nothing until a channel is configured (`resources`); each tick's skip
reason says what was sent, what failed and what is open. A delivery failure never fails a tick.

(No ``from __future__ import annotations``: Dagster resolves sensor annotations at runtime.)
"""

import time
from collections.abc import Callable

from dagster import (
    DefaultSensorStatus,
    RunFailureSensorContext,
    SensorEvaluationContext,
    SkipReason,
    run_failure_sensor,
    sensor,
)

from ingest_platform.core import settings
from ingest_platform.core.http import Redactor
from ingest_platform.operations.alerts import FIRING, RESOLVED, Alert, Message
from ingest_platform.operations.check_incidents import failing_blocking_checks
from ingest_platform.operations.delivery import Delivery, Notifier
from ingest_platform.operations.freshness_incidents import stale_datasets
from ingest_platform.operations.incidents import MAX_TICKS, Book, flush, reconcile, summary
from ingest_platform.operations.resources import NO_CHANNEL, AlertChannels
from ingest_platform.operations.run_incidents import (
    ALERT_TAG,
    DELIVERY_TAG,
    OPEN,
    PENDING_TAG,
    TRIES_TAG,
    open_incident_runs,
    recovery_of,
    run_assets,
    run_failure_alert,
    run_failure_event,
    step_failures_of,
)
from ingest_platform.operations.run_incidents import (
    RESOLVED as RESOLVED_TAG,
)
from ingest_platform.operations.stream_incidents import discover, read_stream
from ingest_platform.publish.catalogue import DATASETS
from ingest_platform.streaming.kraken.job import JOB_NAME as STREAM_JOB
from ingest_platform.streaming.kraken.resources import KrakenStream

RUNNING = DefaultSensorStatus.RUNNING
#: What one tick's deliveries and tags record, at most.
RECORD_LENGTH = 500


def _record(deliveries: list[Delivery]) -> str:
    text = "; ".join(
        f"{d.channel}: {'delivered' if d.ok else 'FAILED ' + d.error} ({d.attempts} attempt(s))"
        for d in deliveries
    )
    return text[:RECORD_LENGTH]


def _log_failures(context, deliveries: list[Delivery]) -> None:
    for d in deliveries:
        if not d.ok:
            context.log.warning(
                f"alert {d.state} {d.incident} not delivered via {d.channel} after "
                f"{d.attempts} attempt(s): {d.error}"
            )


def _run_alert(context, alerts: AlertChannels, run, redact: Redactor) -> Alert:
    return run_failure_alert(
        run,
        run_assets(context.instance, run),
        step_failures_of(context.instance, run.run_id),
        run_failure_event(context.instance, run.run_id),
        alerts.run_link,
    ).redacted(redact)


@run_failure_sensor(
    name="run_failure_alerts",
    default_status=RUNNING,
    minimum_interval_seconds=30,
    description="Alerts (webhook, email) once per failed run, with the first line of the error.",
)
def run_failure_alerts(context: RunFailureSensorContext, alerts: AlertChannels):
    run = context.dagster_run
    if run.job_name == STREAM_JOB:
        return SkipReason(f"run {run.run_id} of {STREAM_JOB}: left to kraken_stream_alerts")
    if ALERT_TAG in run.tags:
        return SkipReason(f"run {run.run_id}: alert already {run.tags[ALERT_TAG]}")
    notifier = alerts.notifier()
    if not notifier.channels:
        return SkipReason(f"{NO_CHANNEL} for the failure of run {run.run_id} ({run.job_name})")
    alert = _run_alert(context, alerts, run, notifier.redact)
    deliveries = notifier.deliver(Message(alert, FIRING, time.time()))
    _log_failures(context, deliveries)
    pending = [d.channel for d in deliveries if not d.ok]
    context.instance.add_run_tags(
        run.run_id,
        {
            ALERT_TAG: OPEN,
            PENDING_TAG: ",".join(pending),
            DELIVERY_TAG: _record(deliveries),
            TRIES_TAG: "1",
        },
    )
    return SkipReason(f"run {run.run_id} ({run.job_name}) failed: {_record(deliveries)}")


@sensor(
    name="run_recovery_alerts",
    default_status=RUNNING,
    minimum_interval_seconds=60,
    description="Resolves failed-run alerts when a later run of the same job and partitions "
    "succeeds; retries alerts that could not be delivered.",
)
def run_recovery_alerts(context: SensorEvaluationContext, alerts: AlertChannels):
    notifier = alerts.notifier()
    if not notifier.channels:
        return SkipReason(NO_CHANNEL)
    done: list[str] = []
    for run in open_incident_runs(context.instance):
        tags: dict[str, str] = {}
        pending = [c for c in run.tags.get(PENDING_TAG, "").split(",") if c]
        tries = int(run.tags.get(TRIES_TAG, "1") or 1)
        deliveries: list[Delivery] = []
        if pending and tries < MAX_TICKS:
            alert = _run_alert(context, alerts, run, notifier.redact)
            deliveries += notifier.deliver(Message(alert, FIRING, time.time()), only=pending)
            pending = [d.channel for d in deliveries if not d.ok]
            tags.update({PENDING_TAG: ",".join(pending), TRIES_TAG: str(tries + 1)})
        elif pending:
            tags[PENDING_TAG] = ""
            tags[DELIVERY_TAG] = f"gave up on {','.join(pending)} after {tries} tick(s)"
        recovery = recovery_of(context.instance, run)
        if recovery is not None:
            alert = _run_alert(context, alerts, run, notifier.redact)
            note = f"run {recovery.run_id} of {recovery.job_name} succeeded"
            deliveries += notifier.deliver(Message(alert, RESOLVED, time.time(), note))
            tags[ALERT_TAG] = RESOLVED_TAG
        if deliveries:
            tags.setdefault(DELIVERY_TAG, _record(deliveries))
            done.append(f"run {run.run_id}: {_record(deliveries)}")
        _log_failures(context, deliveries)
        if tags:
            context.instance.add_run_tags(run.run_id, tags)
    return SkipReason("; ".join(done) or "no failed-run incident changed")


Compute = Callable[[Book, float, Redactor], list[Message]]


def _tick(context: SensorEvaluationContext, notifier: Notifier, compute: Compute) -> SkipReason:
    """Reconcile the incidents in the cursor with now, deliver, store the cursor."""
    if not notifier.channels:
        would = compute(Book(), time.time(), notifier.redact)
        keys = sorted({m.alert.key for m in would if m.state == FIRING})
        return SkipReason(f"{NO_CHANNEL}; {len(keys)} incident(s) now: {', '.join(keys)[:300]}")
    book = Book.from_cursor(context.cursor)
    messages = compute(book, time.time(), notifier.redact)
    deliveries = flush(book, notifier, messages)
    _log_failures(context, deliveries)
    context.update_cursor(book.to_cursor())
    return SkipReason(summary(deliveries, book))


def _redacted(alerts: dict[str, Alert], redact: Redactor) -> dict[str, Alert]:
    return {k: a.redacted(redact) for k, a in alerts.items()}


@sensor(
    name="blocking_check_alerts",
    default_status=RUNNING,
    minimum_interval_seconds=60,
    description="Alerts when a blocking check fails at ERROR, and when it passes again.",
)
def blocking_check_alerts(context: SensorEvaluationContext, alerts: AlertChannels):
    if context.repository_def is None:
        raise ValueError("blocking_check_alerts needs its repository to know the check keys")
    check_keys = context.repository_def.asset_graph.asset_check_keys

    def compute(book: Book, now: float, redact: Redactor) -> list[Message]:
        failing, unknown = failing_blocking_checks(context.instance, check_keys, alerts.run_link)
        return reconcile(book, _redacted(failing, redact), now, unknown=unknown)

    return _tick(context, alerts.notifier(), compute)


@sensor(
    name="freshness_alerts",
    default_status=RUNNING,
    minimum_interval_seconds=300,
    description="Alerts when a dataset is past its freshness policy, and when it is fresh again.",
)
def freshness_alerts(context: SensorEvaluationContext, alerts: AlertChannels):
    def compute(book: Book, now: float, redact: Redactor) -> list[Message]:
        # Judged at the platform's clock, as `ingest-platform status` judges it (pinned by
        # $INGEST_PLATFORM_NOW in simulations against the sandbox).
        judged_at = settings.now().timestamp()
        stale = stale_datasets(context.instance, DATASETS, judged_at, alerts.run_link)
        return reconcile(book, _redacted(stale, redact), now)

    return _tick(context, alerts.notifier(), compute)


@sensor(
    name="kraken_stream_alerts",
    default_status=RUNNING,
    minimum_interval_seconds=30,
    description="Alerts when the Kraken stream halts or a stream run fails or is replaced; "
    "resolved when another run is streaming.",
)
def kraken_stream_alerts(
    context: SensorEvaluationContext, alerts: AlertChannels, kraken_stream: KrakenStream
):
    def compute(book: Book, now: float, redact: Redactor) -> list[Message]:
        view = read_stream(kraken_stream.heartbeat_path())
        found = _redacted(discover(context.instance, view, book, now, alerts.run_link), redact)
        messages = reconcile(book, {**book.open, **found}, now)
        healthy = view.healthy_run(now, kraken_stream.stale_after_seconds)
        if healthy is None:
            return messages  # nothing streams (or the file is unreadable): nothing resolves
        ended = {k for k, a in book.open.items() if a.where.get("run") != healthy}
        still = {k: a for k, a in book.open.items() if k not in ended}
        notes = {k: f"run {healthy} is streaming" for k in ended}
        return messages + reconcile(book, still, now, notes=notes)

    return _tick(context, alerts.notifier(), compute)


ALERT_SENSORS = (
    run_failure_alerts,
    run_recovery_alerts,
    blocking_check_alerts,
    freshness_alerts,
    kraken_stream_alerts,
)
