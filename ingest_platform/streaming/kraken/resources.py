"""The ``kraken_stream`` resource: the stream's settings, its log root and the sensor's limits.

Used by the stream op, its sensor, the minute-bar asset and its schedule. Paths resolve when
used (`log_path`), never at import.
"""

from pathlib import Path
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from ingest_platform.core import settings
from ingest_platform.streaming.kraken.config import KRAKEN_WS_URL, StreamConfig

RESOURCE_KEY = "kraken_stream"


class KrakenStream(ConfigurableResource):
    """Settings of the Kraken L2 stream, its log and the sensor that keeps it running."""

    url: str = Field(default=KRAKEN_WS_URL, description="Kraken WebSocket v2 URL (or a sandbox).")
    pairs: list[str] = Field(
        default=["BTC/USD", "ETH/USD"], description="Pairs to stream, as 'BASE/QUOTE'."
    )
    depth: int = Field(default=10, description="Book depth: 10, 25, 100, 500 or 1000.")
    log_root: str = Field(
        default="",
        description="Stream log directory; empty: <data dir>/stream/kraken "
        "($INGEST_PLATFORM_DATA_DIR). Must be shared with the sensor's host.",
    )
    heartbeat_interval: float = Field(default=1.0, description="Exchange heartbeat cadence, s.")
    max_silence: float = Field(default=5.0, description="Reconnect after this long with no data.")
    max_heartbeat_interval: float = Field(
        default=5.0, description="Reconnect after this long with no heartbeat."
    )
    ping_interval: float = Field(default=30.0, description="Application ping cadence; 0: off.")
    snapshot_timeout: float = Field(default=15.0, description="Longest wait for a snapshot.")
    backoff_base: float = Field(default=0.5, description="Reconnect backoff base, s.")
    backoff_cap: float = Field(default=30.0, description="Reconnect backoff cap, s.")
    max_mismatches: int = Field(default=10, description="Checksum mismatches per window: halt.")
    max_critical_errors: int = Field(default=10, description="Critical errors per window: halt.")
    halt_window: float = Field(default=300.0, description="Halt window, s.")
    report_interval: float = Field(
        default=60.0, description="Seconds between stream observations in Dagster."
    )
    top_interval: float = Field(default=30.0, description="Seconds between top-N book rows.")
    top_levels: int = Field(default=10, description="Levels per side in top-N book rows.")
    segment_max_rows: int = Field(default=50_000, description="Roll a log segment at N rows.")
    segment_max_seconds: float = Field(
        default=300.0, description="Roll a log segment after N seconds."
    )
    stale_after_seconds: float = Field(
        default=120.0, description="Sensor: a heartbeat file older than this means a dead stream."
    )
    start_grace_seconds: float = Field(
        default=180.0, description="Sensor: a started run gets this long to write a heartbeat."
    )
    halt_cooldown_seconds: float = Field(
        default=600.0, description="Sensor: after a halt, wait this long before relaunching."
    )
    freeze_gc: bool = Field(
        default=True,
        description="gc.freeze() the run's process before streaming: keeps full garbage "
        "collections, which pause the event loop, short (the process only hosts the stream).",
    )

    def stream_config(self) -> StreamConfig:
        """The validated client configuration (raises `StreamConfigError`, naming the field)."""
        return StreamConfig(
            url=self.url,
            pairs=tuple(self.pairs),
            depth=self.depth,
            heartbeat_interval=self.heartbeat_interval,
            max_silence=self.max_silence,
            max_heartbeat_interval=self.max_heartbeat_interval,
            ping_interval=self.ping_interval,
            snapshot_timeout=self.snapshot_timeout,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            max_mismatches=self.max_mismatches,
            max_critical_errors=self.max_critical_errors,
            halt_window=self.halt_window,
            report_interval=self.report_interval,
            top_interval=self.top_interval,
            top_levels=self.top_levels,
            segment_max_rows=self.segment_max_rows,
            segment_max_seconds=self.segment_max_seconds,
        )

    def log_path(self) -> Path:
        """The log root, resolved now (never at import)."""
        return Path(self.log_root) if self.log_root else settings.data_dir() / "stream" / "kraken"


def stream_resources(**overrides: Any) -> dict[str, Any]:
    """``{"kraken_stream": KrakenStream(**overrides)}``."""
    return {RESOURCE_KEY: KrakenStream(**overrides)}
