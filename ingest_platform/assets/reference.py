"""Reference data assets: the instrument universe, trading sessions and exchange holidays."""

import datetime as dt
from pathlib import Path

import pandas as pd
from dagster import (
    AssetExecutionContext,
    ConfigurableResource,
    MaterializeResult,
    MetadataValue,
    asset,
)
from pydantic import Field

from ingest_platform import calendars, schemas, universe
from ingest_platform.assets.storage import OWNERS, definition_metadata, write_validated
from ingest_platform.lake import ParquetLake
from ingest_platform.partitions import MARKET_START_DATE

GROUP = "reference"


class ReferenceFiles(ConfigurableResource):
    """Where the versioned reference snapshots live (data/reference in the repository)."""

    directory: str = Field(
        description="Folder holding sp500_constituents.csv, etfs.csv, fx_pairs.csv."
    )


def _reference_asset(model: type, description: str) -> dict:
    """What the reference assets share: group, storage kinds, owners, column schema."""
    return {
        "group_name": GROUP,
        "kinds": {"pandas", "parquet"},
        "owners": OWNERS,
        "code_version": "1",
        "metadata": definition_metadata(model),
        "description": description,
    }


def calendar_window(today: dt.date) -> tuple[dt.date, dt.date]:
    """Sessions and holidays are published from the first market partition to next year's end,
    so schedules and checks can look ahead without waiting for a refresh."""
    return dt.date.fromisoformat(MARKET_START_DATE), dt.date(today.year + 1, 12, 31)


@asset(
    **_reference_asset(
        schemas.Instruments,
        "Every instrument the platform tracks: S&P 500 constituents (shipped snapshot), the ETF "
        "list and FX pairs, with Yahoo symbols, sector, currency and trading calendar.",
    )
)
def instruments(reference_files: ReferenceFiles, lake: ParquetLake) -> MaterializeResult:
    frame = universe.load_instruments(Path(reference_files.directory))
    metadata = write_validated(lake, "instruments", schemas.Instruments, frame)
    counts = frame["asset_class"].value_counts().to_dict()
    return MaterializeResult(
        metadata={
            **metadata,
            **{
                f"{cls}_count": MetadataValue.int(int(counts.get(cls, 0)))
                for cls in universe.ASSET_CLASSES
            },
            "reference_dir": MetadataValue.path(reference_files.directory),
        }
    )


@asset(
    **_reference_asset(
        schemas.TradingSessions,
        "Trading sessions (open and close in UTC, early closes) of each calendar the universe "
        "trades on, from exchange-calendars, from the first market partition to next year's end.",
    )
)
def trading_sessions(context: AssetExecutionContext, lake: ParquetLake) -> MaterializeResult:
    start, end = calendar_window(dt.date.today())
    frame = pd.concat(
        [calendars.sessions_frame(start, end, name) for name in calendars.CALENDARS],
        ignore_index=True,
    )
    metadata = write_validated(lake, "trading_sessions", schemas.TradingSessions, frame)
    per_calendar = frame.groupby("calendar").size().to_dict()
    context.log.info("sessions per calendar %s..%s: %s", start, end, per_calendar)
    return MaterializeResult(
        metadata={
            **metadata,
            "window": MetadataValue.text(f"{start}..{end}"),
            "sessions_per_calendar": MetadataValue.json(per_calendar),
            "early_closes": MetadataValue.int(int(frame["early_close"].sum())),
        }
    )


@asset(
    **_reference_asset(
        schemas.ExchangeHolidays,
        "Weekdays on which each calendar does not trade, named (regular holidays) or marked "
        "ad hoc (closures such as 2025-01-09), from exchange-calendars.",
    )
)
def exchange_holidays(lake: ParquetLake) -> MaterializeResult:
    start, end = calendar_window(dt.date.today())
    frame = pd.concat(
        [calendars.holidays_frame(start, end, name) for name in calendars.CALENDARS],
        ignore_index=True,
    )
    metadata = write_validated(lake, "exchange_holidays", schemas.ExchangeHolidays, frame)
    return MaterializeResult(
        metadata={
            **metadata,
            "window": MetadataValue.text(f"{start}..{end}"),
            "ad_hoc_closures": MetadataValue.int(int((frame["kind"] == "ad_hoc").sum())),
        }
    )
