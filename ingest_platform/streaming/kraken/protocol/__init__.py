"""The Kraken v2 protocol on its own: frames and a clock in, frames to send and events out.

Nothing here touches a socket, a file, a thread or Dagster (an import contract in
``pyproject.toml`` holds it to that): `protocol.KrakenProtocol` is driven by the connection in
``io/`` and by tests frame by frame, and writes what it saw to a `rows.RecordSink` (the log in
``log/``, or anything else that implements it).
"""
