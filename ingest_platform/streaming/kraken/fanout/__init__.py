"""Fan-out: every verified Kraken event, published live on a bus a consumer can re-prove.

- `message`: the wire format (version 1, JSON Schema ``kraken_event.schema.json`` beside it),
  subjects, message ids and the per-pair sequencing (epoch, gapless seq, periodic snapshots).
  Plain functions and values, no I/O (an import contract holds it to that).
- `bus`: the small `Bus` interface the publisher talks to, and `JetStreamBus` (NATS JetStream
  through ``nats-py``), the one implementation shipped. Another bus is one more class.
- `publisher`: `FanoutPublisher`, the bounded, asynchronous publisher the stream feeds from
  its event loop; it never blocks the book, and records what the bus never acknowledged as
  bus gaps.
- `sink`: `FanoutSink`, the `RecordSink` the protocol writes to: the log's rows, plus every
  verified event handed to the publisher.

The consumer side (rebuild and re-verify every book) is `ingest_platform.streaming.kraken.consume`.
"""
