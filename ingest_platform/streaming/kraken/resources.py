"""The ``kraken_stream`` resource: the stream's settings, its log root and the sensor's limits.

Used by the stream op, its sensor, the minute-bar asset and its schedule. Paths resolve when
used (`log_path`), never at import.
"""

from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from ingest_platform.core import settings
from ingest_platform.streaming.kraken.config import StreamConfig

RESOURCE_KEY = "kraken_stream"


class KrakenStream(StreamConfig, ConfigurableResource):
    """Settings of the Kraken L2 stream (every `StreamConfig` field), its log and its sensor."""

    log_root: str = Field(
        default="",
        description="Stream log directory; empty: <data dir>/stream/kraken "
        "($INGEST_PLATFORM_DATA_DIR). Must be shared with the sensor's host.",
    )
    stale_after_seconds: float = Field(
        default=120.0,
        gt=0,
        allow_inf_nan=False,
        strict=True,
        description="Sensor: a heartbeat file older than this means a dead stream.",
    )
    start_grace_seconds: float = Field(
        default=180.0,
        gt=0,
        allow_inf_nan=False,
        strict=True,
        description="Sensor: a started run gets this long to write its first heartbeat.",
    )
    halt_cooldown_seconds: float = Field(
        default=600.0,
        ge=0,
        allow_inf_nan=False,
        strict=True,
        description="Sensor: after a halt, wait this long before relaunching (0: at once).",
    )
    freeze_gc: bool = Field(
        default=True,
        description="gc.freeze() the run's process before streaming: keeps full garbage "
        "collections, which pause the event loop, short (the process only hosts the stream).",
    )

    def log_path(self) -> Path:
        """The log root, resolved now (never at import)."""
        return Path(self.log_root) if self.log_root else settings.data_dir() / "stream" / "kraken"


def stream_resources(**overrides: Any) -> dict[str, Any]:
    """``{"kraken_stream": KrakenStream(**overrides)}``."""
    return {RESOURCE_KEY: KrakenStream(**overrides)}
