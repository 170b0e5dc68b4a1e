"""The stream process's /metrics endpoint, scraped over HTTP while a stream run (fan-out on)
streams from the sandbox, and parsed with prometheus-client's own parser."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request

import pytest
from dagster import DagsterEventType, DagsterInstance
from prometheus_client.parser import text_string_to_metric_families

from ingest_platform.core.metrics import BUS_METRICS, STREAM_METRICS, known_metric_names
from ingest_platform.streaming.kraken.job import kraken_stream_job
from ingest_platform.streaming.kraken.resources import KrakenFanout

# A real stream against a real nats-server for seconds: CI's, not the inner loop's.
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _scrape_while_running(port: int, after: float, out: list[str]) -> threading.Thread:
    def scrape() -> None:
        time.sleep(after)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                    out.append(r.read().decode())
                    return
            except OSError:
                time.sleep(0.1)

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    return thread


def test_the_stream_serves_its_metrics_while_it_runs(
    tmp_path, sandbox, run_config, stream_resource, nats_server
):
    server = sandbox(rate=300.0)
    port = _free_port()
    scraped: list[str] = []
    scraper = _scrape_while_running(port, 2.0, scraped)
    stream = stream_resource(
        server.url, tmp_path / "log", metrics_port=port, metrics_host="127.0.0.1"
    )
    with DagsterInstance.ephemeral() as instance:
        result = kraken_stream_job.execute_in_process(
            run_config=run_config(3.5),
            resources={
                "kraken_stream": stream,
                "kraken_fanout": KrakenFanout(nats_url=nats_server.url),
            },
            instance=instance,
        )
    scraper.join(timeout=15)
    assert result.success and scraped, "nothing scraped while the stream ran"
    final = [
        e.event_specific_data.asset_observation.metadata
        for e in result.all_events
        if e.event_type == DagsterEventType.ASSET_OBSERVATION
    ][-1]
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(scraped[0])
        for s in family.samples
    }
    names = {name for name, _ in samples}
    ours = {n for n in names if n.startswith("ingest_platform_")}
    assert ours <= known_metric_names((*STREAM_METRICS, *BUS_METRICS))  # only agreed names
    for pair in ("BTC/USD", "ETH/USD"):
        label = (("pair", pair),)
        messages = samples[("ingest_platform_stream_messages_total", label)]
        verified = samples[("ingest_platform_stream_verified_books_total", label)]
        assert 0 < verified <= messages
        assert samples[("ingest_platform_stream_checksum_failures_total", label)] == 0
        assert samples[("ingest_platform_stream_gaps_total", label)] == 0
    # mid-run figures never exceed the run's final ones
    total = sum(
        samples[("ingest_platform_stream_verified_books_total", (("pair", p),))]
        for p in ("BTC/USD", "ETH/USD")
    )
    assert total <= final["book_messages"].value
    assert samples[("ingest_platform_stream_reconnects_total", ())] == 0
    latency = samples[("ingest_platform_stream_socket_to_book_seconds_count", ())]
    assert latency > 0 and samples[("ingest_platform_stream_socket_to_book_seconds_sum", ())] > 0
    buckets = [v for (n, _), v in samples.items() if n.endswith("socket_to_book_seconds_bucket")]
    assert max(buckets) == latency  # the +Inf bucket holds every observation
    published = samples[("ingest_platform_bus_publish_seconds_count", ())]
    assert 0 < published <= final["bus_published"].value
    assert samples[("ingest_platform_bus_dropped_events_total", ())] == 0
    assert samples[("ingest_platform_bus_buffer_depth", ())] >= 0
    with socket.socket() as sock:  # the endpoint went away with the run
        assert sock.connect_ex(("127.0.0.1", port)) != 0
