"""The Kraken stream's Definitions: the stream job and its sensor, the minute bars, their
checks and their daily schedule."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.core import settings
from ingest_platform.streaming.kraken.assets import (
    kraken_book_minute_bars,
    kraken_order_book_stream,
)
from ingest_platform.streaming.kraken.checks import STREAM_CHECKS
from ingest_platform.streaming.kraken.job import kraken_stream_job
from ingest_platform.streaming.kraken.resources import stream_resources
from ingest_platform.streaming.kraken.schedules import (
    kraken_book_minute_bars_daily,
    kraken_book_minute_bars_job,
)
from ingest_platform.streaming.kraken.sensor import kraken_stream_sensor


def stream_definitions() -> Definitions:
    """Needs the platform's ``lake`` resource too (core provides it), for the bars asset."""
    sandbox = settings.sandbox_kraken_url() is not None
    return Definitions(
        assets=[kraken_order_book_stream, kraken_book_minute_bars],
        asset_checks=STREAM_CHECKS,
        jobs=[kraken_stream_job, kraken_book_minute_bars_job],
        sensors=[kraken_stream_sensor],
        schedules=[kraken_book_minute_bars_daily],
        # Against the sandbox, top-of-book rows every 2 s so a short demo logs some too. (Only
        # a default: the endpoint itself is read from the environment when the stream runs.)
        resources=stream_resources(top_interval=2.0) if sandbox else stream_resources(),
    )
