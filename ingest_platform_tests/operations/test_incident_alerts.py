"""The cursor-keeping alert sensors against a real instance: a real failed blocking check, a real
stream halt and a real replacement by kraken_stream_sensor, and a stale dataset.

Each path: delivered (webhook and email), deduplicated (the next tick sends nothing), resolved
(once, when it recovers); the check path also has a receiver answering 500 (recorded, the tick
succeeds, the alert goes out on the next tick).
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    DagsterRunStatus,
    Definitions,
    RunRequest,
    asset,
    asset_check,
    build_sensor_context,
    materialize,
)

from ingest_platform.core.settings import NOW_ENV, SANDBOX_KRAKEN_URL_ENV
from ingest_platform.operations.incidents import Book
from ingest_platform.operations.resources import NO_CHANNEL, AlertChannels
from ingest_platform.operations.sensors import (
    blocking_check_alerts,
    freshness_alerts,
    kraken_stream_alerts,
)
from ingest_platform.sandbox.kraken_ws import KrakenSandboxServer
from ingest_platform.streaming.kraken.heartbeat import write_heartbeat
from ingest_platform.streaming.kraken.job import kraken_stream_job
from ingest_platform.streaming.kraken.resources import KrakenFanout, KrakenStream
from ingest_platform.streaming.kraken.sensor import kraken_stream_sensor


class Sensor:
    """One sensor ticked as the daemon ticks it: the cursor carried from tick to tick."""

    def __init__(self, sensor, instance, resources: dict[str, Any], repository_def=None) -> None:
        self.sensor, self.instance, self.resources = sensor, instance, resources
        self.repository_def = repository_def
        self.cursor: str | None = None

    def tick(self):
        context = build_sensor_context(
            instance=self.instance,
            cursor=self.cursor,
            resources=self.resources,
            repository_def=self.repository_def,
        )
        result = self.sensor.evaluate_tick(context)
        self.cursor = result.cursor or self.cursor
        return result


# ---------------------------------------------------------------- a blocking check at ERROR


def _checked_definitions(flag: Path) -> tuple[Definitions, Any, Any]:
    @asset
    def graded_bars() -> None:
        return None

    @asset_check(asset=graded_bars, blocking=True)
    def bars_within_limits() -> AssetCheckResult:
        failing = flag.exists()
        return AssetCheckResult(
            passed=not failing,
            severity=AssetCheckSeverity.ERROR,
            description=(
                "3 bars move > 50% in a day: AAPL 2024-07-09 (+212%), ...\nper-symbol table"
                if failing
                else "no anomalies"
            ),
        )

    defs = Definitions(assets=[graded_bars], asset_checks=[bars_within_limits])
    return defs, graded_bars, bars_within_limits


@pytest.mark.slow
def test_a_failing_blocking_check_alerts_once_survives_a_dead_receiver_and_resolves(
    instance, tmp_path, channels, webhook, mailbox
):
    flag = tmp_path / "failing"
    defs, graded_bars, bars_within_limits = _checked_definitions(flag)
    sensor = Sensor(
        blocking_check_alerts,
        instance,
        {"alerts": AlertChannels(**channels)},
        defs.get_repository_def(),
    )

    def run(failing: bool) -> str:
        flag.touch() if failing else flag.unlink(missing_ok=True)
        result = materialize(
            [graded_bars, bars_within_limits],
            instance=instance,
            raise_on_error=False,
        )
        return result.run_id

    assert "0 open incident(s)" in sensor.tick().skip_message  # nothing evaluated yet
    failed_run = run(failing=True)
    webhook.statuses = [500, 500, 500]  # the receiver is down for this whole tick
    down = sensor.tick()
    assert "FAILED firing check:graded_bars:bars_within_limits via webhook: HTTP 500" in (
        down.skip_message
    )
    assert "queued for retry" in down.skip_message
    assert not webhook.payloads and len(webhook.raw) == 3  # three attempts, none taken
    assert len(mailbox.messages) == 1  # email got it
    log = json.loads(sensor.cursor)["log"]
    assert any(d["channel"] == "webhook" and not d["ok"] and d["attempts"] == 3 for d in log)

    sensor.tick()  # back up: the queued alert goes out, and only it
    (text,) = webhook.texts()
    assert text.startswith("[FIRING] blocking check bars_within_limits on graded_bars failed")
    assert "where: asset graded_bars, check bars_within_limits" in text
    assert "reason: 3 bars move > 50% in a day" in text and "per-symbol" not in text
    assert f"/runs/{failed_run}" in text
    assert len(mailbox.messages) == 1

    sensor.tick()  # still failing: nothing new
    run(failing=True)  # failing again in a new run: the same incident
    sensor.tick()
    assert len(webhook.payloads) == 1 and len(mailbox.messages) == 1

    run(failing=False)
    sensor.tick()
    assert webhook.texts()[1].startswith("[RESOLVED] blocking check bars_within_limits")
    assert mailbox.subjects()[1].startswith("[ingest_platform] [RESOLVED]")
    sensor.tick()
    assert len(webhook.payloads) == 2 and len(mailbox.messages) == 2


@pytest.mark.slow
def test_a_non_blocking_or_warn_failure_is_not_alerted(instance, tmp_path, channels, webhook):
    @asset
    def soft_bars() -> None:
        return None

    @asset_check(asset=soft_bars, blocking=False)
    def soft_coverage() -> AssetCheckResult:
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.ERROR)

    @asset_check(asset=soft_bars, blocking=True)
    def soft_drift() -> AssetCheckResult:
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN)

    defs = Definitions(assets=[soft_bars], asset_checks=[soft_coverage, soft_drift])
    materialize([soft_bars, soft_coverage, soft_drift], instance=instance)
    sensor = Sensor(
        blocking_check_alerts,
        instance,
        {"alerts": AlertChannels(**channels)},
        defs.get_repository_def(),
    )
    sensor.tick()
    assert not webhook.payloads


# ---------------------------------------------------------------- the Kraken stream

FAST_STREAM = dict(
    heartbeat_interval=0.1,
    max_silence=0.5,
    max_heartbeat_interval=0.5,
    ping_interval=0.2,
    snapshot_timeout=3.0,
    backoff_base=0.05,
    backoff_cap=0.3,
    report_interval=0.3,
    freeze_gc=False,
)


@pytest.fixture
def kraken(monkeypatch):
    server = KrakenSandboxServer(rate=200.0, heartbeat_interval=0.1)
    server.start()
    monkeypatch.setenv(SANDBOX_KRAKEN_URL_ENV, server.url)
    yield server
    server.stop()


def _stream(instance, root: Path, pairs: list[str], seconds: float):
    stream = KrakenStream(pairs=pairs, log_root=str(root), **FAST_STREAM)
    return kraken_stream_job.execute_in_process(
        run_config={"ops": {"kraken_stream": {"config": {"run_seconds": seconds}}}},
        resources={"kraken_stream": stream, "kraken_fanout": KrakenFanout()},
        instance=instance,
        raise_on_error=False,
    )


def _while_streaming(instance, root: Path, until) -> Any:
    """Run a healthy stream in a thread; call ``until()`` while it is streaming."""
    outcome: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: outcome.update(run=_stream(instance, root, ["BTC/USD"], 6.0))
    )
    thread.start()
    try:
        deadline = time.monotonic() + 20
        beat = root / "heartbeat.json"
        while time.monotonic() < deadline:
            if beat.exists() and json.loads(beat.read_text()).get("state") == "streaming":
                return until()
            time.sleep(0.05)
        raise AssertionError("the stream never reached state streaming")
    finally:
        thread.join()


@pytest.mark.slow
def test_a_stream_halt_is_alerted_once_and_resolved_when_a_new_run_streams(
    instance, tmp_path, channels, webhook, mailbox, kraken
):
    root = tmp_path / "stream"
    stream = KrakenStream(log_root=str(root), **FAST_STREAM)
    sensor = Sensor(
        kraken_stream_alerts,
        instance,
        {"alerts": AlertChannels(**channels), "kraken_stream": stream},
    )
    sensor.tick()
    halted = _stream(instance, root, ["BTC/USD", "DOGE/USD"], 30.0)  # DOGE/USD is not listed
    assert not halted.success

    sensor.tick()
    (text,) = webhook.texts()
    assert text.startswith("[FIRING] Kraken stream halted")
    assert f"where: job kraken_stream_job, run {halted.run_id}" in text
    assert "reason: unknown_pairs" in text and "DOGE/USD" in text
    assert mailbox.subjects() == ["[ingest_platform] [FIRING] Kraken stream halted"]
    sensor.tick()
    assert len(webhook.payloads) == 1  # the halt, the failed run: one incident, one alert

    resolved = _while_streaming(instance, root, sensor.tick)
    assert "sent resolved" in resolved.skip_message
    assert webhook.texts()[1].startswith("[RESOLVED] Kraken stream halted")
    assert "is streaming" in webhook.texts()[1]
    sensor.tick()  # the healthy run ended normally: nothing to say
    assert len(webhook.payloads) == 2 and len(mailbox.messages) == 2


@pytest.mark.slow
def test_a_stream_run_replaced_by_the_stream_sensor_is_alerted_and_resolved(
    instance, tmp_path, channels, webhook
):
    root = tmp_path / "stream"
    stream = KrakenStream(log_root=str(root))
    sensor = Sensor(
        kraken_stream_alerts,
        instance,
        {"alerts": AlertChannels(**channels), "kraken_stream": stream},
    )
    sensor.tick()
    # A started stream whose heartbeat went silent an hour ago, as the stream leaves it.
    stuck = instance.create_run_for_job(kraken_stream_job, status=DagsterRunStatus.STARTED)
    write_heartbeat(
        root, {"run_id": stuck.run_id, "state": "streaming", "updated_at": time.time() - 3600}
    )
    context = build_sensor_context(instance=instance, resources={"kraken_stream": stream})
    request = kraken_stream_sensor(context)
    assert isinstance(request, RunRequest)
    # The daemon launches the request: a run carrying the sensor's tags.
    new = instance.create_run_for_job(
        kraken_stream_job,
        tags={
            **request.tags,
            "dagster/run_key": request.run_key,
            "dagster/sensor_name": "kraken_stream_sensor",
        },
    )

    sensor.tick()
    (text,) = webhook.texts()
    assert text.startswith("[FIRING] Kraken stream run replaced by kraken_stream_sensor")
    assert f"run {stuck.run_id}" in text and "heartbeat 3600 s old" in text and new.run_id in text
    sensor.tick()
    assert len(webhook.payloads) == 1

    write_heartbeat(root, {"run_id": new.run_id, "state": "streaming", "updated_at": time.time()})
    sensor.tick()
    assert webhook.texts()[1].startswith("[RESOLVED] Kraken stream run replaced")
    assert f"run {new.run_id} is streaming" in webhook.texts()[1]
    sensor.tick()
    assert len(webhook.payloads) == 2
    assert not Book.from_cursor(sensor.cursor).open


# ---------------------------------------------------------------- a stale dataset


@pytest.mark.slow
def test_a_dataset_past_its_freshness_policy_is_alerted_and_resolved(
    instance, channels, webhook, mailbox, monkeypatch
):
    @asset(name="economic_indicators")
    def economic_indicators_stand_in() -> None:
        return None

    def at(seconds_from_now: float) -> None:
        moment = dt.datetime.fromtimestamp(time.time() + seconds_from_now, dt.UTC)
        monkeypatch.setenv(NOW_ENV, moment.isoformat())

    first = materialize([economic_indicators_stand_in], instance=instance)
    sensor = Sensor(freshness_alerts, instance, {"alerts": AlertChannels(**channels)})
    at(3600)
    sensor.tick()
    assert not webhook.payloads  # fresh: the policy fails after 48 h

    at(3 * 86400)
    sensor.tick()
    (text,) = webhook.texts()
    assert text.startswith("[FIRING] economic_indicators is past its freshness policy")
    assert "fails after 2 days, 0:00:00 without a materialization" in text
    assert f"/runs/{first.run_id}" in text
    assert "instruments" not in text  # never materialized: a new install, not stale
    sensor.tick()
    assert len(webhook.payloads) == 1 and len(mailbox.messages) == 1

    materialize([economic_indicators_stand_in], instance=instance)
    at(600)
    sensor.tick()
    assert webhook.texts()[1].startswith("[RESOLVED] economic_indicators is past its freshness")
    sensor.tick()
    assert len(webhook.payloads) == 2 and len(mailbox.messages) == 2


@pytest.mark.slow
def test_with_no_channel_the_cursor_sensors_say_what_they_would_alert(instance, monkeypatch):
    @asset(name="economic_indicators")
    def economic_indicators_stand_in() -> None:
        return None

    materialize([economic_indicators_stand_in], instance=instance)
    stale = dt.datetime.fromtimestamp(time.time() + 3 * 86400, dt.UTC)
    monkeypatch.setenv(NOW_ENV, stale.isoformat())
    result = Sensor(freshness_alerts, instance, {"alerts": AlertChannels()}).tick()
    assert NO_CHANNEL in result.skip_message
    assert "1 incident(s) now: freshness:economic_indicators" in result.skip_message
    assert result.cursor is None  # nothing recorded: configuring a channel later alerts then
