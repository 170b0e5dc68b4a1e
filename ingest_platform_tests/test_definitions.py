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
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetKey,
    AssetMaterialization,
    AssetSelection,
    DagsterInstance,
    ScheduleDefinition,
    build_schedule_context,
    build_sensor_context,
    evaluate_automation_conditions,
)

from ingest_platform.definitions import build_definitions

NEW_YORK = ZoneInfo("America/New_York")


def ny(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=NEW_YORK)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


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
    """One tick of `schedule` at `when`, as the daemon would run it."""
    context = build_schedule_context(
        instance=instance,
        scheduled_execution_time=when,
        resources=needed(schedule, defs),
        repository_def=defs.get_repository_def(),
    )
    result = schedule.evaluate_tick(context)
    assert result.skip_message or result.run_requests is not None, result
    return result


# Expectations: a partition key; ("range", first, last); "run" (an unpartitioned run); or
# ("skip", a fragment of the reason).
SCHEDULE_MOMENTS: dict[str, list[tuple[dt.datetime, object]]] = {
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
    "economic_indicators_daily": [
        (utc(2024, 7, 9, 7), "2024-07-01"),  # the month in progress
        (utc(2024, 7, 13, 7), "2024-07-01"),  # a Saturday: releases can land any day
        (utc(2024, 7, 5, 7), "2024-07-01"),
        (utc(2024, 5, 31, 7), "2024-05-01"),  # month end: still May
        (utc(2024, 6, 1, 7), "2024-06-01"),  # the 1st: June starts; May is the monthly's
        (utc(2025, 1, 10, 7), "2025-01-01"),
    ],
    "economic_indicators_monthly": [
        # The 2nd: the month just ended, with the two before it re-read for late vintages.
        (utc(2024, 6, 2, 6), ("range", "2024-03-01", "2024-05-01")),
        (utc(2025, 1, 2, 6), ("range", "2024-10-01", "2024-12-01")),
        # Early on, the range starts at the first partition.
        (utc(2023, 2, 2, 6), ("range", "2023-01-01", "2023-01-01")),
    ],
    "economic_release_calendar_weekly": [
        (utc(2024, 7, 8, 5), "run"),
        (utc(2025, 1, 6, 5), "run"),
    ],
    "variable_series_daily": [
        (utc(2024, 7, 9, 7, 30), "2024-07-01"),
        (utc(2024, 7, 1, 7, 30), "2024-06-01"),  # the 1st completes the month just ended
        (utc(2024, 6, 1, 7, 30), "2024-05-01"),  # month end
        (utc(2025, 1, 10, 7, 30), "2025-01-01"),
    ],
    "kraken_book_minute_bars_daily": [
        # No stream log in this data folder (the stream sensor ships stopped): the tick skips
        # and names the day, rather than launching a run that must fail.
        (utc(2026, 11, 22, 0, 15), ("skip", "2026-11-21")),
        (utc(2026, 12, 1, 0, 15), ("skip", "2026-11-30")),  # month end
    ],
    "dataset_metadata_daily": [
        (utc(2024, 7, 9, 8), "run"),
        (utc(2024, 7, 13, 8), "run"),
    ],
    "reference_weekly": [
        (utc(2024, 7, 8, 4), "run"),  # a Monday
        (utc(2025, 1, 6, 4), "run"),  # the first Monday of a year: sessions roll forward
    ],
    "variable_mappings_weekly": [
        (utc(2024, 7, 8, 4, 30), "run"),
    ],
}


def test_every_schedule_and_sensor_of_the_code_location_is_covered_here(defs):
    assert {s.name for s in defs.schedules} == set(SCHEDULE_MOMENTS)
    assert {s.name for s in defs.sensors} == set(SENSOR_TESTS)


@pytest.mark.parametrize(
    ("name", "when", "expected"),
    [(name, when, key) for name, moments in SCHEDULE_MOMENTS.items() for when, key in moments],
    ids=lambda v: v.isoformat() if isinstance(v, dt.datetime) else str(v),
)
def test_each_schedule_targets_the_right_partition(defs, name, when, expected):
    schedule = defs.resolve_schedule_def(name)
    assert schedule.execution_timezone
    with DagsterInstance.ephemeral() as instance:
        result = evaluate(schedule, when, defs, instance)
    if isinstance(expected, tuple) and expected[0] == "skip":
        assert not result.run_requests and expected[1] in (result.skip_message or "")
        return
    (request,) = result.run_requests
    assert request.run_key  # one run per tick, ever: the daemon dedupes on it
    if expected == "run":
        assert request.partition_key is None
        assert "dagster/asset_partition_range_start" not in request.tags
    elif isinstance(expected, tuple):
        _, first, last = expected
        assert request.tags["dagster/asset_partition_range_start"] == first
        assert request.tags["dagster/asset_partition_range_end"] == last
    else:
        assert request.partition_key == expected
        assert (
            expected[:7] in request.run_key
            or expected in request.run_key
            or "daily" in (request.run_key)
        )


def test_the_stream_sensor_launches_the_stream_on_an_empty_instance(defs):
    sensor = defs.resolve_sensor_def("kraken_stream_sensor")
    with DagsterInstance.ephemeral() as instance:
        context = build_sensor_context(
            instance=instance,
            resources=needed(sensor, defs),
            repository_def=defs.get_repository_def(),
        )
        result = sensor.evaluate_tick(context)
    (request,) = result.run_requests
    assert request.tags["dagster/max_runtime"] == "0" and request.tags["dagster/max_retries"] == "0"


def _tick(sensor, instance, defs, cursor=None):
    context = build_sensor_context(
        instance=instance, cursor=cursor, repository_def=defs.get_repository_def()
    )
    return sensor.evaluate_tick(context)


def test_metadata_is_described_again_whenever_a_dataset_is_newer_than_it(defs):
    """However many runs land between two ticks, a dataset materialized after the last
    metadata.json asks for a new one; nothing newer, no run."""
    sensor = defs.resolve_sensor_def("dataset_metadata_after_updates")
    with DagsterInstance.ephemeral() as instance:
        assert "after the newest" in _tick(sensor, instance, defs).skip_message
        instance.report_runless_asset_event(
            AssetMaterialization("market_bars", partition="2024-07-09")
        )
        (request,) = _tick(sensor, instance, defs).run_requests
        assert request.run_key.startswith("dataset_metadata_after:")
        # metadata written, then another dataset lands before the next tick: still asked for
        instance.report_runless_asset_event(AssetMaterialization("dataset_metadata"))
        instance.report_runless_asset_event(
            AssetMaterialization("variable_series", partition="2024-07-01")
        )
        (again,) = _tick(sensor, instance, defs).run_requests
        assert again.run_key != request.run_key
        instance.report_runless_asset_event(AssetMaterialization("dataset_metadata"))
        assert "after the newest" in _tick(sensor, instance, defs).skip_message


def test_variable_series_rebuilds_exactly_the_months_whose_inputs_changed(defs):
    """Market days and stream days map to the UTC months their values become known in; an
    unchanged re-run moves nothing; a registry change touches every month."""
    sensor = defs.resolve_sensor_def("variable_series_after_updates")

    def changed(asset, partition=None, rewritten=True):
        return AssetMaterialization(asset, partition=partition, metadata={"rewritten": rewritten})

    def ranges(result):
        return sorted(
            (
                r.tags["dagster/asset_partition_range_start"],
                r.tags["dagster/asset_partition_range_end"],
            )
            for r in result.run_requests
        )

    with DagsterInstance.ephemeral() as instance:
        first = _tick(sensor, instance, defs)
        assert "no input" in first.skip_message
        for day in ("2024-03-12", "2024-03-13", "2024-05-31"):
            instance.report_runless_asset_event(changed("market_bars", day))
        instance.report_runless_asset_event(changed("market_bars", "2024-08-05", rewritten=False))
        # A New York day ends at 04:00 UTC the next day; its close may be known the day after.
        result = _tick(sensor, instance, defs, first.cursor)
        assert ranges(result) == [("2024-03-01", "2024-03-01"), ("2024-05-01", "2024-06-01")]
        unchanged = _tick(sensor, instance, defs, result.cursor)
        assert unchanged.skip_message and not unchanged.run_requests
        instance.report_runless_asset_event(changed("market_bars", "2024-08-05", rewritten=False))
        quiet = _tick(sensor, instance, defs, unchanged.cursor)
        assert "no content changed" in quiet.skip_message
        instance.report_runless_asset_event(changed("variable_mappings"))
        everything = _tick(sensor, instance, defs, quiet.cursor)
        ((start, end),) = ranges(everything)
        assert start == "2023-01-01" and end >= "2026-11-01"


def test_the_warehouse_automation_sensor_publishes_after_updates_unless_a_check_fails(defs):
    """Automation condition sensors cannot be ticked like user sensors; their conditions are
    evaluated the way the sensor does (`evaluate_automation_conditions`)."""
    sensor = defs.resolve_sensor_def("warehouse_automation")
    graph = defs.resolve_asset_graph()
    targeted = {k.to_user_string() for k in sensor.asset_selection.resolve(graph)}
    assert targeted == {
        k.to_user_string() for k in graph.get_all_asset_keys()
        if k.to_user_string().startswith("warehouse_")
    }  # fmt: skip
    assert sensor.default_status.value == "RUNNING"
    selection = AssetSelection.assets("warehouse_instruments")
    with DagsterInstance.ephemeral() as instance:
        first = evaluate_automation_conditions(defs, instance, asset_selection=selection)
        assert first.total_requested == 0  # nothing upstream ever materialized
        instance.report_runless_asset_event(AssetMaterialization("instruments"))
        second = evaluate_automation_conditions(
            defs, instance, asset_selection=selection, cursor=first.cursor
        )
        assert second.total_requested == 1  # published after the update
        third = evaluate_automation_conditions(
            defs, instance, asset_selection=selection, cursor=second.cursor
        )
        assert third.total_requested == 0  # once per update, not on every tick

    # A market_bars partition is published once its blocking checks passed; after the next
    # update, a failed blocking check holds it back.
    bars = AssetSelection.assets("warehouse_market_bars")

    def checked(instance, passed: dict[str, bool]) -> None:
        for name, ok in passed.items():
            instance.report_runless_asset_event(
                AssetCheckEvaluation(
                    asset_key=AssetKey("market_bars"),
                    check_name=name,
                    passed=ok,
                    severity=AssetCheckSeverity.ERROR,
                    blocking=True,
                )
            )

    update = AssetMaterialization("market_bars", partition="2024-07-09")
    with DagsterInstance.ephemeral() as instance:
        start = evaluate_automation_conditions(defs, instance, asset_selection=bars)
        instance.report_runless_asset_event(update)
        checked(instance, {"bar_anomalies": True, "cross_source_drift": True})
        passed = evaluate_automation_conditions(
            defs, instance, asset_selection=bars, cursor=start.cursor
        )
        assert passed.total_requested == 1
        instance.report_runless_asset_event(update)
        checked(instance, {"bar_anomalies": True, "cross_source_drift": False})
        held = evaluate_automation_conditions(
            defs, instance, asset_selection=bars, cursor=passed.cursor
        )
        assert held.total_requested == 0


def test_the_alert_sensors_evaluate_and_say_that_no_channel_is_configured(defs):
    """The five alert sensors of the code location, ticked on an instance with a failed run:
    with no channel in the environment each sends nothing and says so (their deliveries are
    tested against local receivers in ingest_platform_tests/operations/)."""
    from dagster import job, op

    from ingest_platform.operations.resources import NO_CHANNEL

    @op
    def broken() -> None:
        raise RuntimeError("boom")

    @job
    def broken_job() -> None:
        broken()

    with DagsterInstance.ephemeral() as instance:
        failure = defs.resolve_sensor_def("run_failure_alerts")
        resources = needed(failure, defs)
        first = failure.evaluate_tick(build_sensor_context(instance=instance, resources=resources))
        failed = broken_job.execute_in_process(instance=instance, raise_on_error=False)
        tick = failure.evaluate_tick(
            build_sensor_context(instance=instance, cursor=first.cursor, resources=resources)
        )
        assert NO_CHANNEL in tick.skip_message and failed.run_id in tick.skip_message
        for name in ("run_recovery_alerts", "blocking_check_alerts", "freshness_alerts",
                     "kraken_stream_alerts"):  # fmt: skip
            sensor = defs.resolve_sensor_def(name)
            assert sensor.default_status.value == "RUNNING"
            context = build_sensor_context(
                instance=instance,
                resources=needed(sensor, defs),
                repository_def=defs.get_repository_def(),
            )
            result = sensor.evaluate_tick(context)
            assert NO_CHANNEL in result.skip_message, name
            assert not result.run_requests and result.cursor is None


SENSOR_TESTS = {
    "kraken_stream_sensor": test_the_stream_sensor_launches_the_stream_on_an_empty_instance,
    "dataset_metadata_after_updates": (
        test_metadata_is_described_again_whenever_a_dataset_is_newer_than_it
    ),
    "variable_series_after_updates": (
        test_variable_series_rebuilds_exactly_the_months_whose_inputs_changed
    ),
    "warehouse_automation": (
        test_the_warehouse_automation_sensor_publishes_after_updates_unless_a_check_fails
    ),
    **dict.fromkeys(
        (
            "run_failure_alerts",
            "run_recovery_alerts",
            "blocking_check_alerts",
            "freshness_alerts",
            "kraken_stream_alerts",
        ),
        test_the_alert_sensors_evaluate_and_say_that_no_channel_is_configured,
    ),
}
