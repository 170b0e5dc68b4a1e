"""No API key leaves the platform: a full fault run, then a scan of everything it wrote.

The code location is built as a deployment builds it (`build_definitions`, keys from the
environment, endpoints from the sandbox's environment), on an instance of its own under
``tmp_path``. Every provider is made to echo the caller's key in its error text (Alpha Vantage's
``Information`` and ``Error Message``, Polygon's ``error``, FRED's ``error_message``, Yahoo's
``description``), and Polygon and FRED also put it where a number belongs, so the source's own
parsing stage fails quoting it. Then every file under ``tmp_path`` (lake, budgets, yfinance
cache, Dagster's event and run storage, compute logs, the Kraken stream log), every event of
every run and every log line is searched for each key, raw and URL-encoded.

The alert sensors run too, with a webhook whose URL carries its token (as a Slack incoming
webhook's does) and an SMTP password, both from the environment: every payload the local
receivers got is searched for the keys and for those two secrets, and so is everything written
(sensor cursors and run tags are in the instance's storage), including the record of a delivery
that failed.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote, quote_plus

import pytest
from dagster import DagsterInstance, build_sensor_context, materialize

from ingest_platform.core import settings
from ingest_platform.definitions import build_definitions
from ingest_platform.economic.assets import economic_indicators, economic_release_calendar
from ingest_platform.market.assets import MARKET_ASSETS
from ingest_platform.operations import resources as alert_env
from ingest_platform.reference.assets import index_membership, instruments
from ingest_platform.registry.assets import variable_mappings
from ingest_platform.sandbox import Sandbox
from ingest_platform_tests.operations.receivers import (
    SMTP_PASSWORD,
    SMTP_USER,
    WEBHOOK_TOKEN,
    mailbox,
    webhook,
)

__all__ = ["mailbox", "webhook"]  # the local alert receivers

# URL-unsafe on purpose: each must be caught in its percent-encoded spellings too.
KEYS = {
    "ALPHA_VANTAGE_API_KEY": "av+k/ey=d&e%41-7f3e9a",
    "POLYGON_API_KEY": "pg+k/ey=d&e%42-2b8d4e",
    "FRED_API_KEY": "fr+k/ey=d&e%43-4d2a9c",
}
SYMBOLS = ["AAPL", "MSFT", "NVDA", "JNJ", "SPY", "QQQ", "EURUSD", "IBM"]
FAST = {"backoff_base_seconds": 0.01, "backoff_cap_seconds": 0.05, "max_attempts": 3}
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def spellings(secret: str) -> set[str]:
    return {secret, quote(secret, safe=""), quote_plus(secret, safe=""), quote(secret)}


@pytest.fixture
def platform(tmp_path, monkeypatch, webhook, mailbox):
    """The sandbox (HTTP + Kraken) and the environment a deployment pointed at it would have,
    alert channels included."""
    alerts = {
        alert_env.WEBHOOK_URL_ENV: webhook.url,
        alert_env.SMTP_HOST_ENV: "127.0.0.1",
        alert_env.SMTP_PORT_ENV: str(mailbox.port),
        alert_env.SMTP_SECURITY_ENV: "none",
        alert_env.SMTP_USER_ENV: SMTP_USER,
        alert_env.SMTP_PASSWORD_ENV: SMTP_PASSWORD,
        alert_env.EMAIL_TO_ENV: "oncall@example.test",
        alert_env.WEBSERVER_URL_ENV: "http://dagster.example.test",
    }
    with Sandbox(seed=7, as_of="2025-12-31") as sandbox:
        for name, value in {**sandbox.env(), **KEYS, **alerts}.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path / "data"))
        monkeypatch.delenv("INGEST_PLATFORM_LAKE_ROOT", raising=False)
        monkeypatch.delenv(settings.STREAM_ROOT_ENV, raising=False)
        monkeypatch.setenv(settings.NOW_ENV, "2026-01-01T08:00:00+00:00")
        yield sandbox


def _program_faults(sandbox: Sandbox) -> None:
    add = sandbox.faults.add
    add("throttle_information", endpoint="alpha_vantage.daily", symbol="AAPL", variant="burst")
    add("echo_key", endpoint="alpha_vantage.daily", symbol="MSFT")
    add("throttle_note", endpoint="alpha_vantage.daily", symbol="NVDA", times=1)
    add("throttle_information", endpoint="alpha_vantage.daily", symbol="JNJ", variant="premium")
    add("throttle_information", endpoint="alpha_vantage.daily", symbol="SPY", variant="daily")
    add("echo_key", endpoint="polygon.aggs", symbol="AAPL")
    add("echo_key", endpoint="polygon.aggs", symbol="MSFT", where="rows")
    add("rate_limit", endpoint="polygon.aggs", symbol="SPY", times=1)
    add("truncated_json", endpoint="polygon.aggs", symbol="QQQ", times=1)
    add("echo_key", endpoint="yahoo.chart", symbol="NVDA", times=1)
    add("server_error", endpoint="yahoo.chart", symbol="SPY", times=1)
    add("echo_key", endpoint="fred.observations", symbol="UNRATE")
    add("echo_key", endpoint="fred.observations", symbol="CPIAUCSL", where="rows")
    add("rate_limit", endpoint="fred.observations", symbol="GDP", times=1)
    add("server_error", endpoint="worldbank.indicator", times=2)
    add("xml_answer", endpoint="worldbank.indicator", times=1)


def _run_everything(instance: DagsterInstance) -> list[str]:
    """Reference, market, registry, economic and a short Kraken stream, all under faults; the
    run config overrides every source resource, as a launchpad user would."""
    defs = build_definitions()
    resources = defs.resources or {}

    def run(assets: list, start: str, end: str, run_config: dict) -> str:
        result = materialize(
            assets,
            resources=resources,
            instance=instance,
            run_config={**QUIET, **run_config},
            tags={
                "dagster/asset_partition_range_start": start,
                "dagster/asset_partition_range_end": end,
            },
            raise_on_error=False,
        )
        return result.run_id

    setup = materialize(
        [instruments, index_membership, variable_mappings, economic_release_calendar],
        resources=resources,
        instance=instance,
        run_config=QUIET,
    )
    assert setup.success
    bars = {"symbols": SYMBOLS, "max_failure_rate": 1.0}
    run_ids = [
        setup.run_id,
        run(
            MARKET_ASSETS,
            "2024-07-08",
            "2024-07-12",
            {
                "ops": {
                    "yahoo_daily_bars": {"config": bars},
                    "alpha_vantage_daily_bars": {"config": bars},
                    "polygon_daily_bars": {"config": bars},
                    "market_bars": {"config": {"symbols": SYMBOLS}},
                },
                "resources": {
                    "yahoo": {"config": FAST},
                    "alpha_vantage": {
                        "config": {
                            **FAST,
                            "api_key": {"env": "ALPHA_VANTAGE_API_KEY"},
                            "note_retry_after_seconds": 0.05,
                        }
                    },
                    "polygon": {"config": {**FAST, "api_key": {"env": "POLYGON_API_KEY"}}},
                },
            },
        ),
        run(
            [economic_indicators],
            "2025-10-01",
            "2025-12-01",
            {
                # No failure tolerated: the blocking fetch_failure_rate check fails at ERROR
                # quoting the (echoed) keys' errors, the run fails, and both are alerted.
                "ops": {"economic_indicators": {"config": {"max_failure_rate": 0.0}}},
                "resources": {
                    "fred": {"config": {**FAST, "api_key": {"env": "FRED_API_KEY"}}},
                    "worldbank": {"config": FAST},
                },
            },
        ),
    ]
    stream = defs.resolve_job_def("kraken_stream_job").execute_in_process(
        instance=instance,
        run_config={
            **QUIET,
            "ops": {"kraken_stream": {"config": {"run_seconds": 2.0}}},
            "resources": {"kraken_stream": {"config": {"freeze_gc": False}}},
        },
        raise_on_error=False,
    )
    assert stream.success
    return [*run_ids, stream.run_id]


def _events_text(instance: DagsterInstance, run_ids: list[str]) -> str:
    return "\n".join(
        json.dumps(entry.to_dict() if hasattr(entry, "to_dict") else str(entry), default=str)
        for run_id in run_ids
        for entry in instance.all_logs(run_id)
    )


def _tick_alerts(instance: DagsterInstance, before: dict[str, str | None]) -> list[str]:
    """Every alert sensor of the code location, ticked as the daemon would; returns what the
    ticks said."""
    defs = build_definitions()
    said = []
    for sensor in defs.sensors or []:
        if not sensor.name.endswith("_alerts"):
            continue
        context = build_sensor_context(
            instance=instance,
            cursor=before.get(sensor.name),
            resources={k: defs.resources[k] for k in sensor.required_resource_keys},
            repository_def=None
            if sensor.name == "run_failure_alerts"
            else defs.get_repository_def(),
        )
        result = sensor.evaluate_tick(context)
        before[sensor.name] = result.cursor
        said.append(result.skip_message or "")
    return said


@pytest.mark.slow
def test_a_full_fault_run_writes_no_key_anywhere(platform, tmp_path, caplog, webhook, mailbox):
    caplog.set_level(logging.DEBUG)
    _program_faults(platform)
    home = tmp_path / "dagster_home"
    home.mkdir()
    with DagsterInstance.local_temp(tempdir=str(home)) as instance:
        cursors: dict[str, str | None] = {}
        _tick_alerts(instance, cursors)  # the run failure sensor starts watching
        run_ids = _run_everything(instance)
        events = _events_text(instance, run_ids)
        webhook.statuses = [500, 500, 500]  # the first alert's webhook delivery fails
        said = _tick_alerts(instance, cursors)
        said += _tick_alerts(instance, cursors)  # retries what failed

    texts = webhook.texts()
    assert any(t.startswith("[FIRING] run of __ephemeral_asset_job__ failed") for t in texts)
    assert any("blocking check fetch_failure_rate on economic_indicators" in t for t in texts)
    assert mailbox.messages and "FAILED" in "\n".join(said)  # a delivery failed, recorded
    payloads = b"\n".join([*webhook.raw, *mailbox.raw])
    channel_secrets = {"webhook token": WEBHOOK_TOKEN, "smtp password": SMTP_PASSWORD}
    for name, secret in {**KEYS, **channel_secrets}.items():
        for spelling in spellings(secret):
            assert spelling.encode() not in payloads, (name, spelling)
            assert spelling not in "\n".join(said), (name, spelling)

    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.suffix == ".parquet" and "stream" in p.parts for p in written)
    assert any(p.name.endswith(".db") for p in written)  # Dagster's own storage
    for name, key in {**KEYS, **channel_secrets}.items():
        for spelling in spellings(key):
            assert spelling not in events, (name, spelling)
            assert spelling not in caplog.text, (name, spelling)
            raw = spelling.encode()
            leaked = [p for p in written if raw in p.read_bytes()]
            assert not leaked, (name, spelling, leaked)

    # The faults fired, and what they said reached the events, scrubbed.
    said = events.replace("\\", "")  # the events' text without its repr and JSON escapes
    assert "We have detected your API key as ***" in said  # AV daily quota (Information)
    assert "The apikey *** is not valid" in said  # AV Error Message
    assert "premium only" in said and "burst limit" in said
    assert "Unknown API Key '***'" in said  # Polygon error
    assert "api_key (***) is not registered" in said  # FRED error_message
    assert "could not convert string to float: '***'" in said  # the parsing stages
    # Every resource was overridden in run config, and still every call reached the sandbox:
    # the environment decides the endpoints (a production one is refused offline).
    for endpoint in (
        "yahoo.chart",
        "alpha_vantage.daily",
        "polygon.aggs",
        "fred.observations",
        "worldbank.indicator",
        "kraken.connect",
    ):
        assert platform.counters.get(endpoint) > 0, endpoint
