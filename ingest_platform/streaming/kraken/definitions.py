"""The Kraken stream's Definitions: the stream job and sensor, the minute-bar asset."""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.core import settings
from ingest_platform.streaming.kraken.job import (
    STREAM_ASSETS,
    STREAM_JOBS,
    STREAM_SENSORS,
    stream_resources,
)


def stream_definitions() -> Definitions:
    kraken_url = settings.sandbox_kraken_url()
    return Definitions(
        assets=list(STREAM_ASSETS),
        jobs=list(STREAM_JOBS),
        sensors=list(STREAM_SENSORS),
        # Against the sandbox, top-of-book rows every 2 s so a short demo logs some too.
        resources=stream_resources(url=kraken_url, top_interval=2.0)
        if kraken_url
        else stream_resources(),
    )
