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

from ingest_platform.streaming.kraken.assets import STREAM_ASSET_KEY
from ingest_platform.streaming.kraken.config import stream_url
from ingest_platform.streaming.kraken.io.connection import open_stream
from ingest_platform.streaming.kraken.io.runner import StreamRunner
from ingest_platform.streaming.kraken.io.status import StreamResult
from ingest_platform.streaming.kraken.resources import KrakenStream

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
    return meta


def run_stream(
    context: OpExecutionContext,
    stream: KrakenStream,
    run_seconds: float | None = None,
    poll_seconds: float = 0.5,
) -> Generator[AssetObservation, None, StreamResult]:
    """The op's body: host the client, yield its reports as observations, stop in ``finally``.

    A generator because Dagster emits what an op *yields* as it happens, while events passed
    to ``context.log_event`` wait until the op returns (and are lost if it fails): a stream
    that runs for days must yield. Returns the stream's result (``result = yield from ...``);
    raises `Failure` on a halt (after yielding the halted observation) and when the stream
    ended without ever getting a subscription acknowledged. The endpoint comes from the
    environment (`stream_url`); the settings were validated when the resource was built, and
    map onto the plain settings the connection takes (`StreamConfig.stream_settings`).
    """
    settings = stream.stream_settings()
    url = stream_url()
    root = stream.log_path()
    client = open_stream(
        settings, url, root, run_id=context.run_id, status_root=stream.heartbeat_path()
    )
    runner = StreamRunner[StreamResult](client, duration=run_seconds, freeze_gc=stream.freeze_gc)
    context.log.info(
        f"Kraken stream starting: {url} pairs={list(stream.pairs)} depth={stream.depth} "
        f"log={root} session={client.log_session}"
    )
    result: StreamResult | None = None
    halt_observed = False
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
    finally:
        # Also on DagsterExecutionInterruptedError (run cancelled) and GeneratorExit: stop the
        # client, which closes the socket and flushes the log, before the process goes away.
        if not runner.stop(timeout=30):
            context.log.error("Kraken stream thread did not stop within 60 s")
        elif result is None and runner.result is not None:
            context.log.info("Kraken stream stopped (run cancelled); log flushed")
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
    context: OpExecutionContext, config: KrakenStreamRunConfig, kraken_stream: KrakenStream
) -> Iterator[AssetObservation]:
    yield from run_stream(context, kraken_stream, config.run_seconds)


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
