"""`variable_series`: the registry's variables as one point-in-time table.

A range of months runs as one run: the economic vintages known in those months, the market
closes and crypto day-closes of the sessions that closed in them, under the registry's names.
A month whose content would not change is not rewritten.
"""

import pandas as pd
from dagster import (
    AllPartitionMapping,
    AssetDep,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from ingest_platform.core.dataset_assets import asset_kwargs, record_partitions, record_run
from ingest_platform.core.lake import LakeError, ParquetLake
from ingest_platform.core.partitioning import PartitionScheme
from ingest_platform.core.partitions import KNOWN_MONTHS
from ingest_platform.economic.schema import ECONOMIC_INDICATORS
from ingest_platform.market.schema import MARKET_BARS
from ingest_platform.reference.schema import INSTRUMENTS, TRADING_SESSIONS
from ingest_platform.registry.schema import VARIABLE_MAPPINGS
from ingest_platform.streaming.kraken.schemas import KRAKEN_BOOK_MINUTE_BARS
from ingest_platform.variables import rules
from ingest_platform.variables.schema import VARIABLE_SERIES


def source_keys(keys: list[str], source: PartitionScheme) -> list[str]:
    """The partitions of `source` (market days, stream days) whose values can become known in
    the months `keys`: their windows overlap the months, reaching back one day, because a value
    becomes known after its day (a session's close, a UTC day's end) and the day before a month
    may be known in it. Rows are then split by when they became known, so the extra day costs
    a read, never a row in the wrong month."""
    start, _ = KNOWN_MONTHS.window(keys[0])
    _, end = KNOWN_MONTHS.window(keys[-1])
    return source.keys_overlapping(start - pd.Timedelta(days=1), end)


@asset(
    **asset_kwargs(
        VARIABLE_SERIES,
        deps=[
            VARIABLE_MAPPINGS.name,
            ECONOMIC_INDICATORS.name,
            # Market days are New York days and these months are UTC months; Dagster's
            # time-window mapping refuses to map across time zones, so the dependency is on
            # every market partition and the body reads the days its months span (`_days`).
            AssetDep(MARKET_BARS.name, partition_mapping=AllPartitionMapping()),
            KRAKEN_BOOK_MINUTE_BARS.name,
            TRADING_SESSIONS.name,
        ],
        pool="lake",
    )
)
def variable_series(context: AssetExecutionContext, lake: ParquetLake) -> MaterializeResult:
    keys = sorted(context.partition_keys)
    try:
        mappings = VARIABLE_MAPPINGS.read(lake)
    except LakeError as exc:
        raise LakeError(f"{exc}; materialize the `variable_mappings` asset first") from exc
    mapped = mappings[mappings["source"].notna()]
    market_of = dict(
        zip(
            mapped.loc[mapped["source"] == "market", "series_id"],
            mapped.loc[mapped["source"] == "market", "variable"],
            strict=True,
        )
    )
    kraken_of = dict(
        zip(
            mapped.loc[mapped["source"] == "kraken", "series_id"],
            mapped.loc[mapped["source"] == "kraken", "variable"],
            strict=True,
        )
    )
    parts = [rules.from_economic(ECONOMIC_INDICATORS.read(lake, keys))]
    market_days = source_keys(keys, MARKET_BARS.scheme)
    bars = MARKET_BARS.read(lake, market_days, columns=["symbol", "date", "close", "instrument_id"])
    if len(bars):
        # By instrument, not ticker: a variable mapped to META is Meta under FB too, and a
        # ticker another company used before is not mistaken for it.
        known = INSTRUMENTS.read(lake, columns=["symbol", "calendar", "instrument_id"])
        id_of = dict(zip(known["symbol"], known["instrument_id"], strict=True))
        by_id = {id_of[s]: v for s, v in market_of.items() if s in id_of}
        sessions = TRADING_SESSIONS.read(lake, columns=["calendar", "date", "close_utc"])
        with_calendar = bars.merge(known[["instrument_id", "calendar"]], on="instrument_id")
        parts.append(rules.from_market(with_calendar, by_id, sessions, key="instrument_id"))
    stream_days = source_keys(keys, KRAKEN_BOOK_MINUTE_BARS.scheme)
    minutes = KRAKEN_BOOK_MINUTE_BARS.read(
        lake, stream_days, columns=["symbol", "minute", "mid_close"]
    )
    if len(minutes):
        parts.append(rules.from_stream(minutes, kraken_of))
    rows = (
        pd.concat([p for p in parts if len(p)], ignore_index=True)
        if any(len(p) for p in parts)
        else VARIABLE_SERIES.empty_frame()
    )
    # Derived whole from its inputs: an unreadable month is simply written again.
    existing = VARIABLE_SERIES.read_partitions(lake, keys, skip_corrupt=True)
    write = VARIABLE_SERIES.write(lake, VARIABLE_SERIES.split(rows, keys), existing)
    record_partitions(
        context,
        write,
        {
            key: {
                "variables": MetadataValue.int(
                    int(part.rows["variable"].nunique()) if len(part.rows) else 0
                )
            }
            for key, part in write.partitions.items()
        },
    )
    present = set(rows["variable"]) if len(rows) else set()
    absent = sorted(set(mapped["variable"]) - present)
    record_run(
        context,
        VARIABLE_SERIES.name,
        {
            "variables_mapped": MetadataValue.int(len(mapped)),
            "variables_with_values": MetadataValue.int(len(present)),
            "variables_without_values": MetadataValue.md(
                ", ".join(f"`{v}`" for v in absent) or "_none_"
            ),
            "partitions_written": MetadataValue.int(write.rewritten),
        },
    )
    return MaterializeResult()


VARIABLE_ASSETS = [variable_series]
