"""The whole life cycle on the production instance: PostgreSQL, the daemon and the webserver.

One module-scoped platform, as an operator runs it: a fresh database on 127.0.0.1:5432 (random
name, dropped at the end), a DAGSTER_HOME holding deploy/dagster-postgres.yaml (monitoring made
quick), the sandbox standing in for every provider, and ``dagster-webserver`` and
``dagster-daemon run`` as subprocesses, each in its own process group, logging to files that a
failure prints. Everything is driven through public interfaces: the webserver's GraphQL API
(what the UI sends) and `DagsterInstance` reads of run state.

Covered, for real: a schedule tick that launches and completes a partition run into the lake; a
range backfill through GraphQL whose asset checks are evaluated; the Kraken stream sensor
launching the stream; a run worker killed with SIGKILL, marked failed and replaced by the
sensor (with the default run launcher the code server that spawned the worker notices its
death and fails the run; run monitoring, polling every 2 s here, is what notices a dead pod
under K8sRunLauncher, whose worker-health check the default launcher does not implement); the
stream cancelled through GraphQL, its log flushed and its socket closed.

It fails, never skips, when PostgreSQL is unreachable: CI starts the server, and a skipped
production-instance test would prove nothing.

The universe is cut to a handful of symbols (a reference folder copied from data/reference):
the life cycle, not the throughput, is under test, and two shared cores must finish it in a
few minutes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import yaml
from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    materialize,
)
from dagster._core.scheduler.instigation import (
    InstigatorType,
    ScheduleInstigatorData,
)

from ingest_platform.core.lake import ParquetLake
from ingest_platform.reference.assets import ReferenceFiles, index_membership, instruments
from ingest_platform.sandbox import Sandbox
from ingest_platform.streaming.kraken.heartbeat import load_heartbeat
from ingest_platform.streaming.kraken.job import JOB_NAME as STREAM_JOB
from ingest_platform.streaming.kraken.log.segments import list_segments, read_kind, temporary_files
from ingest_platform_tests.postgres import PG_HOST, PG_PORT, PG_USER, throwaway_database

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

CHECKOUT = Path(__file__).resolve().parents[2]
LOCATION, REPOSITORY = "ingest_platform", "__repository__"
MARKET_SCHEDULE = "market_bars_daily"
STREAM_SENSOR = "kraken_stream_sensor"
#: A small universe: equities, one ETF, one FX pair (their sources differ).
EQUITIES, ETFS, FX = 6, 2, 1
BACKFILL_ASSET = "yahoo_daily_bars"
BACKFILL_RANGE = ("2026-11-16", "2026-11-18")
FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


# -- processes and the database ---------------------------------------------------------------


@dataclass
class Service:
    """A subprocess in its own process group, logging to a file."""

    name: str
    proc: subprocess.Popen[bytes]
    log: Path

    def tail(self, chars: int = 4000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return f"--- {self.name} ({self.log}) ---\n{text[-chars:]}"

    def stop(self) -> None:
        """SIGTERM the whole group (the code servers and run workers it spawned), then KILL."""
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(20)
        _signal_group(self.proc.pid, signal.SIGKILL)  # stragglers left in the group


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    """A fresh database for this module, dropped (connections first) at the end."""
    with throwaway_database("ingest_platform_lifecycle") as name:
        yield name


def _small_reference(target: Path) -> Path:
    """data/reference with the equity, ETF and FX lists cut to their first few rows, and no
    S&P 500 history (a cut list cannot reconcile with it): header-only changes files."""
    shutil.copytree(CHECKOUT / "data" / "reference", target)
    for name, keep in (
        ("sp500_constituents.csv", EQUITIES),
        ("etfs.csv", ETFS),
        ("fx_pairs.csv", FX),
    ):
        lines = (target / name).read_text().splitlines(keepends=True)
        (target / name).write_text("".join(lines[: keep + 1]))
    for name in ("sp500_membership_changes.csv", "symbol_changes.csv"):
        (target / name).write_text((target / name).read_text().splitlines(keepends=True)[0])
    return target


def _instance_config(home: Path) -> None:
    """deploy/dagster-postgres.yaml, with run monitoring polling every 2 s instead of 30 s."""
    config = yaml.safe_load((CHECKOUT / "deploy" / "dagster-postgres.yaml").read_text())
    config["run_monitoring"].update(poll_interval_seconds=2, start_timeout_seconds=120)
    (home / "dagster.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


# -- GraphQL --------------------------------------------------------------------------------


def graphql(url: str, query: str, **variables: Any) -> dict[str, Any]:
    answer = requests.post(
        f"{url}/graphql", json={"query": query, "variables": variables}, timeout=60
    )
    answer.raise_for_status()
    body = answer.json()
    assert "errors" not in body, body["errors"]
    return body["data"]


LOCATION_STATUS = """
query { workspaceOrError { ... on Workspace { locationEntries {
  name loadStatus locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""
START_SCHEDULE = """
mutation($selector: ScheduleSelector!) { startSchedule(scheduleSelector: $selector) {
  __typename ... on ScheduleStateResult { scheduleState { id selectorId status } }
  ... on PythonError { message } ... on UnauthorizedError { message }
} }
"""
STOP_SCHEDULE = """
mutation($id: String!, $selectorId: String!) {
  stopRunningSchedule(id: $id, scheduleSelectorId: $selectorId) {
    __typename ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message } ... on UnauthorizedError { message }
} }
"""
START_SENSOR = """
mutation($selector: SensorSelector!) { startSensor(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { status } } ... on PythonError { message }
} }
"""
STOP_SENSOR = """
mutation($id: String!, $selectorId: String!) {
  stopSensor(id: $id, jobSelectorId: $selectorId) {
    __typename ... on StopSensorMutationResult { instigationState { status } }
    ... on PythonError { message }
} }
"""
SENSOR_STATE = """
query($selector: SensorSelector!) { sensorOrError(sensorSelector: $selector) {
  __typename ... on Sensor { sensorState { id selectorId status } }
} }
"""
LAUNCH_BACKFILL = """
mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId }
  ... on PythonError { message } ... on InvalidStepError { invalidStepKey }
  ... on InvalidOutputError { stepKey } ... on UnauthorizedError { message }
  ... on PartitionSetNotFoundError { message } ... on RunConflict { message }
  ... on ConflictingExecutionParamsError { message } ... on InvalidSubsetError { message }
} }
"""
BACKFILL_STATUS = """
query($id: String!) { partitionBackfillOrError(backfillId: $id) {
  __typename ... on PartitionBackfill { status runs { runId status } }
  ... on PythonError { message }
} }
"""
TERMINATE_RUN = """
mutation($runId: String!) { terminateRun(runId: $runId) {
  __typename ... on TerminateRunSuccess { run { runId } }
  ... on TerminateRunFailure { message } ... on PythonError { message }
  ... on RunNotFoundError { message } ... on UnauthorizedError { message }
} }
"""


# -- the platform -----------------------------------------------------------------------------


@dataclass
class Platform:
    url: str
    home: Path
    data: Path
    sandbox: Sandbox
    services: list[Service] = field(default_factory=list)

    def instance(self) -> DagsterInstance:
        return DagsterInstance.from_config(str(self.home))

    def logs(self) -> str:
        return "\n".join(service.tail() for service in self.services)

    def wait(self, what: str, probe: Callable[[], Any], timeout: float, every: float = 1.0) -> Any:
        """Poll ``probe`` until it returns something truthy; fail with the services' logs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for service in self.services:
                assert service.proc.poll() is None, f"{service.name} exited\n{self.logs()}"
            value = probe()
            if value:
                return value
            time.sleep(every)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{self.logs()}")

    def start(self, name: str, args: list[str], env: dict[str, str]) -> Service:
        log = self.home / f"{name}.log"
        proc = subprocess.Popen(
            args,
            cwd=self.home,
            env=env,
            stdout=open(log, "ab"),  # noqa: SIM115 - the child owns it; closed when it exits
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: torn down as one
        )
        service = Service(name, proc, log)
        self.services.append(service)
        return service

    def stream_runs(self, instance: DagsterInstance) -> list:
        return list(instance.get_runs(filters=RunsFilter(job_name=STREAM_JOB)))


def _last_tick_before(now: dt.datetime) -> dt.datetime:
    """The newest 20:45 New York weekday (the market schedule's cron) at or before ``now``."""
    new_york = now.astimezone(ZoneInfo("America/New_York"))
    candidate = new_york.replace(hour=20, minute=45, second=0, microsecond=0)
    while candidate > new_york or candidate.weekday() >= 5:
        candidate -= dt.timedelta(days=1)
    return candidate


@pytest.fixture(scope="module")
def platform(database: str, tmp_path_factory) -> Iterator[Platform]:
    home = tmp_path_factory.mktemp("pg-lifecycle")
    data = home / "data"
    reference = _small_reference(home / "reference")
    _instance_config(home)
    sandbox = Sandbox(seed=7, kraken_rate=5.0)
    sandbox.start()
    env_for_platform = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_HOST": PG_HOST,
        "DAGSTER_PG_PORT": str(PG_PORT),
        "DAGSTER_PG_DB": database,
        "DAGSTER_PG_USER": PG_USER,
        "DAGSTER_PG_PASSWORD": "",
        "DAGSTER_EVENT_BATCH_SIZE": "500",
        "INGEST_PLATFORM_DATA_DIR": str(data),
        "INGEST_PLATFORM_REFERENCE_DIR": str(reference),
        # Sandbox keys: the sandbox accepts any; real keys never reach a test.
        "ALPHA_VANTAGE_API_KEY": "sandbox-av",
        "POLYGON_API_KEY": "sandbox-polygon",
        "FRED_API_KEY": "sandbox-fred",
        **sandbox.env(),
    }
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER", "INGEST_PLATFORM"))},
        **env_for_platform,
    }
    saved = {k: os.environ.get(k) for k in env_for_platform}
    os.environ.update(env_for_platform)  # this process reads the same instance and lake
    port = _free_port()
    platform = Platform(url=f"http://127.0.0.1:{port}", home=home, data=data, sandbox=sandbox)
    bin_dir = Path(sys.executable).parent
    workspace = str(CHECKOUT / "workspace.yaml")
    try:
        # The universe the market assets read (the reference assets are not under test here).
        with platform.instance() as instance:
            result = materialize(
                [instruments, index_membership],
                resources={
                    "lake": ParquetLake(root=str(data / "lake")),
                    "reference_files": ReferenceFiles(directory=str(reference)),
                },
                instance=instance,
            )
            assert result.success

        platform.start(
            "webserver",
            [
                str(bin_dir / "dagster-webserver"),
                "-w",
                workspace,
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            env,
        )
        platform.wait(
            "the webserver to load the code location",
            lambda: _location_loaded(platform.url),
            timeout=120,
        )
        _start_market_schedule_with_one_tick_due(platform)
        platform.start("daemon", [str(bin_dir / "dagster-daemon"), "run", "-w", workspace], env)
        # The stream sensor is switched on now, not in its own test: the stream then starts
        # while the batch runs work, and the suite waits once instead of twice.
        started = graphql(platform.url, START_SENSOR, selector=_sensor_selector())["startSensor"]
        assert started["__typename"] == "Sensor", started
        yield platform
    finally:
        for service in reversed(platform.services):
            service.stop()
        sandbox.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _location_loaded(url: str) -> bool:
    try:
        data = graphql(url, LOCATION_STATUS)
    except requests.RequestException:
        return False
    entries = data["workspaceOrError"]["locationEntries"]
    for entry in entries:
        error = entry["locationOrLoadError"]
        assert error is None or error["__typename"] != "PythonError", error
    return bool(entries) and all(e["loadStatus"] == "LOADED" for e in entries)


def _start_market_schedule_with_one_tick_due(platform: Platform) -> None:
    """Switch the schedule off and on through GraphQL (the UI's toggle), then date its start
    back to just before its newest cron time, as if an operator had switched it on before that
    evening: the daemon's first pass then finds exactly that tick due and launches it.

    (It runs by default, and a default-running schedule has no stored state until the daemon
    or a toggle writes one; off-then-on stores a RUNNING state this test can date back.)"""
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": REPOSITORY,
        "scheduleName": MARKET_SCHEDULE,
    }
    started = graphql(platform.url, START_SCHEDULE, selector=selector)["startSchedule"]
    assert started["__typename"] == "ScheduleStateResult", started
    state = started["scheduleState"]
    stopped = graphql(platform.url, STOP_SCHEDULE, id=state["id"], selectorId=state["selectorId"])
    assert stopped["stopRunningSchedule"]["scheduleState"]["status"] == "STOPPED", stopped
    started = graphql(platform.url, START_SCHEDULE, selector=selector)["startSchedule"]
    assert started["scheduleState"]["status"] == "RUNNING", started
    tick = _last_tick_before(dt.datetime.now(dt.UTC))
    with platform.instance() as instance:
        (state,) = [
            s
            for s in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
            if s.instigator_name == MARKET_SCHEDULE
        ]
        instance.update_instigator_state(
            state.with_data(
                ScheduleInstigatorData(
                    cron_schedule=state.instigator_data.cron_schedule,
                    start_timestamp=tick.timestamp() - 60,
                )
            )
        )


# -- the tests ------------------------------------------------------------------------------


def _check_evaluations(instance: DagsterInstance, run_id: str) -> dict[str, bool]:
    """Asset check name -> passed, for every check evaluated in the run."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    evaluations = {}
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        evaluations[evaluation.check_name] = evaluation.passed
    return evaluations


def test_a_range_backfill_through_graphql_completes_with_its_checks(platform):
    start, end = BACKFILL_RANGE
    launched = graphql(
        platform.url,
        LAUNCH_BACKFILL,
        params={
            "partitionsByAssets": [
                {
                    "assetKey": {"path": [BACKFILL_ASSET]},
                    "partitions": {"range": {"start": start, "end": end}},
                }
            ],
            "title": "lifecycle test",
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    backfill_id = launched["backfillId"]

    def finished():
        status = graphql(platform.url, BACKFILL_STATUS, id=backfill_id)
        backfill = status["partitionBackfillOrError"]
        assert backfill["__typename"] == "PartitionBackfill", backfill
        return backfill if backfill["status"] not in ("REQUESTED", "CANCELING") else None

    backfill = platform.wait("the backfill to finish", finished, timeout=180, every=2)
    assert backfill["status"] == "COMPLETED_SUCCESS", backfill
    # single_run backfill policy: the whole range in one run.
    (run,) = backfill["runs"]
    assert run["status"] == "SUCCESS"

    with platform.instance() as instance:
        dagster_run = instance.get_run_by_id(run["runId"])
        assert dagster_run.tags["dagster/backfill"] == backfill_id
        assert dagster_run.tags["dagster/asset_partition_range_start"] == start
        assert dagster_run.tags["dagster/asset_partition_range_end"] == end
        checks = _check_evaluations(instance, run["runId"])
    assert {"source_duplicates", "fetch_failure_rate", "bar_coverage", "bar_anomalies"} <= set(
        checks
    ), checks
    assert all(checks.values()), checks
    lake = ParquetLake(root=str(platform.data / "lake"))
    assert {start, "2026-11-17", end} <= set(lake.partition_keys(BACKFILL_ASSET))


def test_a_schedule_tick_launches_a_partition_run_that_fills_the_lake(platform):
    def scheduled_run():
        with platform.instance() as instance:
            runs = instance.get_runs(
                filters=RunsFilter(tags={"dagster/schedule_name": MARKET_SCHEDULE})
            )
        return runs[0] if runs and runs[0].status in FINISHED else None

    run = platform.wait("the scheduled run to finish", scheduled_run, timeout=240, every=2)
    assert run.status == DagsterRunStatus.SUCCESS, platform.logs()
    partition = run.tags["dagster/partition"]
    assert run.tags["dagster/schedule_name"] == MARKET_SCHEDULE
    # The tick chose the newest settled weekday at its scheduled time (not "today").
    tick = _last_tick_before(dt.datetime.now(dt.UTC))
    assert partition <= tick.date().isoformat()
    with platform.instance() as instance:
        ticks = [
            t
            for state in instance.all_instigator_state(instigator_type=InstigatorType.SCHEDULE)
            if state.instigator_name == MARKET_SCHEDULE
            for t in instance.get_ticks(state.instigator_origin_id, state.selector_id)
        ]
        assert any(run.run_id in t.run_ids for t in ticks), ticks
        materialized = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=AssetKey("market_bars"), asset_partitions=[partition]),
            limit=1,
        ).records
        assert materialized and materialized[0].run_id == run.run_id
    lake = ParquetLake(root=str(platform.data / "lake"))
    assert partition in lake.partition_keys("market_bars")
    assert len(lake.read("market_bars", partition_keys=[partition])) > 0


# -- the stream --------------------------------------------------------------------------------


def _sensor_selector() -> dict[str, str]:
    return {
        "repositoryLocationName": LOCATION,
        "repositoryName": REPOSITORY,
        "sensorName": STREAM_SENSOR,
    }


def _started_stream_run(platform: Platform, exclude: frozenset[str] = frozenset()):
    """The stream run that is STARTED and has written its heartbeat, if any."""
    with platform.instance() as instance:
        runs = [
            r
            for r in platform.stream_runs(instance)
            if r.status == DagsterRunStatus.STARTED and r.run_id not in exclude
        ]
    if not runs:
        return None
    beat = load_heartbeat(platform.data / "stream" / "kraken")
    return runs[0] if beat is not None and beat.run_id == runs[0].run_id else None


def _worker_pid(instance: DagsterInstance, run_id: str) -> int:
    """The run worker's pid, from the engine event Dagster records when it starts one."""
    for record in instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ENGINE_EVENT
    ).records:
        match = re.search(r"Started process for run \(pid: (\d+)\)", record.event_log_entry.message)
        if match:
            return int(match.group(1))
    raise AssertionError(f"run {run_id} recorded no worker pid")


@pytest.fixture(scope="module")
def stream_run(platform):
    """The run the stream sensor (switched on through GraphQL by `platform`) launched, streaming."""
    run = platform.wait(
        "the stream sensor's run to stream", lambda: _started_stream_run(platform), timeout=120
    )
    return run


def test_the_stream_sensor_launches_the_stream_run(platform, stream_run):
    assert stream_run.tags["dagster/sensor_name"] == STREAM_SENSOR
    assert stream_run.tags["dagster/max_retries"] == "0"
    assert stream_run.tags["dagster/max_runtime"] == "0"
    platform.wait(
        "the stream to receive book data",
        lambda: platform.sandbox.counters.get("kraken.sent.book", "BTC/USD") > 0,
        timeout=30,
    )


@pytest.fixture(scope="module")
def replacement_run(platform, stream_run):
    """SIGKILL the stream's run worker, then wait for the sensor's replacement to stream."""
    with platform.instance() as instance:
        pid = _worker_pid(instance, stream_run.run_id)
    os.kill(pid, signal.SIGKILL)
    return platform.wait(
        "a replacement stream run",
        lambda: _started_stream_run(platform, exclude=frozenset({stream_run.run_id})),
        timeout=120,
    )


def test_a_killed_run_worker_is_marked_failed_and_the_sensor_replaces_it(
    platform, stream_run, replacement_run
):
    with platform.instance() as instance:
        killed = instance.get_run_by_id(stream_run.run_id)
        assert killed.status == DagsterRunStatus.FAILURE
        messages = [
            r.event_log_entry.message
            for r in instance.get_records_for_run(stream_run.run_id).records
        ]
        # Whoever noticed it (the code server for a local worker, run monitoring for a pod),
        # the death is recorded against the run, with the signal.
        assert any("signal 9" in m or "SIGKILL" in m or "-9" in m for m in messages), messages
        # Not retried by run retries (dagster/max_retries=0): exactly one new run, the sensor's.
        newer = [r for r in platform.stream_runs(instance) if r.run_id != stream_run.run_id]
    assert [r.run_id for r in newer] == [replacement_run.run_id]
    assert replacement_run.tags["dagster/sensor_name"] == STREAM_SENSOR
    assert stream_run.run_id in replacement_run.tags.get("dagster/run_key", "")


def test_cancelling_the_stream_flushes_its_log_and_closes_its_socket(platform, replacement_run):
    # Switch the sensor off first (as an operator would), or it relaunches the stream.
    state = graphql(platform.url, SENSOR_STATE, selector=_sensor_selector())["sensorOrError"]
    stopped = graphql(
        platform.url,
        STOP_SENSOR,
        id=state["sensorState"]["id"],
        selectorId=state["sensorState"]["selectorId"],
    )["stopSensor"]
    assert stopped["instigationState"]["status"] == "STOPPED", stopped

    terminated = graphql(platform.url, TERMINATE_RUN, runId=replacement_run.run_id)["terminateRun"]
    assert terminated["__typename"] == "TerminateRunSuccess", terminated

    def cancelled():
        with platform.instance() as instance:
            run = instance.get_run_by_id(replacement_run.run_id)
        return run if run.status in FINISHED else None

    run = platform.wait("the stream run to be cancelled", cancelled, timeout=90)
    assert run.status == DagsterRunStatus.CANCELED

    root = platform.data / "stream" / "kraken"
    beat = json.loads((root / "heartbeat.json").read_text())
    assert beat["run_id"] == run.run_id and beat["state"] == "stopped", beat
    # The log was flushed on the way out: the session's segments are published and readable,
    # and no half-written temporary file is left behind.
    session_segments = [s for s in list_segments(root, "book") if s.session == beat["session"]]
    assert session_segments, list_segments(root, "book")
    assert read_kind(root, "book").num_rows > 0
    assert temporary_files(root) == []
    # Every connection the streams opened has been closed (the killed worker's by the kernel).
    counters = platform.sandbox.counters
    platform.wait(
        "the sandbox to see every stream connection closed",
        lambda: counters.get("kraken.disconnect") == counters.get("kraken.connect") >= 2,
        timeout=15,
    )
