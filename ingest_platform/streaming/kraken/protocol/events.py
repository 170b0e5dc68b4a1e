"""What the protocol tells its driver, besides frames to send: `KrakenProtocol.events_received`.

Events are rare (a few per connection), so they are objects; the per-message records (book
items with their checksum verdict, trades, bars, gaps) go to the `rows.RecordSink` instead.
The connection acts on `BooksSynced`; `ExchangeStatusChanged` and `Halted` are there for
whoever else listens to the stream (a bus publishing status changes and halt triggers).
"""

from __future__ import annotations

from dataclasses import dataclass

from ingest_platform.streaming.kraken.protocol.halts import Halt


@dataclass(frozen=True, slots=True)
class BooksSynced:
    """Every configured book has verified a snapshot: the connection is healthy again."""


@dataclass(frozen=True, slots=True)
class ExchangeStatusChanged:
    """The ``status`` channel reported a different system status (``online``,
    ``maintenance``, ``cancel_only``, ``post_only``...); ``previous`` is None at first."""

    status: str | None
    previous: str | None


@dataclass(frozen=True, slots=True)
class Halted:
    """The protocol halted itself: no reconnect can fix what ``halt`` names."""

    halt: Halt


ProtocolEvent = BooksSynced | ExchangeStatusChanged | Halted
