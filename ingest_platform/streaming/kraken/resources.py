"""The ``kraken_stream`` resource: the stream's settings, its log root and the sensor's limits.

Used by the stream op, its sensor, the minute-bar asset and its schedule. Paths resolve when
used (`log_path`), never at import.

The log root may be an object store (``s3://bucket/stream/kraken``): segments are then each one
whole-object PUT, and replay and the minute bars read them from there. The heartbeat file is a
different matter: the stream rewrites it every second and the sensor reads it every 30 s, on
the same host, so it belongs on a local disk, not in a bucket (a PUT a second is a request bill,
and a remote read is latency the sensor's 60 s budget should not carry). `heartbeat_path` names
that local folder; the stream job writes the heartbeat there and the sensor and
`ingest-platform status` read it from there (never from `log_path`).
"""

from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from ingest_platform.core import settings
from ingest_platform.core.object_store import path_or_url
from ingest_platform.streaming.kraken.config import StreamConfig

RESOURCE_KEY = "kraken_stream"


class KrakenStream(StreamConfig, ConfigurableResource):
    """Settings of the Kraken L2 stream (every `StreamConfig` field), its log and its sensor."""

    log_root: str = Field(
        default="",
        description="Stream log root: a directory or an fsspec URL (s3://bucket/stream/kraken); "
        "empty: $INGEST_PLATFORM_STREAM_ROOT, else <data dir>/stream/kraken "
        "($INGEST_PLATFORM_DATA_DIR). A local root must be shared with the sensor's host.",
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

    def log_path(self) -> str | Path:
        """The log root, resolved now (never at import): a `Path` for a local directory, the URL
        itself (``s3://...``) for object storage (every reader and `StreamLog` accept both)."""
        return path_or_url(self.log_root or settings.stream_root())

    def heartbeat_path(self) -> Path:
        """Where the running stream's heartbeat file lives: the log root when it is local
        (as always), else the local default, <data dir>/stream/kraken."""
        root = self.log_path()
        return root if isinstance(root, Path) else settings.data_dir() / "stream" / "kraken"


def stream_resources(**overrides: Any) -> dict[str, Any]:
    """``{"kraken_stream": KrakenStream(**overrides)}``."""
    return {RESOURCE_KEY: KrakenStream(**overrides)}
