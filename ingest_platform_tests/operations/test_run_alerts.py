"""Failed-run alerts, evaluated as the daemon does against a real instance holding real runs.

A partitioned asset fails (its error quotes an API key in a URL, as a provider error would),
the run failure sensor alerts once through both receivers, a second tick sends nothing, a
successful re-run of the partition resolves the incident, and a receiver that answers 500
leaves the sensor successful, the failure recorded on the run and the alert retried later.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import (
    DailyPartitionsDefinition,
    asset,
    build_sensor_context,
    materialize,
)

from ingest_platform.operations.resources import NO_CHANNEL, AlertChannels
from ingest_platform.operations.run_incidents import ALERT_TAG, DELIVERY_TAG, PENDING_TAG
from ingest_platform.operations.sensors import run_failure_alerts, run_recovery_alerts

KEY = "av+k/ey=d&e%41-run-alerts"
DAY = "2024-07-09"


def _flaky_asset(flag: Path):
    @asset(partitions_def=DailyPartitionsDefinition(start_date="2024-07-01"))
    def flaky_bars() -> None:
        if flag.exists():
            raise RuntimeError(
                f"alpha_vantage GET https://www.alphavantage.co/query?apikey={KEY} failed: 503"
                "\nTraceback detail that must not reach the alert"
            )

    return flaky_bars


def _materialize(instance, flag: Path, fail: bool) -> str:
    if fail:
        flag.touch()
    else:
        flag.unlink(missing_ok=True)
    result = materialize(
        [_flaky_asset(flag)], partition_key=DAY, instance=instance, raise_on_error=False
    )
    assert result.success is not fail
    return result.run_id


class Ticks:
    """The daemon's view of the two sensors: a cursor carried from tick to tick."""

    def __init__(self, instance, **channels) -> None:
        self.instance = instance
        self.resources = {"alerts": AlertChannels(**channels)}
        self.cursor: str | None = None

    def failure(self):
        context = build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=self.resources
        )
        result = run_failure_alerts.evaluate_tick(context)
        self.cursor = result.cursor
        return result

    def recovery(self):
        context = build_sensor_context(instance=self.instance, resources=self.resources)
        return run_recovery_alerts.evaluate_tick(context)


@pytest.mark.slow
def test_a_failed_run_is_alerted_once_and_resolved_by_a_successful_rerun(
    instance, tmp_path, channels, webhook, mailbox, monkeypatch
):
    monkeypatch.setenv("ALPHA_VANTAGE_API_KEY", KEY)
    ticks = Ticks(instance, **channels)
    ticks.failure()  # the first tick starts the sensor's cursor at "now"
    failed = _materialize(instance, tmp_path / "fail", fail=True)

    first = ticks.failure()
    assert len(webhook.payloads) == 1 and len(mailbox.messages) == 1
    text = webhook.texts()[0]
    assert text.startswith("[FIRING] run of __ephemeral_asset_job__ failed")
    assert "assets flaky_bars" in text and f"partition {DAY}" in text and failed in text
    assert f"run: http://dagster.example.test:3000/runs/{failed}" in text
    assert "reason: step flaky_bars: RuntimeError: alpha_vantage GET" in text
    assert "apikey=***" in text and KEY not in text  # the key is redacted
    assert "Traceback detail" not in text  # the first line only
    assert mailbox.subjects() == [
        "[ingest_platform] [FIRING] run of __ephemeral_asset_job__ failed"
    ]
    assert mailbox.bodies()[0].replace("\r\n", "\n").strip() == text
    assert mailbox.logins == [(channels["smtp_user"], channels["smtp_password"])]
    assert mailbox.messages[0]["To"] == "oncall@example.test, data@example.test"
    tags = instance.get_run_by_id(failed).tags
    assert tags[ALERT_TAG] == "open" and tags[PENDING_TAG] == ""
    assert "webhook: delivered" in tags[DELIVERY_TAG] and "email: delivered" in tags[DELIVERY_TAG]
    assert "failed" in (first.skip_message or "")

    # Deduplicated: later ticks of both sensors send nothing while the incident is open.
    ticks.failure()
    ticks.recovery()
    assert len(webhook.payloads) == 1 and len(mailbox.messages) == 1

    # A successful run of the same partition resolves it, once.
    fixed = _materialize(instance, tmp_path / "fail", fail=False)
    ticks.failure()
    resolved = ticks.recovery()
    assert len(webhook.payloads) == 2 and len(mailbox.messages) == 2
    assert webhook.texts()[1].startswith("[RESOLVED] run of __ephemeral_asset_job__ failed")
    assert f"resolved: run {fixed} of __ephemeral_asset_job__ succeeded" in webhook.texts()[1]
    assert instance.get_run_by_id(failed).tags[ALERT_TAG] == "resolved"
    assert failed in (resolved.skip_message or "")
    ticks.recovery()
    assert len(webhook.payloads) == 2  # resolved once


@pytest.mark.slow
def test_a_failed_delivery_is_recorded_never_fails_the_sensor_and_is_retried(
    instance, tmp_path, channels, webhook, mailbox
):
    ticks = Ticks(instance, **channels)
    ticks.failure()
    failed = _materialize(instance, tmp_path / "fail", fail=True)
    webhook.statuses = [500, 500, 500]  # every attempt of this tick fails

    result = ticks.failure()  # no exception: the sensor tick succeeds
    assert result.skip_message and "FAILED" in result.skip_message
    assert len(webhook.raw) == 3 and not webhook.payloads  # retried, then given up this tick
    assert len(mailbox.messages) == 1  # the other channel still got it
    tags = instance.get_run_by_id(failed).tags
    assert tags[PENDING_TAG] == "webhook"
    assert "webhook: FAILED HTTP 500: internal_error (3 attempt(s))" in tags[DELIVERY_TAG]
    assert channels["webhook_url"] not in tags[DELIVERY_TAG]

    ticks.recovery()  # the receiver is back: the pending channel gets the alert, once
    assert len(webhook.payloads) == 1 and webhook.texts()[0].startswith("[FIRING]")
    assert len(mailbox.messages) == 1
    assert instance.get_run_by_id(failed).tags[PENDING_TAG] == ""
    ticks.recovery()
    assert len(webhook.payloads) == 1


def test_an_unreachable_receiver_is_recorded_without_its_secret_url(instance, tmp_path, webhook):
    dead = webhook.url.replace(webhook.url.split("/")[2], "127.0.0.1:9")  # nothing listens
    ticks = Ticks(instance, webhook_url=dead, backoff_seconds=0.01, timeout_seconds=1.0)
    ticks.failure()
    failed = _materialize(instance, tmp_path / "fail", fail=True)
    result = ticks.failure()
    record = instance.get_run_by_id(failed).tags[DELIVERY_TAG]
    assert "webhook: FAILED ConnectionError" in record
    for text in (record, result.skip_message or ""):
        assert "s3cr3t" not in text and "/services/" not in text


@pytest.mark.slow
def test_with_no_channel_nothing_is_sent_and_the_sensor_says_so(instance, tmp_path):
    ticks = Ticks(instance)
    ticks.failure()
    failed = _materialize(instance, tmp_path / "fail", fail=True)
    result = ticks.failure()
    assert NO_CHANNEL in (result.skip_message or "") and failed in result.skip_message
    assert ALERT_TAG not in instance.get_run_by_id(failed).tags
    assert NO_CHANNEL in (ticks.recovery().skip_message or "")
