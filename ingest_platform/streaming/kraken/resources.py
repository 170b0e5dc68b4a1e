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

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dagster import ConfigurableResource, EnvVar
from pydantic import Field

from ingest_platform.core import settings
from ingest_platform.core.object_store import path_or_url
from ingest_platform.streaming.kraken.config import StreamConfig
from ingest_platform.streaming.kraken.fanout.bus import JetStreamBus, StreamSpec
from ingest_platform.streaming.kraken.fanout.message import subjects_filter
from ingest_platform.streaming.kraken.fanout.process import StreamFanout, publisher_for
from ingest_platform.streaming.kraken.fanout.publisher import FanoutSettings

RESOURCE_KEY = "kraken_stream"
FANOUT_RESOURCE_KEY = "kraken_fanout"
NATS_URL_ENV = "INGEST_PLATFORM_NATS_URL"
NATS_USER_ENV = "INGEST_PLATFORM_NATS_USER"
NATS_PASSWORD_ENV = "INGEST_PLATFORM_NATS_PASSWORD"
NATS_TOKEN_ENV = "INGEST_PLATFORM_NATS_TOKEN"
NATS_CREDS_ENV = "INGEST_PLATFORM_NATS_CREDS"
METRICS_PORT_ENV = "INGEST_PLATFORM_STREAM_METRICS_PORT"
#: The fan-out settings that are secrets: read through EnvVar, never put in config or a log.
NATS_SECRET_ENV_VARS = (NATS_URL_ENV, NATS_PASSWORD_ENV, NATS_TOKEN_ENV)


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
    metrics_port: int = Field(
        default=-1,
        ge=-1,
        le=65535,
        strict=True,
        description=f"Serve Prometheus /metrics on this port while streaming (0: any free port; "
        f"-1: off). Default from ${METRICS_PORT_ENV}.",
    )
    metrics_host: str = Field(
        default="0.0.0.0",
        description="Address the /metrics endpoint binds (127.0.0.1: this host's scraper only).",
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


class KrakenFanout(ConfigurableResource):
    """The fan-out of verified events to NATS JetStream: off while ``nats_url`` is empty.

    The URL (it may carry credentials) and the password or token come from the environment
    through `EnvVar` (`fanout_resource`), so they are never in run config, a log or metadata.
    """

    nats_url: str = Field(
        default="",
        description=f"EnvVar('{NATS_URL_ENV}'): nats://host:4222 (comma-separated for a "
        "cluster); empty: the fan-out is off.",
    )
    nats_user: str = Field(default="", description=f"From ${NATS_USER_ENV}; empty: no user.")
    nats_password: str = Field(default="", description=f"EnvVar('{NATS_PASSWORD_ENV}').")
    nats_token: str = Field(default="", description=f"EnvVar('{NATS_TOKEN_ENV}').")
    nats_creds_file: str = Field(default="", description=f"From ${NATS_CREDS_ENV}: a .creds file.")
    stream_name: str = Field(default="KRAKEN", description="The JetStream stream.")
    subject_prefix: str = Field(default="kraken", description="Subjects: <prefix>.book.BTC_USD...")
    max_age_seconds: float = Field(default=86_400.0, gt=0, description="Stream retention: age.")
    max_bytes: int = Field(default=1 << 30, gt=0, description="Stream retention: bytes.")
    replicas: int = Field(default=1, ge=1, le=5, description="Stream replicas (cluster: 3).")
    duplicate_window_seconds: float = Field(
        default=120.0, gt=0, description="JetStream drops a repeated Nats-Msg-Id within this."
    )
    discard: str = Field(
        default="old",
        pattern="^(old|new)$",
        description="A full stream drops its oldest events ('old') or refuses new ones ('new', "
        "recorded as bus gaps).",
    )
    snapshot_every: int = Field(
        default=1000, ge=1, description="A book snapshot after this many updates of a pair."
    )
    buffer_size: int = Field(
        default=100_000, ge=1, description="Events buffered while the bus is slow or down."
    )
    ack_timeout_seconds: float = Field(
        default=2.0, gt=0, description="An event not acknowledged within this is sent again."
    )
    max_attempts: int = Field(
        default=3, ge=1, description="Sends per event before it is recorded as a bus gap."
    )
    confirm_every: int = Field(
        default=64,
        ge=1,
        description="Publishes per JetStream acknowledgement at most: one answer settles the "
        "group by its stream sequence, and a group that does not add up is sent again one by "
        "one. 1: an acknowledgement for every publish (where other writers share the stream).",
    )

    publisher_process: bool = Field(
        default=True,
        description="Publish from a process of its own (the stream's loop only hands the verified "
        "events over); off: on the stream's own event loop.",
    )

    @property
    def enabled(self) -> bool:
        return bool(self.nats_url.strip())

    def stream_spec(self) -> StreamSpec:
        return StreamSpec(
            name=self.stream_name,
            subjects=(subjects_filter(self.subject_prefix),),
            max_age_seconds=self.max_age_seconds,
            max_bytes=self.max_bytes,
            replicas=self.replicas,
            duplicate_window_seconds=self.duplicate_window_seconds,
            discard=self.discard,
        )

    def fanout_settings(self) -> FanoutSettings:
        return FanoutSettings(
            snapshot_every=self.snapshot_every,
            buffer_size=self.buffer_size,
            ack_timeout=self.ack_timeout_seconds,
            max_attempts=self.max_attempts,
            confirm_every=self.confirm_every,
            prefix=self.subject_prefix,
            stream=self.stream_spec(),
        )

    def bus(self) -> JetStreamBus:
        return JetStreamBus(
            self.nats_url,
            user=self.nats_user or None,
            password=self.nats_password or None,
            token=self.nats_token or None,
            creds_file=self.nats_creds_file or None,
            stream=self.stream_name,
        )

    def publisher(self, pairs: Sequence[str]) -> StreamFanout | None:
        """A publisher for these pairs, or None when the fan-out is off: in a process of its
        own unless ``publisher_process`` is off."""
        if not self.enabled:
            return None
        return publisher_for(
            self.bus(), pairs, self.fanout_settings(), process=self.publisher_process
        )


def fanout_resource(**overrides: Any) -> KrakenFanout:
    """The fan-out as the environment configures it when the definitions are built: the URL
    and secrets as EnvVar (resolved when the run starts), the rest as plain values."""
    values: dict[str, Any] = {}
    for field_name, env_name in (
        ("nats_url", NATS_URL_ENV),
        ("nats_password", NATS_PASSWORD_ENV),
        ("nats_token", NATS_TOKEN_ENV),
    ):
        if settings.env(env_name):
            values[field_name] = EnvVar(env_name)
    for field_name, env_name in (("nats_user", NATS_USER_ENV), ("nats_creds_file", NATS_CREDS_ENV)):
        value = settings.env(env_name)
        if value:
            values[field_name] = value
    return KrakenFanout(**{**values, **overrides})


def _metrics_port() -> dict[str, Any]:
    port = settings.env(METRICS_PORT_ENV)
    if port is None:
        return {}
    if not port.lstrip("-").isdigit():
        raise ValueError(f"{METRICS_PORT_ENV}={port!r} is not a port number")
    return {"metrics_port": int(port)}


def stream_resources(**overrides: Any) -> dict[str, Any]:
    """``{"kraken_stream": KrakenStream(**overrides), "kraken_fanout": KrakenFanout(...)}``,
    the fan-out and the metrics port as the environment configures them."""
    return {
        RESOURCE_KEY: KrakenStream(**{**_metrics_port(), **overrides}),
        FANOUT_RESOURCE_KEY: fanout_resource(),
    }
