"""The stream job's fan-out resource with no bus URL: the fan-out off, as on a fresh machine."""

from ingest_platform.streaming.kraken.resources import FANOUT_RESOURCE_KEY, KrakenFanout

FANOUT_OFF = {FANOUT_RESOURCE_KEY: KrakenFanout()}
