"""The protocol's plain settings: frozen, checked on construction, the error naming the field;
and the layer's purity, checked in a fresh interpreter."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest

from ingest_platform.streaming.kraken.io.settings import StreamSettings
from ingest_platform.streaming.kraken.protocol.settings import ProtocolSettings


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"pairs": []}, "ProtocolSettings.pairs must name at least one pair"),
        ({"pairs": ["BTCUSD"]}, "ProtocolSettings.pairs must look like 'BTC/USD'"),
        ({"pairs": ["BTC/USD", "BTC/USD"]}, "ProtocolSettings.pairs must be unique"),
        ({"depth": 20}, "ProtocolSettings.depth must be one of [10, 25, 100, 500, 1000]"),
        ({"channels": ["trade"]}, "ProtocolSettings.channels must include 'book'"),
        ({"ohlc_interval": 2}, "ProtocolSettings.ohlc_interval must be one of [1, 5, 15"),
        ({"max_silence": 0}, "ProtocolSettings.max_silence must be a finite number of seconds"),
        ({"halt_window": float("nan")}, "ProtocolSettings.halt_window must be a finite"),
        ({"ping_interval": -1}, "ProtocolSettings.ping_interval must be a finite number of "),
        ({"snapshot_timeout": "15"}, "ProtocolSettings.snapshot_timeout must be a finite"),
        ({"latency_window": 0}, "ProtocolSettings.latency_window must be a whole number >= 1"),
        ({"max_mismatches": True}, "ProtocolSettings.max_mismatches must be a whole number"),
        ({"max_silence": 1.5}, "max_silence (1.5 s) must be at least twice heartbeat_interval"),
        ({"backoff_base": 60.0}, "backoff_base (60.0) must be <= backoff_cap (30.0)"),
    ],
)
def test_bad_protocol_settings_name_the_field_and_the_value(changes, expected):
    with pytest.raises(ValueError) as excinfo:
        ProtocolSettings(**changes)
    assert expected in str(excinfo.value)


def test_protocol_settings_are_frozen_tuples():
    settings = ProtocolSettings(pairs=["SOL/USD", "ETH/USD"], channels=["book"], ping_interval=0)
    assert settings.pairs == ("SOL/USD", "ETH/USD") and settings.channels == ("book",)
    assert settings.ping_interval == 0  # 0 switches the ping off
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.depth = 25  # type: ignore[misc]
    assert hash(settings) == hash(
        ProtocolSettings(pairs=("SOL/USD", "ETH/USD"), channels=("book",), ping_interval=0)
    )


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"connect_timeout": 0}, "StreamSettings.connect_timeout must be a finite number"),
        ({"top_interval": -1.0}, "StreamSettings.top_interval must be a finite number"),
        ({"segment_max_rows": 0}, "StreamSettings.segment_max_rows must be a whole number"),
        ({"protocol": {"pairs": ["BTC/USD"]}}, "StreamSettings.protocol must be a Protocol"),
    ],
)
def test_bad_stream_settings_name_the_field(changes, expected):
    with pytest.raises((ValueError, TypeError)) as excinfo:
        StreamSettings(**changes)
    assert expected in str(excinfo.value)


_FORBIDDEN = (
    "dagster",
    "pydantic",
    "pyarrow",
    "pandas",
    "websockets",
    "upath",
    "fsspec",
    "requests",
    "asyncio",
    "socket",
    "ssl",
    "concurrent",
    "ingest_platform.streaming.kraken.io",
    "ingest_platform.streaming.kraken.log",
    "ingest_platform.streaming.kraken.config",
)


def test_the_protocol_layer_loads_no_network_arrow_or_dagster():
    """Import-linter checks our own imports; this checks what loading the layer really pulls
    in, third-party packages included (``threading`` comes with ``logging``, so only the
    contract can hold the protocol's own modules to not using it)."""
    script = (
        "import json, pkgutil, sys, importlib\n"
        "import ingest_platform.streaming.kraken.protocol as p\n"
        "for m in pkgutil.iter_modules(p.__path__):\n"
        "    importlib.import_module(f'{p.__name__}.{m.name}')\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout
    )
    assert "ingest_platform.streaming.kraken.protocol.protocol" in loaded
    pulled_in = [m for m in loaded if any(m == f or m.startswith(f"{f}.") for f in _FORBIDDEN)]
    assert pulled_in == []
