"""One settings model: `StreamConfig` validates, and the resource is that same model; at the
edge it maps onto the plain settings the connection and the protocol take."""

from __future__ import annotations

from dataclasses import fields

import pytest
from dagster import DagsterEventType
from pydantic import ValidationError

from ingest_platform.core.settings import SANDBOX_KRAKEN_URL_ENV
from ingest_platform.streaming.kraken.config import StreamConfig
from ingest_platform.streaming.kraken.io.settings import StreamSettings
from ingest_platform.streaming.kraken.job import kraken_stream_job
from ingest_platform.streaming.kraken.protocol.settings import ProtocolSettings
from ingest_platform.streaming.kraken.resources import KrakenStream
from ingest_platform_tests.streaming.kraken.fanout_off import FANOUT_OFF


@pytest.mark.parametrize(
    ("changes", "field", "expected"),
    [
        ({"pairs": []}, "pairs", "must name at least one pair"),
        ({"pairs": "BTC/USD"}, "pairs", "Input should be a valid list"),
        ({"pairs": ["BTCUSD"]}, "pairs", "must look like 'BTC/USD' (BASE/QUOTE), got ['BTCUSD']"),
        ({"pairs": ["BTC/USD", "BTC/USD"]}, "pairs", "duplicates ['BTC/USD']"),
        ({"depth": 20}, "depth", "must be one of [10, 25, 100, 500, 1000]"),
        ({"depth": True}, "depth", "Input should be a valid integer"),
        ({"url": "ws://127.0.0.1:1/v2"}, "url", "Extra inputs are not permitted"),
        ({"max_silence": 0}, "max_silence", "Input should be greater than 0"),
        ({"halt_window": float("nan")}, "halt_window", "Input should be a finite number"),
        ({"max_silence": 1.5}, "max_silence", "must be at least twice heartbeat_interval"),
        ({"max_heartbeat_interval": 1.0}, "max_heartbeat_interval", "must be at least twice"),
        ({"backoff_base": 60.0}, "backoff_base", "must be <= backoff_cap (30.0)"),
        ({"max_mismatches": 0}, "max_mismatches", "Input should be greater than or equal to 1"),
        ({"max_critical_errors": 2.5}, "max_critical_errors", "Input should be a valid integer"),
        ({"channels": ["trade"]}, "channels", "must include 'book'"),
        ({"channels": ["book", "spread"]}, "channels", "must include 'book'"),
        ({"ohlc_interval": 2}, "ohlc_interval", "must be one of [1, 5, 15"),
        ({"ping_interval": -1}, "ping_interval", "Input should be greater than or equal to 0"),
        ({"connect_timeout": "10"}, "connect_timeout", "Input should be a valid number"),
        ({"pair": ["SOL/USD"]}, "pair", "Extra inputs are not permitted"),
    ],
)
def test_invalid_settings_name_the_field_and_the_value(changes, field, expected):
    for model in (StreamConfig, KrakenStream):  # one model: the resource validates the same
        with pytest.raises(ValidationError) as excinfo:
            model(**changes)
        (error,) = excinfo.value.errors()
        assert field in str(excinfo.value) and expected in str(excinfo.value)
        value = next(iter(changes.values()))
        assert error["input"] is value or error["input"] == value or not error["loc"]


def test_the_resource_is_the_config_with_the_same_defaults():
    config, resource = StreamConfig(), KrakenStream()
    assert isinstance(resource, StreamConfig)
    assert resource.model_dump(include=set(StreamConfig.model_fields)) == config.model_dump()
    assert StreamConfig(pairs=("SOL/USD",)).pairs == ["SOL/USD"]


def test_the_config_maps_onto_the_plain_settings_field_by_field():
    """Every setting lands in the protocol's or the driver's settings, under its own name, and
    both sides have the same defaults (the config reads them from the plain settings)."""
    plain = {f.name for f in fields(ProtocolSettings)} | {f.name for f in fields(StreamSettings)}
    assert set(StreamConfig.model_fields) == plain - {"protocol"}
    assert StreamConfig().stream_settings() == StreamSettings()
    resource = KrakenStream(
        pairs=["SOL/USD"], depth=25, max_mismatches=2, connect_timeout=3.0, top_interval=0.0
    )
    settings = resource.stream_settings()
    assert (settings.protocol.pairs, settings.protocol.depth) == (("SOL/USD",), 25)
    assert settings.protocol.max_mismatches == 2
    assert (settings.connect_timeout, settings.top_interval) == (3.0, 0.0)


def test_a_run_config_override_is_validated_before_anything_connects(tmp_path):
    result = kraken_stream_job.execute_in_process(
        resources={"kraken_stream": KrakenStream(log_root=str(tmp_path / "log")), **FANOUT_OFF},
        run_config={"resources": {"kraken_stream": {"config": {"depth": 20}}}},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [
        e for e in result.all_events if e.event_type == DagsterEventType.RESOURCE_INIT_FAILURE
    ]
    message = failure.event_specific_data.error.message
    assert "validation error for KrakenStream\ndepth" in message
    assert "must be one of [10, 25, 100, 500, 1000]" in message and "input_value=20" in message
    assert not (tmp_path / "log").exists()  # nothing started


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("stale_after_seconds", -1.0),
        ("stale_after_seconds", 0.0),
        ("start_grace_seconds", -5.0),
        ("halt_cooldown_seconds", -1.0),
    ],
)
def test_the_sensor_limits_are_validated_too(field, value):
    """A negative staleness limit made every heartbeat 'stale': the sensor cancelled a healthy
    stream run on every tick. Such a resource cannot be built."""
    with pytest.raises(ValidationError) as excinfo:
        KrakenStream(**{field: value})
    assert field in str(excinfo.value) and "greater than" in str(excinfo.value)


@pytest.mark.parametrize("seconds", [0, -1.5])
def test_run_seconds_must_be_positive(tmp_path, monkeypatch, seconds):
    monkeypatch.setenv(SANDBOX_KRAKEN_URL_ENV, "ws://127.0.0.1:9/v2")
    result = kraken_stream_job.execute_in_process(
        resources={"kraken_stream": KrakenStream(log_root=str(tmp_path / "log")), **FANOUT_OFF},
        run_config={"ops": {"kraken_stream": {"config": {"run_seconds": seconds}}}},
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type == DagsterEventType.STEP_FAILURE]
    message = failure.event_specific_data.error.message
    assert "run_seconds" in message and "greater than 0" in message
    assert not (tmp_path / "log").exists()  # it never started
