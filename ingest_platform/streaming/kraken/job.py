"""The long-running stream op and its job.

`kraken_stream_job` is one op that hosts the connection (`StreamRunner`: a thread with its own
event loop) until the run is cancelled. Cancellation arrives as
``DagsterExecutionInterruptedError`` (a ``BaseException``) in the op's thread, so the op waits
in an interruptible queue read and stops the stream in ``finally``: the socket is closed, the
log flushed, the heartbeat file marked stopped. The job's runs carry ``dagster/max_runtime: 0``
so run monitoring never kills them for running "too long", and ``dagster/max_retries: 0`` so
run retries never start a second stream beside the sensor's replacement; it executes in the
run worker's own process, so a killed worker leaves no orphaned stream. While it streams,
the op yields `AssetObservation`s of ``kraken_order_book_stream`` (messages, resyncs, gaps, latency,
``halted=True`` on a halt): a yielded event reaches Dagster at once, a logged one only when
the op ends.

(No ``from __future__ import annotations``: Dagster resolves op annotations at runtime.)
"""

import asyncio
import logging
import queue
from collections.abc import Generator, Iterator, Mapping
from typing import Any

from dagster import (
    AssetObservation,
    Config,
    Failure,
    MetadataValue,
    OpExecutionContext,
    in_process_executor,
    job,
    op,
)
from pydantic import Field

from ingest_platform.core.metrics import MetricsServer, serve, stream_metrics
from ingest_platform.streaming.kraken.assets import STREAM_ASSET_KEY
from ingest_platform.streaming.kraken.config import stream_url
from ingest_platform.streaming.kraken.fanout.bus import BusError, StreamConfigMismatch, redact_url
from ingest_platform.streaming.kraken.io.connection import open_stream
from ingest_platform.streaming.kraken.io.runner import StreamRunner
from ingest_platform.streaming.kraken.io.status import StreamResult
from ingest_platform.streaming.kraken.resources import KrakenFanout, KrakenStream

logger = logging.getLogger(__name__)

JOB_NAME = "kraken_stream_job"
RUN_TAGS = {
    "dagster/max_runtime": "0",  # run monitoring: a stream has no maximum runtime
    "dagster/max_retries": "0",  # run retries: only kraken_stream_sensor replaces a stream run
    "ingest_platform/stream": "kraken",
}


class KrakenStreamRunConfig(Config):
    run_seconds: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        description="Stop after this many seconds (demos, tests); unset: stream until cancelled.",
    )


def observation_metadata(report: Mapping[str, Any]) -> dict[str, Any]:
    """Dagster metadata for a stream statistics report (see `KrakenConnection.report`)."""
    latency = report.get("latency_ms") or {}
    meta: dict[str, Any] = {
        "state": MetadataValue.text(str(report.get("state"))),
        "session": MetadataValue.text(str(report.get("session"))),
        "messages": MetadataValue.int(int(report.get("messages_total", 0))),
        "book_messages": MetadataValue.int(int(report.get("book_messages", 0))),
        "trades": MetadataValue.int(int(report.get("trades", 0))),
        "ohlc_bars": MetadataValue.int(int(report.get("ohlc_bars", 0))),
        "resyncs": MetadataValue.int(int(report.get("resyncs", 0))),
        "reconnects": MetadataValue.int(int(report.get("reconnects", 0))),
        "gaps": MetadataValue.int(int(report.get("gaps", 0))),
        "open_gaps": MetadataValue.int(int(report.get("open_gaps", 0))),
        "checksum_failures": MetadataValue.int(int(report.get("checksum_failures", 0))),
        "critical_errors": MetadataValue.int(int(report.get("critical_errors", 0))),
        "halted": MetadataValue.bool(report.get("halt") is not None),
        "messages_by_channel": MetadataValue.json(dict(report.get("messages") or {})),
        "log_rows": MetadataValue.json(dict(report.get("log_rows") or {})),
    }
    for name in ("p50", "p95", "p99", "max"):
        if name in latency:
            meta[f"latency_{name}_ms"] = MetadataValue.float(round(float(latency[name]), 4))
    if report.get("last_message_at"):
        meta["last_message_at"] = MetadataValue.timestamp(float(report["last_message_at"]))
    if report.get("halt"):
        meta["halt"] = MetadataValue.json(dict(report["halt"]))
    bus = report.get("bus")
    if bus:
        meta["bus_state"] = MetadataValue.text(str(bus.get("state")))
        for name in ("published", "buffered", "dropped", "unacked", "gaps", "epochs"):
            meta[f"bus_{name}"] = MetadataValue.int(int(bus.get(name) or 0))
        meta["bus_gaps_recent"] = MetadataValue.json(list(bus.get("recent_gaps") or []))
    return meta


def check_bus(fanout: KrakenFanout, timeout: float = 5.0) -> str | None:
    """Before streaming: the stream on the bus is created, or verified against the settings.

    Raises `Failure` when it exists with another configuration (never reconfigured silently);
    returns why the bus could not be reached (the stream starts anyway: the publisher keeps
    trying, and the book never waits for it), or None when all is well.
    """

    async def check() -> None:
        bus = fanout.bus()
        try:
            async with asyncio.timeout(timeout):
                await bus.connect()
                await bus.ensure_stream(fanout.stream_spec())
        finally:
            await bus.close()

    try:
        asyncio.run(check())
    except StreamConfigMismatch as exc:
        raise Failure(description=str(exc)) from None
    except BusError as exc:
        return str(exc)
    except TimeoutError:
        return f"NATS at {redact_url(fanout.nats_url)}: no answer within {timeout:g} s"
    return None


def run_stream(
    context: OpExecutionContext,
    stream: KrakenStream,
    run_seconds: float | None = None,
    poll_seconds: float = 0.5,
    fanout: KrakenFanout | None = None,
) -> Generator[AssetObservation, None, StreamResult]:
    """The op's body: host the client, yield its reports as observations, stop in ``finally``.

    A generator because Dagster emits what an op *yields* as it happens, while events passed
    to ``context.log_event`` wait until the op returns (and are lost if it fails): a stream
    that runs for days must yield. Returns the stream's result (``result = yield from ...``);
    raises `Failure` on a halt (after yielding the halted observation) and when the stream
    ended without ever getting a subscription acknowledged. The endpoint comes from the
    environment (`stream_url`); the settings were validated when the resource was built, and
    map onto the plain settings the connection takes (`StreamConfig.stream_settings`).

    With the fan-out on (``fanout`` with a URL), every verified event is also published to
    NATS JetStream; the stream on the bus is checked first (`check_bus`). With
    ``stream.metrics_port`` >= 0, Prometheus metrics are served while the stream runs.
    """
    settings = stream.stream_settings()
    url = stream_url()
    root = stream.log_path()
    publisher = None
    if fanout is not None and fanout.enabled:
        problem = check_bus(fanout)
        if problem is not None:
            context.log.warning(f"Kraken fan-out: bus unreachable ({problem}); streaming anyway")
        publisher = fanout.publisher(stream.pairs)
    metrics, registry = stream_metrics() if stream.metrics_port >= 0 else (None, None)
    client = open_stream(
        settings,
        url,
        root,
        run_id=context.run_id,
        status_root=stream.heartbeat_path(),
        fanout=publisher,
        metrics=metrics,
    )
    runner = StreamRunner[StreamResult](client, duration=run_seconds, freeze_gc=stream.freeze_gc)
    server: MetricsServer | None = None
    if registry is not None:
        server = serve(stream.metrics_port, registry, addr=stream.metrics_host)
        context.log.info(f"Kraken stream metrics on port {server.port} (/metrics)")
    fanout_note = " fan-out=off"
    if fanout is not None and publisher is not None:
        fanout_note = f" fan-out={fanout.stream_name} ({fanout.subject_prefix}.>)"
    context.log.info(
        f"Kraken stream starting: {url} pairs={list(stream.pairs)} depth={stream.depth} "
        f"log={root} session={client.log_session}{fanout_note}"
    )
    result: StreamResult | None = None
    halt_observed = False
    closing = False
    runner.start()
    try:
        while result is None:
            try:
                kind, payload = runner.events.get(timeout=poll_seconds)
            except queue.Empty:
                if not runner.is_alive() and runner.events.empty():
                    break
                continue
            if kind == "report":
                halt_observed = halt_observed or payload.get("halt") is not None
                yield AssetObservation(
                    asset_key=STREAM_ASSET_KEY, metadata=observation_metadata(payload)
                )
            elif kind == "done":
                result = payload
            elif kind == "error":
                raise payload
    except GeneratorExit:
        # Closed without being resumed: Dagster abandoned the step (an interrupt landed in
        # its own event write) and the garbage collector is closing this generator, possibly
        # in the middle of another event write on this thread. Logging through
        # ``context.log`` here would write an event re-entrantly and deadlock on the event
        # log's lock, so the lines below go to the process's own logger.
        closing = True
        raise
    finally:
        # Also on DagsterExecutionInterruptedError (run cancelled) and GeneratorExit: stop the
        # client, which closes the socket and flushes the log, before the process goes away.
        log: Any = logger if closing else context.log
        if not runner.stop(timeout=30):
            log.error("Kraken stream thread did not stop within 60 s")
        elif result is None and runner.result is not None:
            log.info("Kraken stream stopped (run cancelled); log flushed")
        if server is not None:
            server.close()
    if result is None:
        raise Failure(description="Kraken stream thread ended without a result")
    if result.halt is not None:
        halt = result.halt
        if not halt_observed:
            yield AssetObservation(
                asset_key=STREAM_ASSET_KEY, metadata=observation_metadata(result.stats)
            )
        context.log.error(halt.log_line())
        raise Failure(
            description=f"Kraken stream halted: {halt.reason}: {halt.detail}",
            metadata={
                "halted": MetadataValue.bool(True),
                "reason": MetadataValue.text(halt.reason),
                "mismatches": MetadataValue.int(halt.mismatches),
                "critical_errors": MetadataValue.int(halt.critical_errors),
            },
        )
    if not result.subscribed:
        # Stopped (run_seconds ran out) without ever getting data: not a success, whatever
        # the reason (an unreachable endpoint, a refused handshake, no answer at all).
        raise Failure(
            description=f"Kraken stream never subscribed to {url}: "
            f"{result.last_error or 'no subscription was acknowledged'}",
            metadata={
                "url": MetadataValue.text(url),
                "connect_failures": MetadataValue.int(int(result.stats["connect_failures"])),
            },
        )
    context.log.info(
        f"Kraken stream stopped: {result.stats.get('messages_total', 0)} messages, "
        f"{result.stats.get('gaps', 0)} gaps, {result.stats.get('resyncs', 0)} resyncs"
    )
    return result


@op(
    name="kraken_stream",
    description="Stream Kraken L2 books, trades and OHLC into the replayable log until cancelled.",
    tags={"kind": "websocket"},
    out={},  # no outputs: it yields observations of kraken_order_book_stream as it streams
)
def kraken_stream_op(
    context: OpExecutionContext,
    config: KrakenStreamRunConfig,
    kraken_stream: KrakenStream,
    kraken_fanout: KrakenFanout,
) -> Iterator[AssetObservation]:
    yield from run_stream(context, kraken_stream, config.run_seconds, fanout=kraken_fanout)


@job(
    name=JOB_NAME,
    tags=RUN_TAGS,
    # In the run worker's own process: with the default multiprocess executor the op runs in a
    # child step process, and a run worker that dies (SIGKILL, an OOM kill) leaves that child
    # streaming on as an orphan: the run is marked failed, the sensor launches a replacement,
    # and two streams then write one log and one heartbeat file. In process, the worker's
    # death is the stream's death (the kernel closes its socket). One op gains nothing from a
    # separate process anyway.
    executor_def=in_process_executor,
    description="The long-running Kraken stream; kept alive by kraken_stream_sensor.",
)
def kraken_stream_job() -> None:
    kraken_stream_op()
