"""What ingest_platform/definitions.py merges: the stream's Definitions load and validate."""

from __future__ import annotations

from dagster import AssetKey, Definitions

from ingest_platform.streaming.kraken.definitions import stream_definitions
from ingest_platform.streaming.kraken.job import JOB_NAME
from ingest_platform.streaming.kraken.resources import KrakenStream


def test_the_stream_definitions_load_with_the_platform_lake(lake):
    defs = Definitions.merge(stream_definitions(), Definitions(resources={"lake": lake}))
    Definitions.validate_loadable(defs)
    tags = defs.resolve_job_def(JOB_NAME).tags
    assert tags["dagster/max_runtime"] == "0" and tags["dagster/max_retries"] == "0"
    sensor = defs.resolve_sensor_def("kraken_stream_sensor")
    assert sensor.minimum_interval_seconds == 30
    assert sensor.default_status.value == "STOPPED"
    assert AssetKey("kraken_book_minute_bars") in {
        key for a in defs.resolve_all_asset_specs() for key in [a.key]
    }
    # Settings resolve paths at use, not import: the log root follows the data dir.
    assert KrakenStream().log_path().parts[-2:] == ("stream", "kraken")
