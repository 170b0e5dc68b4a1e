"""The Kraken v2 protocol on its own: frames and a clock in, frames to send and events out.

Nothing here touches a socket, a file, a thread or Dagster (an import contract in
``pyproject.toml`` holds it to that). `protocol.KrakenProtocol` is driven by the connection in
``io/`` (and by tests, frame by frame) and writes what it saw to a `rows.RecordSink` (the log
in ``log/``, or anything else that implements it). What it does:

1. **Subscribe** (`control`): ``instrument`` first, because a book's checksum needs the pair's
   ``price_precision``/``qty_precision``; on its snapshot ``book`` (configured depth), ``trade``
   and ``ohlc`` for every pair, one request per channel, one ack per symbol. An error ack is a
   critical error, retried per symbol with its own full-jitter backoff (`subscriptions`). A
   configured pair the exchange does not list halts at once: no retry can fix configuration.
2. **Route** by ``channel`` and nothing else: ``book`` items go to that symbol's `KrakenBook`
   (`books`), ``trade`` items become trade rows, ``ohlc`` items bar rows; a trade never
   touches a book. ``status``, ``heartbeat``, acks and ``pong`` are protocol; anything else is
   counted and logged, never fatal.
3. **Liveness** (`liveness`): drop the connection when nothing arrived for ``max_silence``, no
   heartbeat for ``max_heartbeat_interval``, a ping got no pong, or a subscription got no
   snapshot for ``snapshot_timeout`` (except during exchange maintenance).
4. **Resync**: a checksum mismatch (or an unparseable book item) marks that book out of sync,
   drops its updates, and unsubscribes and resubscribes that symbol for a fresh snapshot.
   Every interval in which a book was not known complete is a *gap* (`gaps`).
5. **Halt** (`halts`): too many mismatches or critical errors within the window stop the
   stream; ``halt`` is then set, a `events.Halted` event emitted and a
   ``KRAKEN_STREAM_HALT ...`` line logged at ERROR.

Settings come as a plain frozen `settings.ProtocolSettings`, the time from a `clock.Clock`.
"""
