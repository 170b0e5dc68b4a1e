"""Every schedule and sensor of the real code location, evaluated at the moments that matter.

`dagster definitions validate` loads the code location but never runs a schedule or a sensor,
so a tick function that raises (as `market_bars_daily` once did on every tick) passes it. Here
the real `defs` are loaded and each tick is evaluated with `build_schedule_context` /
`build_sensor_context` at: a weekday after the close, a Saturday, the day after a holiday
(2024-07-05), a month end, and the day after the ad-hoc closure of 2025-01-09. Each test
asserts which partition the tick targets, or that it skips and why.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dagster import (
    DagsterInstance,
    RunRequest,
    ScheduleDefinition,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from ingest_platform.definitions import build_definitions

NEW_YORK = ZoneInfo("America/New_York")
UTC = dt.UTC


def ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NEW_YORK)


@pytest.fixture(scope="module")
def defs(tmp_path_factory):
    """The real code location, with its data folder somewhere empty."""
    mp = pytest.MonkeyPatch()
    mp.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path_factory.mktemp("defs-data")))
    try:
        yield build_definitions()
    finally:
        mp.undo()


def needed(definition, defs) -> dict:
    """The code location's resources that a schedule or sensor asks for (only those: the
    others, such as API keys, need not be configured to evaluate a tick)."""
    return {k: defs.resources[k] for k in definition.required_resource_keys}


def evaluate(schedule: ScheduleDefinition, when: dt.datetime, defs, instance):
    """One tick of `schedule` at `when` (its cron time), as the daemon would run it."""
    context = build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        resources=needed(schedule, defs),
        repository_def=defs.get_repository_def(),
    )
    result = schedule.evaluate_tick(context)
    assert result.skip_message or result.run_requests is not None, result
    return result


#: schedule -> [(tick time, expected partition key, or None for a skip)]
SCHEDULE_MOMENTS: dict[str, list[tuple[dt.datetime, str | None]]] = {
    "market_bars_daily": [
        # Tuesday 20:45 New York, after the NYSE close and the FX session's end: Tuesday.
        (ny(2024, 7, 9, 20, 45), "2024-07-09"),
        # A Saturday (no tick is scheduled then; evaluated anyway it targets Friday, whose run
        # key makes it a no-op after Friday's tick).
        (ny(2024, 7, 13, 20, 45), "2024-07-12"),
        # Independence Day: the holiday partition is filled (FX trades; equities are
        # recorded closed), never skipped or failed; and the day after it, Friday.
        (ny(2024, 7, 4, 20, 45), "2024-07-04"),
        (ny(2024, 7, 5, 20, 45), "2024-07-05"),
        # Month end: Friday 2024-05-31.
        (ny(2024, 5, 31, 20, 45), "2024-05-31"),
        # The ad-hoc closure of 2025-01-09 (national day of mourning): a closed partition.
        (ny(2025, 1, 9, 20, 45), "2025-01-09"),
        # Mid-session (14:00 on a weekday) the day is not final: the previous one is targeted.
        (ny(2024, 7, 10, 14, 0), "2024-07-09"),
    ],
}


def test_every_schedule_and_sensor_of_the_code_location_is_covered_here(defs):
    assert {s.name for s in defs.schedules} == set(SCHEDULE_MOMENTS)
    assert {s.name for s in defs.sensors} == set(SENSOR_CASES)


@pytest.mark.parametrize(
    ("name", "when", "expected"),
    [(name, when, key) for name, moments in SCHEDULE_MOMENTS.items() for when, key in moments],
    ids=lambda v: v.isoformat() if isinstance(v, dt.datetime) else str(v),
)
def test_each_schedule_targets_the_right_partition(defs, name, when, expected):
    schedule = defs.resolve_schedule_def(name)
    with DagsterInstance.ephemeral() as instance:
        result = evaluate(schedule, when, defs, instance)
    if expected is None:
        assert not result.run_requests and result.skip_message
        return
    assert [r.partition_key for r in result.run_requests] == [expected]
    (request,) = result.run_requests
    assert request.run_key and expected in request.run_key  # one run per partition, ever
    # The cron lands on this moment: the daemon would really tick then.
    assert schedule.execution_timezone and when.tzinfo


def _sensor_launches_the_stream_when_none_runs(result) -> None:
    requests = result.run_requests if isinstance(result, SensorResult) else result
    assert requests and isinstance(requests[0], RunRequest)
    assert requests[0].tags["dagster/max_runtime"] == "0"


#: sensor -> what a first evaluation on an empty instance must do
SENSOR_CASES = {"kraken_stream_sensor": _sensor_launches_the_stream_when_none_runs}


@pytest.mark.parametrize("name", sorted(SENSOR_CASES))
def test_each_sensor_evaluates_against_an_empty_instance(defs, name):
    sensor = defs.resolve_sensor_def(name)
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance,
            resources=needed(sensor, defs),
            repository_def=defs.get_repository_def(),
        )
        result = sensor.evaluate_tick(context)
    if isinstance(result.skip_message, str) and not result.run_requests:
        pytest.fail(f"{name} skipped on an empty instance: {result.skip_message}")
    SENSOR_CASES[name](result.run_requests)
    assert not isinstance(result, SkipReason)
