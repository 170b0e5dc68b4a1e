"""``ingest-platform status --format prometheus``: the status as Prometheus metrics, for the node
exporter's textfile collector.

The figures are the ones `publish.status` computes (never a second implementation): each
dataset's freshness, missing partitions and last materialization, every check's latest result,
each source's calls against its budget, and the stream's heartbeat and state. A textfile is read
long after it was written, so times are exported as timestamps (``time() - x`` in PromQL gives
an age that keeps growing when the writer stops) and the file says when it was generated.

States (freshness, the stream's connection state) are exported as state sets: one series per
possible state, 1 for the current one, so a rule can say ``{state="stale"} == 1`` and a
dashboard can show the state without parsing text.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TextIO

import pandas as pd
from dagster import DagsterInstance, Definitions
from prometheus_client import CollectorRegistry, generate_latest, write_to_textfile
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from ingest_platform.core.lake import ParquetLake
from ingest_platform.core.metrics import MetricSpec, metric_name
from ingest_platform.publish import state as instance_state
from ingest_platform.publish.status import Status, collect
from ingest_platform.streaming.kraken.io.status import ConnectionState

FRESHNESS_STATES = ("fresh", "warn", "stale", "never", "no_policy", "unknown")
#: The stream's connection states, plus ``unknown``: no heartbeat file, or one that is unreadable.
STREAM_STATES = (*(s.value for s in ConnectionState), "unknown")


def _spec(name: str, help: str, *labels: str) -> MetricSpec:
    return MetricSpec(name, "gauge", help, labels)


GENERATED = _spec(
    metric_name("status", "generated_timestamp_seconds"), "When this status was computed."
)
PROBLEMS = _spec(
    metric_name("status", "problems"),
    "Problems that make `ingest-platform status` exit 1 (failing ERROR checks, stale datasets).",
)
LAST_MATERIALIZATION = _spec(
    metric_name("dataset", "last_materialization_timestamp_seconds"),
    "The dataset's last materialization.",
    "dataset",
)
LATEST_PARTITION = _spec(
    metric_name("dataset", "latest_partition_timestamp_seconds"),
    "Start of the newest partition in the lake.",
    "dataset",
)
MISSING_PARTITIONS = _spec(
    metric_name("dataset", "missing_partitions"),
    "Partitions missing among the last 20 closed daily (3 monthly) partitions.",
    "dataset",
)
FRESHNESS = _spec(
    metric_name("dataset", "freshness"),
    "Freshness by the dataset's freshness policy (state set: 1 for the current state).",
    "dataset",
    "state",
)
CHECK_PASSED = _spec(
    metric_name("check", "passed"),
    "The check's latest evaluation passed (1) or failed (0).",
    "asset",
    "check",
    "severity",
)
CHECK_EVALUATED = _spec(
    metric_name("check", "evaluation_timestamp_seconds"),
    "When the check was last evaluated.",
    "asset",
    "check",
)
SOURCE_CALLS = _spec(
    metric_name("source", "calls_today"), "Calls charged to the source today (UTC).", "source"
)
SOURCE_LIMIT = _spec(
    metric_name("source", "call_limit"), "The source's daily call budget.", "source"
)
SOURCE_REMAINING = _spec(
    metric_name("source", "calls_remaining"), "Calls left in today's budget.", "source"
)
SOURCE_EXHAUSTED = _spec(
    metric_name("source", "budget_exhausted"), "Today's budget is spent (1) or not (0).", "source"
)
HEARTBEAT = _spec(
    metric_name("stream", "heartbeat_timestamp_seconds"),
    "When the Kraken stream last rewrote its heartbeat file.",
)
HEARTBEAT_AGE = _spec(
    metric_name("stream", "heartbeat_age_seconds"),
    "Age of the heartbeat file when this status was computed.",
)
STREAM_STATE = _spec(
    metric_name("stream", "state"),
    "The stream's state from its heartbeat file (state set; unknown: no readable file).",
    "state",
)
STREAM_RUN_ACTIVE = _spec(
    metric_name("stream", "run_active"), "A kraken_stream_job run is queued or running."
)
AUTOMATION_RUNNING = _spec(
    metric_name("automation", "running"),
    "The schedule or sensor is running (1) or stopped (0).",
    "name",
    "kind",
)

STATUS_METRICS: tuple[MetricSpec, ...] = (
    GENERATED,
    PROBLEMS,
    LAST_MATERIALIZATION,
    LATEST_PARTITION,
    MISSING_PARTITIONS,
    FRESHNESS,
    CHECK_PASSED,
    CHECK_EVALUATED,
    SOURCE_CALLS,
    SOURCE_LIMIT,
    SOURCE_REMAINING,
    SOURCE_EXHAUSTED,
    HEARTBEAT,
    HEARTBEAT_AGE,
    STREAM_STATE,
    STREAM_RUN_ACTIVE,
    AUTOMATION_RUNNING,
)


def _family(spec: MetricSpec) -> GaugeMetricFamily:
    return GaugeMetricFamily(spec.name, spec.help, labels=spec.labels)


def _timestamp(text: str | None) -> float | None:
    return pd.Timestamp(text).timestamp() if text else None


def _partition_start(key: str | None) -> float | None:
    """A partition key's start (the lake's keys are dates, ``YYYY-MM-DD``), UTC."""
    if not key:
        return None
    try:
        return dt.datetime.fromisoformat(key).replace(tzinfo=dt.UTC).timestamp()
    except ValueError:
        return None


def _state_set(family: GaugeMetricFamily, labels: list[str], states: Iterable[str], now: str):
    for candidate in states:
        family.add_metric([*labels, candidate], 1.0 if candidate == now else 0.0)


class StatusCollector(Collector):
    """One status snapshot as metric families (a custom collector: the values are computed
    once, by `publish.status.collect`, not incremented)."""

    def __init__(self, status: Status, checks: Sequence[instance_state.CheckResult]) -> None:
        self.status = status
        self.checks = checks

    def collect(self) -> Iterator[Metric]:
        status = self.status
        now = pd.Timestamp(status.now).timestamp()
        generated = _family(GENERATED)
        generated.add_metric([], now)
        problems = _family(PROBLEMS)
        problems.add_metric([], float(len(status.problems)))
        yield from (generated, problems)
        yield from self._datasets()
        yield from self._checks()
        yield from self._budgets()
        yield from self._stream(now)
        running = _family(AUTOMATION_RUNNING)
        for row in status.automation:
            running.add_metric([row.name, row.kind], 1.0 if row.state == "running" else 0.0)
        yield running

    def _datasets(self) -> Iterator[Metric]:
        last, latest, missing, fresh = (
            _family(s)
            for s in (LAST_MATERIALIZATION, LATEST_PARTITION, MISSING_PARTITIONS, FRESHNESS)
        )
        for d in self.status.datasets:
            stamp = _timestamp(d.last_materialized)
            if stamp is not None:
                last.add_metric([d.name], stamp)
            start = _partition_start(d.latest_partition)
            if start is not None:
                latest.add_metric([d.name], start)
                missing.add_metric([d.name], float(len(d.missing)))
            state = d.fresh.replace(" ", "_")
            _state_set(
                fresh, [d.name], FRESHNESS_STATES, state if state in FRESHNESS_STATES else "unknown"
            )
        yield from (last, latest, missing, fresh)

    def _checks(self) -> Iterator[Metric]:
        passed, evaluated = _family(CHECK_PASSED), _family(CHECK_EVALUATED)
        for c in self.checks:
            if c.passed is None:
                continue  # planned or running: no result to report yet
            passed.add_metric([c.asset, c.check, c.severity or ""], 1.0 if c.passed else 0.0)
            evaluated.add_metric([c.asset, c.check], c.timestamp)
        yield from (passed, evaluated)

    def _budgets(self) -> Iterator[Metric]:
        calls, limit, remaining, exhausted = (
            _family(s) for s in (SOURCE_CALLS, SOURCE_LIMIT, SOURCE_REMAINING, SOURCE_EXHAUSTED)
        )
        for source, budget in self.status.budgets.items():
            calls.add_metric([source], float(budget["calls"]))
            exhausted.add_metric([source], 1.0 if budget["exhausted"] else 0.0)
            if budget["limit"] is not None:  # no limit: no limit series (not +Inf, not 0)
                limit.add_metric([source], float(budget["limit"]))
                remaining.add_metric([source], float(budget["remaining"]))
        yield from (calls, limit, remaining, exhausted)

    def _stream(self, now: float) -> Iterator[Metric]:
        stream = self.status.stream
        beat, age, state, active = (
            _family(s) for s in (HEARTBEAT, HEARTBEAT_AGE, STREAM_STATE, STREAM_RUN_ACTIVE)
        )
        if stream.get("heartbeat_age_seconds") is not None:
            age.add_metric([], float(stream["heartbeat_age_seconds"]))
            beat.add_metric([], now - float(stream["heartbeat_age_seconds"]))
        current = stream.get("state") if stream.get("state") in STREAM_STATES else "unknown"
        _state_set(state, [], STREAM_STATES, str(current))
        active.add_metric([], 1.0 if stream.get("run") else 0.0)
        yield from (beat, age, state, active)


def status_registry(
    status: Status, checks: Sequence[instance_state.CheckResult]
) -> CollectorRegistry:
    """A registry holding one status snapshot."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(StatusCollector(status, checks))
    return registry


def main(
    defs: Definitions,
    instance: DagsterInstance,
    lake: ParquetLake,
    out: TextIO,
    output: Path | None = None,
) -> int:
    """Print the status in the Prometheus text format, or write it to ``output`` atomically
    (prometheus-client's `write_to_textfile`: a temporary file renamed over the target, so the
    node exporter never reads half a file).

    Exits 0 whenever the metrics were produced, problems included: a cron line
    ``... --output x.prom`` must keep refreshing the file while something is failing, and the
    problems are in the metrics (``ingest_platform_status_problems``).
    """
    status = collect(defs, instance, lake)
    check_keys = defs.resolve_asset_graph().asset_check_keys
    registry = status_registry(status, instance_state.latest_checks(instance, check_keys))
    if output is not None:
        write_to_textfile(str(output), registry)
        print(f"wrote {output}", file=out)
    else:
        out.write(generate_latest(registry).decode())
    return 0
