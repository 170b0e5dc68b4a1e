"""The shared metrics module: the stream's metric set served on a live /metrics and scraped."""

from __future__ import annotations

import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from ingest_platform.core.metrics import (
    BUS_METRICS,
    STREAM_METRICS,
    known_metric_names,
    serve,
    stream_metrics,
)


def test_the_stream_metrics_are_served_and_scraped_with_the_agreed_names():
    metrics, registry = stream_metrics()
    metrics.messages.labels(pair="BTC/USD").inc(3)
    metrics.messages.labels(pair="ETH/USD").inc()
    metrics.checksum_failures.labels(pair="BTC/USD").inc()
    metrics.socket_to_book_seconds.observe(0.0003)
    metrics.socket_to_book_seconds.observe(0.002)
    metrics.bus_buffer_depth.set(7)
    server = serve(0, registry, addr="127.0.0.1")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5) as r:
            text = r.read().decode()
    finally:
        server.close()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert samples[("ingest_platform_stream_messages_total", (("pair", "BTC/USD"),))] == 3
    assert samples[("ingest_platform_stream_messages_total", (("pair", "ETH/USD"),))] == 1
    assert samples[("ingest_platform_stream_checksum_failures_total", (("pair", "BTC/USD"),))] == 1
    assert samples[("ingest_platform_stream_socket_to_book_seconds_count", ())] == 2
    assert (
        samples[("ingest_platform_stream_socket_to_book_seconds_bucket", (("le", "0.0005"),))] == 1
    )
    assert samples[("ingest_platform_bus_buffer_depth", ())] == 7
    served = {name for name, _ in samples}
    assert served <= known_metric_names((*STREAM_METRICS, *BUS_METRICS))
    assert all(name.startswith("ingest_platform_") for name in served)


def test_two_stream_registries_never_collide():
    first, _ = stream_metrics()
    second, _ = stream_metrics()  # a registry each: no "Duplicated timeseries" error
    first.reconnects.inc()
    assert second.reconnects._value.get() == 0
