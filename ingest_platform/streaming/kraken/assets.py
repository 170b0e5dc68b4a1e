"""The stream's assets: the live stream (observed) and its daily minute bars (materialized).

- ``kraken_order_book_stream``: an external asset; `kraken_stream_job` reports
  `AssetObservation`s for it while it streams.
- ``kraken_book_minute_bars`` (daily UTC partitions): replays and verifies a day of the log,
  then compacts it into 1-minute mid-price and spread bars in the lake (`minute_bars`). A day
  with no log, one that does not verify or an unreadable segment fails the run and writes
  nothing: an empty partition would claim the day was quiet.

(No ``from __future__ import annotations``: Dagster resolves asset annotations at runtime.)
"""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ingest_platform.core.dataset import OWNERS
from ingest_platform.core.dataset_assets import asset_kwargs, content_metadata
from ingest_platform.core.lake import ParquetLake
from ingest_platform.streaming.kraken.log.minute_bars import (
    DayNotVerified,
    NoLogForDay,
    compact_day,
)
from ingest_platform.streaming.kraken.log.segments import LogReadError
from ingest_platform.streaming.kraken.resources import KrakenStream
from ingest_platform.streaming.kraken.schemas import KRAKEN_BOOK_MINUTE_BARS

GROUP = "kraken_stream"
STREAM_ASSET_KEY = AssetKey("kraken_order_book_stream")

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


@asset(
    **asset_kwargs(
        KRAKEN_BOOK_MINUTE_BARS,
        deps=[kraken_order_book_stream],
        code_version="1",
        backfill_policy=None,
    )
)
def kraken_book_minute_bars(
    context: AssetExecutionContext, kraken_stream: KrakenStream, lake: ParquetLake
) -> MaterializeResult:
    day = context.partition_key
    root = kraken_stream.log_path()
    try:
        bars, verification = compact_day(root, day)
    except DayNotVerified as exc:
        raise Failure(
            description=str(exc),
            metadata={"mismatches": MetadataValue.int(exc.report.mismatches)},
        ) from exc
    except (NoLogForDay, LogReadError) as exc:
        raise Failure(
            description=f"{exc}; no bars written",
            metadata={"log_root": MetadataValue.path(str(root))},
        ) from exc
    if bars.empty:
        context.log.warning(f"no verified stream data for {day} under {root}: writing 0 bars")
    write = KRAKEN_BOOK_MINUTE_BARS.write(lake, {day: bars})
    return MaterializeResult(
        metadata={
            **content_metadata(write.partitions[day]),
            "symbols": MetadataValue.json(sorted(bars["symbol"].unique().tolist())),
            "book_rows_verified": MetadataValue.int(verification.verified),
            "book_rows_rejected_live": MetadataValue.int(verification.rejected_live),
            "gaps": MetadataValue.int(verification.gaps),
            "gap_minutes": MetadataValue.int(int(bars["gap"].sum())),
            "log_root": MetadataValue.path(str(root)),
        }
    )
