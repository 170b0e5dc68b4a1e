"""The operations domain's Definitions: the alert sensors and the ``alerts`` resource.

The sensors read what the other domains record (runs, check results, materializations, the
stream's heartbeat) and need only the ``alerts`` resource of their own, plus ``kraken_stream``,
which the stream's Definitions provide.
"""

from __future__ import annotations

from dagster import Definitions

from ingest_platform.operations.resources import RESOURCE_KEY, alert_channels
from ingest_platform.operations.sensors import ALERT_SENSORS


def operations_definitions() -> Definitions:
    """Alert channels are read from the environment now (secrets through EnvVar, at tick time)."""
    return Definitions(sensors=list(ALERT_SENSORS), resources={RESOURCE_KEY: alert_channels()})
