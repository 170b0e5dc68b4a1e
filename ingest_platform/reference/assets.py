"""Reference data assets: the instrument universe, trading sessions and exchange holidays."""

import datetime as dt
from pathlib import Path

import pandas as pd
from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from ingest_platform.core import calendars
from ingest_platform.core.dataset import Dataset
from ingest_platform.core.dataset_assets import asset_kwargs, content_metadata
from ingest_platform.core.lake import ParquetLake
from ingest_platform.core.partitions import MARKET_START_DATE
from ingest_platform.reference import membership, universe
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.reference.schema import (
    EXCHANGE_HOLIDAYS,
    INDEX_MEMBERSHIP,
    INSTRUMENTS,
    TRADING_SESSIONS,
)


def calendar_window(today: dt.date) -> tuple[dt.date, dt.date]:
    """Sessions and holidays are published from the first market partition to next year's end,
    so schedules and checks can look ahead without waiting for a refresh."""
    return dt.date.fromisoformat(MARKET_START_DATE), dt.date(today.year + 1, 12, 31)


def _write(lake: ParquetLake, dataset: Dataset, frame: pd.DataFrame) -> dict:
    write = dataset.write_all(lake, frame)
    (part,) = write.partitions.values()
    return content_metadata(part)


@asset(**asset_kwargs(INSTRUMENTS, code_version="2"))
def instruments(reference_files: ReferenceFiles, lake: ParquetLake) -> MaterializeResult:
    frame = universe.load_instruments(Path(reference_files.directory))
    counts = universe.traded(frame)["asset_class"].value_counts().to_dict()
    return MaterializeResult(
        metadata={
            **_write(lake, INSTRUMENTS, frame),
            "former_members": MetadataValue.int(int((~frame["active"]).sum())),
            **{
                f"{cls}_count": MetadataValue.int(int(counts.get(cls, 0)))
                for cls in universe.ASSET_CLASSES
            },
            "reference_dir": MetadataValue.path(reference_files.directory),
        }
    )


@asset(**asset_kwargs(INDEX_MEMBERSHIP, code_version="1"))
def index_membership(reference_files: ReferenceFiles, lake: ParquetLake) -> MaterializeResult:
    """The reviewed history, reconciled (refused with file and line when inconsistent)."""
    history = membership.load_history(Path(reference_files.directory))
    frame = history.intervals
    today = frame[frame["removed"].isna()]  # the constituents snapshot's members
    return MaterializeResult(
        metadata={
            **_write(lake, INDEX_MEMBERSHIP, frame),
            "members_today": MetadataValue.int(len(today)),
            "instruments": MetadataValue.int(int(frame["instrument_id"].nunique())),
            "ticker_changes": MetadataValue.int(int((frame["added_via"] == "rename").sum())),
            "history_start": MetadataValue.text(history.start.isoformat()),
        }
    )


@asset(**asset_kwargs(TRADING_SESSIONS, code_version="1"))
def trading_sessions(context: AssetExecutionContext, lake: ParquetLake) -> MaterializeResult:
    start, end = calendar_window(dt.date.today())
    frame = pd.concat(
        [calendars.sessions_frame(start, end, name) for name in calendars.CALENDARS],
        ignore_index=True,
    )
    per_calendar = frame.groupby("calendar").size().to_dict()
    context.log.info("sessions per calendar %s..%s: %s", start, end, per_calendar)
    return MaterializeResult(
        metadata={
            **_write(lake, TRADING_SESSIONS, frame),
            "window": MetadataValue.text(f"{start}..{end}"),
            **{
                f"sessions_{name.replace('/', '_')}": MetadataValue.int(int(count))
                for name, count in per_calendar.items()
            },
            "early_closes": MetadataValue.int(int(frame["early_close"].sum())),
        }
    )


@asset(**asset_kwargs(EXCHANGE_HOLIDAYS, code_version="1"))
def exchange_holidays(lake: ParquetLake) -> MaterializeResult:
    start, end = calendar_window(dt.date.today())
    frame = pd.concat(
        [calendars.holidays_frame(start, end, name) for name in calendars.CALENDARS],
        ignore_index=True,
    )
    return MaterializeResult(
        metadata={
            **_write(lake, EXCHANGE_HOLIDAYS, frame),
            "window": MetadataValue.text(f"{start}..{end}"),
            "ad_hoc_closures": MetadataValue.int(int((frame["kind"] == "ad_hoc").sum())),
        }
    )


REFERENCE_ASSETS = [instruments, index_membership, trading_sessions, exchange_holidays]
