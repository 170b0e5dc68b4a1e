"""Dagster side of the Kraken stream: one long-running op, a sensor that keeps it alive, assets.

- `KrakenStream` (resource key ``kraken_stream``): the stream settings (URL, pairs, depth,
  liveness, backoff, halt policy, log root and rolling) plus the sensor's staleness limits.
  They are validated by `StreamConfig` before anything connects.
- `kraken_stream_job`: one op that hosts the client (`StreamRunner`, a thread with its own
  event loop) until the run is cancelled. Cancellation arrives as
  ``DagsterExecutionInterruptedError`` (a ``BaseException``) in the op's thread, so the op waits
  in an interruptible queue read and stops the client in ``finally``: the socket is closed, the
  log flushed, the heartbeat file marked stopped. The job's runs carry
  ``dagster/max_runtime: 0`` so run monitoring never kills them for running "too long".
- `kraken_stream_sensor` (every 30 s) keeps exactly one run of that job queued or running:
  launches one when there is none, cancels extras, and replaces a run whose heartbeat file has
  gone stale. The decision is the plain function `decide_stream_runs`; the sensor only reads
  the instance and the heartbeat file and applies it. Default status is STOPPED: the stream
  holds a run slot forever and connects to Kraken over the internet, which a fresh checkout,
  the demo or CI must not do by merely loading the code location; operators switch it on.
- Assets: ``kraken_order_book_stream`` (an external asset the op reports `AssetObservation`s
  for: messages, resyncs, gaps, latency, and ``halted=True`` when it halts) and
  ``kraken_book_minute_bars`` (daily UTC partitions) that replays and verifies a day of the log,
  then compacts it into 1-minute mid-price and spread bars in the lake.

(No ``from __future__ import annotations`` here: Dagster resolves op and asset annotations.)

Wiring: ``STREAM_ASSETS``, ``STREAM_JOBS``, ``STREAM_SENSORS`` and ``STREAM_RESOURCES`` (the last
needs the platform's ``lake`` resource too, for the bars asset).
"""

import datetime as dt
import queue
import time
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetSpec,
    Config,
    ConfigurableResource,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    Failure,
    MaterializeResult,
    MetadataValue,
    OpExecutionContext,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    asset,
    job,
    op,
    sensor,
)
from pydantic import Field

from ingest_platform.core import settings
from ingest_platform.core.dataset import OWNERS
from ingest_platform.core.lake import ParquetLake
from ingest_platform.streaming.kraken import log as stream_log
from ingest_platform.streaming.kraken.config import KRAKEN_WS_URL, StreamConfig, StreamConfigError
from ingest_platform.streaming.kraken.connection import StreamResult, open_stream
from ingest_platform.streaming.kraken.heartbeat import read_heartbeat
from ingest_platform.streaming.kraken.replay import ReplayReport, replay
from ingest_platform.streaming.kraken.runner import StreamRunner
from ingest_platform.streaming.kraken.schemas import KRAKEN_BOOK_MINUTE_BARS

GROUP = "kraken_stream"
JOB_NAME = "kraken_stream_job"
RESOURCE_KEY = "kraken_stream"
STREAM_ASSET_KEY = AssetKey("kraken_order_book_stream")
BARS_DATASET = "kraken_book_minute_bars"
RUN_TAGS = {"dagster/max_runtime": "0", "ingest_platform/stream": "kraken"}
#: Statuses in which a run counts as "the stream" (waiting or running).
ACTIVE_STATUSES = (
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
)
_STARTED = DagsterRunStatus.STARTED.value


# ---- settings --------------------------------------------------------------------------------


class KrakenStream(ConfigurableResource):
    """Settings of the Kraken L2 stream, its log and the sensor that keeps it running."""

    url: str = Field(default=KRAKEN_WS_URL, description="Kraken WebSocket v2 URL (or a sandbox).")
    pairs: list[str] = Field(
        default=["BTC/USD", "ETH/USD"], description="Pairs to stream, as 'BASE/QUOTE'."
    )
    depth: int = Field(default=10, description="Book depth: 10, 25, 100, 500 or 1000.")
    log_root: str = Field(
        default="",
        description="Stream log directory; empty: <data dir>/stream/kraken "
        "($INGEST_PLATFORM_DATA_DIR). Must be shared with the sensor's host.",
    )
    heartbeat_interval: float = Field(default=1.0, description="Exchange heartbeat cadence, s.")
    max_silence: float = Field(default=5.0, description="Reconnect after this long with no data.")
    max_heartbeat_interval: float = Field(
        default=5.0, description="Reconnect after this long with no heartbeat."
    )
    ping_interval: float = Field(default=30.0, description="Application ping cadence; 0: off.")
    snapshot_timeout: float = Field(default=15.0, description="Longest wait for a snapshot.")
    backoff_base: float = Field(default=0.5, description="Reconnect backoff base, s.")
    backoff_cap: float = Field(default=30.0, description="Reconnect backoff cap, s.")
    max_mismatches: int = Field(default=10, description="Checksum mismatches per window: halt.")
    max_critical_errors: int = Field(default=10, description="Critical errors per window: halt.")
    halt_window: float = Field(default=300.0, description="Halt window, s.")
    report_interval: float = Field(
        default=60.0, description="Seconds between stream observations in Dagster."
    )
    top_interval: float = Field(default=30.0, description="Seconds between top-N book rows.")
    top_levels: int = Field(default=10, description="Levels per side in top-N book rows.")
    segment_max_rows: int = Field(default=50_000, description="Roll a log segment at N rows.")
    segment_max_seconds: float = Field(
        default=300.0, description="Roll a log segment after N seconds."
    )
    stale_after_seconds: float = Field(
        default=120.0, description="Sensor: a heartbeat file older than this means a dead stream."
    )
    start_grace_seconds: float = Field(
        default=180.0, description="Sensor: a started run gets this long to write a heartbeat."
    )
    halt_cooldown_seconds: float = Field(
        default=600.0, description="Sensor: after a halt, wait this long before relaunching."
    )
    freeze_gc: bool = Field(
        default=True,
        description="gc.freeze() the run's process before streaming: keeps full garbage "
        "collections, which pause the event loop, short (the process only hosts the stream).",
    )

    def stream_config(self) -> StreamConfig:
        """The validated client configuration (raises `StreamConfigError`, naming the field)."""
        return StreamConfig(
            url=self.url,
            pairs=tuple(self.pairs),
            depth=self.depth,
            heartbeat_interval=self.heartbeat_interval,
            max_silence=self.max_silence,
            max_heartbeat_interval=self.max_heartbeat_interval,
            ping_interval=self.ping_interval,
            snapshot_timeout=self.snapshot_timeout,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            max_mismatches=self.max_mismatches,
            max_critical_errors=self.max_critical_errors,
            halt_window=self.halt_window,
            report_interval=self.report_interval,
            top_interval=self.top_interval,
            top_levels=self.top_levels,
            segment_max_rows=self.segment_max_rows,
            segment_max_seconds=self.segment_max_seconds,
        )

    def log_path(self) -> Path:
        """The log root, resolved now (never at import)."""
        return Path(self.log_root) if self.log_root else settings.data_dir() / "stream" / "kraken"


# ---- the long-running op ---------------------------------------------------------------------


class KrakenStreamRunConfig(Config):
    run_seconds: float = Field(
        default=0.0,
        description="Stop after this many seconds (demos, tests); 0 streams until cancelled.",
    )


def observation_metadata(report: Mapping[str, Any]) -> dict[str, Any]:
    """Dagster metadata for a stream statistics report (see `KrakenStreamClient.report`)."""
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
    that runs for days must yield. Returns the client's result (``result = yield from ...``);
    raises `Failure` on invalid settings or a halt, after yielding the halted observation.
    """
    try:
        config = stream.stream_config()
    except StreamConfigError as exc:
        raise Failure(description=f"invalid Kraken stream configuration: {exc}") from exc
    root = stream.log_path()
    client = open_stream(config, config.url, root, run_id=context.run_id)
    runner = StreamRunner[StreamResult](
        client, duration=run_seconds or None, freeze_gc=stream.freeze_gc
    )
    context.log.info(
        f"Kraken stream starting: {config.url} pairs={list(config.pairs)} depth={config.depth} "
        f"log={root} session={client.session}"
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
    description="The long-running Kraken stream; kept alive by kraken_stream_sensor.",
)
def kraken_stream_job() -> None:
    kraken_stream_op()


# ---- the sensor ------------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamRun:
    """What the sensor needs to know about one active run of the stream job."""

    run_id: str
    status: str  # a DagsterRunStatus value
    created_at: float
    started_at: float | None = None


@dataclass(frozen=True)
class SensorDecision:
    launch: bool
    terminate: tuple[str, ...]
    keep: str | None
    reason: str


def decide_stream_runs(
    runs: Sequence[StreamRun],
    heartbeat: Mapping[str, Any] | None,
    now: float,
    stale_after: float,
    start_grace: float,
    halt_cooldown: float = 600.0,
) -> SensorDecision:
    """Which runs to cancel and whether to launch one, so that exactly one stream runs.

    - No active run: launch, unless the stream halted less than ``halt_cooldown`` ago (a halt
      means mismatches or errors an operator must look at; relaunching at once would only
      repeat it).
    - Several: keep the one the heartbeat file names, else the earliest started, else the
      oldest queued; cancel the others.
    - The kept run, if started: stale when its heartbeat is older than ``stale_after``, or
      when it has written none ``start_grace`` after starting. Stale: cancel it and launch.
      Queued or starting runs are left to the run queue and run monitoring.
    """
    if not runs:
        if heartbeat and heartbeat.get("halt") and heartbeat.get("state") == "halted":
            halted_at = float(heartbeat["halt"].get("at") or heartbeat.get("updated_at") or 0)
            if now - halted_at < halt_cooldown:
                return SensorDecision(
                    False,
                    (),
                    None,
                    f"stream halted {now - halted_at:.0f} s ago "
                    f"({heartbeat['halt'].get('reason')}); relaunch after {halt_cooldown:.0f} s",
                )
        return SensorDecision(True, (), None, "no stream run is queued or running")
    beat_run = heartbeat.get("run_id") if heartbeat else None
    named = [r for r in runs if r.run_id == beat_run]
    started = sorted(
        (r for r in runs if r.status == _STARTED), key=lambda r: r.started_at or r.created_at
    )
    if named:
        keep = named[0]
    elif started:
        keep = started[0]
    else:
        keep = min(runs, key=lambda r: r.created_at)
    extras = tuple(r.run_id for r in runs if r.run_id != keep.run_id)
    reason = f"keeping run {keep.run_id}"
    if extras:
        reason += f"; cancelling {len(extras)} extra run(s)"
    if keep.status != _STARTED:
        return SensorDecision(False, extras, keep.run_id, f"{reason} ({keep.status})")
    if beat_run == keep.run_id and heartbeat is not None:
        age = now - float(heartbeat.get("updated_at") or 0)
        if age > stale_after:
            return SensorDecision(
                True,
                (*extras, keep.run_id),
                None,
                f"run {keep.run_id}: heartbeat {age:.0f} s old (> {stale_after:.0f} s); replacing",
            )
        return SensorDecision(False, extras, keep.run_id, f"{reason}: heartbeat {age:.0f} s old")
    running_for = now - (keep.started_at or keep.created_at)
    if running_for > start_grace:
        return SensorDecision(
            True,
            (*extras, keep.run_id),
            None,
            f"run {keep.run_id}: no heartbeat {running_for:.0f} s after starting; replacing",
        )
    return SensorDecision(False, extras, keep.run_id, f"{reason}: starting, no heartbeat yet")


def active_stream_runs(instance: DagsterInstance) -> list[StreamRun]:
    records = instance.get_run_records(
        filters=RunsFilter(job_name=JOB_NAME, statuses=list(ACTIVE_STATUSES))
    )
    return [
        StreamRun(
            run_id=record.dagster_run.run_id,
            status=record.dagster_run.status.value,
            created_at=record.create_timestamp.timestamp(),
            started_at=record.start_time,
        )
        for record in records
    ]


def cancel_stream_run(instance: DagsterInstance, run_id: str, reason: str) -> str:
    """Cancel through the run coordinator; a run it cannot stop is marked failed."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.is_finished:
        return "finished"
    try:
        if instance.run_coordinator.cancel_run(run_id):
            return "cancelled"
    except Exception as exc:  # e.g. a launcher that cannot terminate
        reason = f"{reason} (cancel failed: {exc})"
    instance.report_run_failed(run, f"kraken_stream_sensor: {reason}")
    return "marked_failed"


@sensor(
    name="kraken_stream_sensor",
    job=kraken_stream_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.STOPPED,
    description="Keeps exactly one kraken_stream_job run queued or running; replaces stale ones.",
)
def kraken_stream_sensor(context: SensorEvaluationContext, kraken_stream: KrakenStream):
    try:
        kraken_stream.stream_config()
    except StreamConfigError as exc:
        return SkipReason(f"invalid Kraken stream configuration: {exc}")
    now = time.time()
    decision = decide_stream_runs(
        active_stream_runs(context.instance),
        read_heartbeat(kraken_stream.log_path()),
        now,
        kraken_stream.stale_after_seconds,
        kraken_stream.start_grace_seconds,
        kraken_stream.halt_cooldown_seconds,
    )
    for run_id in decision.terminate:
        outcome = cancel_stream_run(context.instance, run_id, decision.reason)
        context.log.warning(f"kraken stream run {run_id}: {outcome} ({decision.reason})")
    if decision.launch:
        return RunRequest(
            run_key=f"kraken-stream-{int(now * 1000)}",
            tags={**RUN_TAGS, "ingest_platform/launch_reason": decision.reason[:200]},
        )
    return SkipReason(decision.reason)


# ---- assets ----------------------------------------------------------------------------------

kraken_order_book_stream = AssetSpec(
    key=STREAM_ASSET_KEY,
    group_name=GROUP,
    owners=list(OWNERS),
    kinds={"websocket", "parquet"},
    description=(
        "The live Kraken L2 stream: verified books, trades and OHLC bars written to the "
        "replayable log by kraken_stream_job. Observed (not materialized) with its statistics: "
        "messages, resyncs, gaps, checksum failures, latency, and halted=True on a halt."
    ),
)

_TRADE_BAR_COLUMNS = ["recv_ts", "symbol", "type", "price", "qty", "trade_id"]


class TopOfBook:
    """Collects the best bid and ask after every verified book row (a replay ``on_verified``)."""

    def __init__(self) -> None:
        self.symbol: list[str] = []
        self.recv_ts: list[Any] = []
        self.session: list[str] = []
        self.seq: list[int] = []
        self.bid: list[float] = []
        self.ask: list[float] = []

    def __call__(self, row: dict[str, Any], book: Any) -> None:
        bid, ask = book.best_bid(), book.best_ask()
        if bid is None or ask is None:
            return
        self.symbol.append(row["symbol"])
        self.recv_ts.append(row["recv_ts"])
        self.session.append(row["session"])
        self.seq.append(row["seq"])
        self.bid.append(float(bid[0]))
        self.ask.append(float(ask[0]))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "symbol": pd.Series(self.symbol, dtype="object"),
                "recv_ts": pd.to_datetime(pd.Series(self.recv_ts, dtype="object"), utc=True),
                "session": pd.Series(self.session, dtype="object"),
                "seq": pd.Series(self.seq, dtype="int64"),
                "best_bid": pd.Series(self.bid, dtype="float64"),
                "best_ask": pd.Series(self.ask, dtype="float64"),
            }
        )


def minute_bars(
    tops: pd.DataFrame, trades: pd.DataFrame, gaps: pd.DataFrame, day: str
) -> pd.DataFrame:
    """1-minute mid/spread bars of one UTC day.

    ``tops`` has the best bid and ask after every verified book row (`TopOfBook`), so a bar
    only ever describes a book whose checksum matched. Trades are the live ones
    (``type == "update"``; a resubscribe's snapshot repeats old trades), once per id.
    """
    start = pd.Timestamp(day, tz="UTC")
    end = start + pd.Timedelta(days=1)
    columns = KRAKEN_BOOK_MINUTE_BARS.columns
    rows = tops[(tops["recv_ts"] >= start) & (tops["recv_ts"] < end)]
    if rows.empty:
        return KRAKEN_BOOK_MINUTE_BARS.empty_frame()[columns]
    rows = rows.sort_values(["recv_ts", "session", "seq"], kind="stable")
    bid, ask = rows["best_bid"], rows["best_ask"]
    frame = pd.DataFrame(
        {
            "symbol": rows["symbol"].to_numpy(),
            "minute": rows["recv_ts"].dt.floor("min"),
            "mid": ((bid + ask) / 2).to_numpy(),
            "spread": (ask - bid).to_numpy(),
        }
    )
    grouped = frame.groupby(["symbol", "minute"], sort=True)
    bars = grouped.agg(
        mid_open=("mid", "first"),
        mid_high=("mid", "max"),
        mid_low=("mid", "min"),
        mid_close=("mid", "last"),
        spread_mean=("spread", "mean"),
        spread_min=("spread", "min"),
        spread_max=("spread", "max"),
        book_updates=("mid", "size"),
    ).reset_index()

    live = trades[(trades["type"] == "update") & trades["recv_ts"].between(start, end, "left")]
    live = live.drop_duplicates(["symbol", "trade_id"], keep="first")
    if live.empty:
        bars["trades"] = 0
        bars["trade_volume"] = 0.0
        bars["trade_vwap"] = float("nan")
    else:
        qty = live["qty"].astype(float)
        per_trade = pd.DataFrame(
            {
                "symbol": live["symbol"].to_numpy(),
                "minute": pd.to_datetime(live["recv_ts"].dt.floor("min").to_numpy(), utc=True),
                "qty": qty.to_numpy(),
                "notional": (qty * live["price"].astype(float)).to_numpy(),
            }
        )
        traded = (
            per_trade.groupby(["symbol", "minute"])
            .agg(trades=("qty", "size"), trade_volume=("qty", "sum"), notional=("notional", "sum"))
            .reset_index()
        )
        bars = bars.merge(traded, on=["symbol", "minute"], how="left")
        bars["trades"] = bars["trades"].fillna(0).astype("int64")
        bars["trade_volume"] = bars["trade_volume"].fillna(0.0)
        bars["trade_vwap"] = (bars["notional"] / bars["trade_volume"]).where(
            bars["trade_volume"] > 0
        )
        bars = bars.drop(columns=["notional"])

    bars["gap"] = False
    book_gaps = gaps[gaps["channel"] == "book"] if not gaps.empty else gaps
    minute_end = bars["minute"] + pd.Timedelta(minutes=1)
    for gap in book_gaps.itertuples(index=False):
        gap_end = gap.end_ts if pd.notna(gap.end_ts) else end
        overlap = (
            (bars["symbol"] == gap.symbol)
            & (minute_end > gap.start_ts)
            & (bars["minute"] <= gap_end)
        )
        bars.loc[overlap, "gap"] = True
    return bars[columns]


def compact_day(root: str | Path, day: str) -> tuple[pd.DataFrame, ReplayReport]:
    """Replay and verify one UTC day of the log, and build its minute bars.

    Raises `Failure` (nothing is built) when the day's log does not verify.
    """
    tops = TopOfBook()
    verification = replay(root, [day], on_verified=tops)
    if not verification.ok:
        raise Failure(
            description=f"the {day} stream log does not verify; no bars written.\n"
            + verification.summary(),
            metadata={"mismatches": MetadataValue.int(verification.mismatches)},
        )

    def frame(kind: str, columns: list[str] | None = None) -> pd.DataFrame:
        table = stream_log.read_kind(root, kind, [day], columns)
        return table.to_pandas(coerce_temporal_nanoseconds=True)

    bars = minute_bars(tops.frame(), frame("trade", _TRADE_BAR_COLUMNS), frame("gap"), day)
    return bars, verification


@asset(
    **KRAKEN_BOOK_MINUTE_BARS.asset_kwargs(
        deps=[kraken_order_book_stream], code_version="1", backfill_policy=None
    )
)
def kraken_book_minute_bars(
    context: AssetExecutionContext, kraken_stream: KrakenStream, lake: ParquetLake
) -> MaterializeResult:
    day = context.partition_key
    root = kraken_stream.log_path()
    bars, verification = compact_day(root, day)
    if bars.empty:
        context.log.warning(f"no verified stream data for {day} under {root}: writing 0 bars")
    write = KRAKEN_BOOK_MINUTE_BARS.write(lake, {day: bars})
    return MaterializeResult(
        metadata={
            **write.partitions[day].metadata(),
            "symbols": MetadataValue.json(sorted(bars["symbol"].unique().tolist())),
            "book_rows_verified": MetadataValue.int(verification.verified),
            "book_rows_rejected_live": MetadataValue.int(verification.rejected_live),
            "gaps": MetadataValue.int(verification.gaps),
            "gap_minutes": MetadataValue.int(int(bars["gap"].sum())),
            "log_root": MetadataValue.path(str(root)),
        }
    )


# ---- what definitions.py wires ---------------------------------------------------------------

STREAM_ASSETS = (kraken_order_book_stream, kraken_book_minute_bars)
STREAM_JOBS = (kraken_stream_job,)
STREAM_SENSORS = (kraken_stream_sensor,)
#: Resources these need besides the platform's ``lake`` (ParquetLake), which the bars use.
STREAM_RESOURCES: dict[str, Any] = {RESOURCE_KEY: KrakenStream()}


def stream_resources(**overrides: Any) -> dict[str, Any]:
    """``{"kraken_stream": KrakenStream(**overrides)}``, e.g. ``url=`` a sandbox for demos."""
    return {RESOURCE_KEY: KrakenStream(**overrides)}


def utc_day(ts: float) -> str:
    """The stream partition key (UTC day) of an epoch time."""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d")
