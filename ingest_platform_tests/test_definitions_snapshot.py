"""The shape of the code location, as a reviewed snapshot.

Every asset key with its partitions, every check key, every schedule with its cron, every
sensor and every job of the real `defs` is written to ``__snapshots__/`` (syrupy). A change to
any of them fails this test until the snapshot is refreshed, so it shows in review as a diff of
that file rather than hiding in the code that builds the definitions.

Refresh after an intended change, and commit the snapshot with it:
``.venv/bin/pytest ingest_platform_tests/test_definitions_snapshot.py --snapshot-update``
"""

from __future__ import annotations

from typing import Any

import pytest
from dagster import (
    Definitions,
    PartitionsDefinition,
    StaticPartitionsDefinition,
    TimeWindowPartitionsDefinition,
)

from ingest_platform.definitions import build_definitions


@pytest.fixture(scope="module")
def defs(tmp_path_factory) -> Definitions:
    """The real code location, with its data folder somewhere empty."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path_factory.mktemp("snapshot-data")))
        return build_definitions()


def describe_partitions(partitions: PartitionsDefinition | None) -> str | None:
    """What a partitions definition promises, on one line, in terms that do not depend on
    today's date (so the snapshot never moves with the clock)."""
    if partitions is None:
        return None
    kind = type(partitions).__name__
    if isinstance(partitions, TimeWindowPartitionsDefinition):
        end = partitions.end.isoformat() if partitions.end else "open"
        exclusions = sorted(str(e) for e in partitions.exclusions or ())
        return (
            f"{kind} {partitions.start.isoformat()}..{end} {partitions.timezone}"
            f" cron={partitions.cron_schedule!r} fmt={partitions.fmt}"
            f" end_offset={partitions.end_offset} exclusions={exclusions}"
        )
    if isinstance(partitions, StaticPartitionsDefinition):
        return f"{kind} {partitions.get_partition_keys()}"
    return kind


def shape(defs: Definitions) -> dict[str, Any]:
    """The reviewed surface of `defs`: plain, sorted data, so the snapshot diff is readable."""
    graph = defs.resolve_asset_graph()
    assets = {
        key.to_user_string(): describe_partitions(graph.get(key).partitions_def)
        for key in sorted(graph.get_all_asset_keys())
    }
    checks = {
        f"{key.asset_key.to_user_string()}:{key.name}": (
            "blocking" if graph.get_check_spec(key).blocking else "not blocking"
        )
        for key in sorted(graph.asset_check_keys)
    }
    schedules = {
        schedule.name: {
            "cron": schedule.cron_schedule,
            "timezone": schedule.execution_timezone,
            "job": schedule.job_name,
            "default_status": schedule.default_status.value,
        }
        for schedule in sorted(defs.schedules or [], key=lambda s: s.name)
    }
    sensors = {
        sensor.name: {
            "kind": type(sensor).__name__,
            "minimum_interval_seconds": sensor.minimum_interval_seconds,
            "default_status": sensor.default_status.value,
        }
        for sensor in sorted(defs.sensors or [], key=lambda s: s.name)
    }
    jobs = sorted(job.name for job in defs.jobs or [])
    return {
        "assets": assets,
        "checks": checks,
        "schedules": schedules,
        "sensors": sensors,
        "jobs": jobs,
    }


def test_the_code_location_matches_its_reviewed_snapshot(defs, snapshot):
    assert shape(defs) == snapshot


def test_the_snapshot_covers_every_definition(defs):
    """The summary leaves nothing out: a definition added elsewhere lands in the snapshot."""
    described = shape(defs)
    graph = defs.resolve_asset_graph()
    assert len(described["assets"]) == len(graph.get_all_asset_keys()) > 0
    assert len(described["checks"]) == len(graph.asset_check_keys) > 0
    assert set(described["schedules"]) == {s.name for s in defs.schedules or []}
    assert set(described["sensors"]) == {s.name for s in defs.sensors or []}
    assert described["schedules"]["market_bars_daily"]["cron"] == "45 20 * * 1-5"
    assert described["assets"]["market_bars"].startswith(
        "DailyPartitionsDefinition 2023-01-02T00:00:00-05:00..open America/New_York"
    )
    assert described["assets"]["instruments"] is None
