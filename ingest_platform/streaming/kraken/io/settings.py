"""What the connection needs besides the protocol's settings, as a plain frozen value.

`StreamSettings` holds the `ProtocolSettings` and the settings only the driver uses (the
handshake timeout, how often it writes the heartbeat file, reports and top-of-book rows, when
the log rolls a segment). The Dagster config (`config.StreamConfig.stream_settings`) maps onto
it at the edge; defaults are the ones the Dagster config shows (it reads them from here).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest_platform.streaming.kraken.protocol.settings import ProtocolSettings, check_positive


@dataclass(frozen=True)
class StreamSettings:
    """The protocol's settings plus the driver's; intervals are seconds."""

    protocol: ProtocolSettings = field(default_factory=ProtocolSettings)
    connect_timeout: float = 10.0
    status_interval: float = 1.0
    report_interval: float = 60.0
    top_interval: float = 30.0
    segment_max_rows: int = 50_000
    segment_max_seconds: float = 300.0

    def __post_init__(self) -> None:
        if not isinstance(self.protocol, ProtocolSettings):
            raise TypeError(
                f"StreamSettings.protocol must be a ProtocolSettings, got {type(self.protocol)}"
            )
        check_positive(
            self,
            ("connect_timeout", "status_interval", "report_interval", "segment_max_seconds"),
            ("top_interval",),
            ("segment_max_rows",),
        )
