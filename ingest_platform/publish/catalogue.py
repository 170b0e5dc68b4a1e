"""Every dataset of the platform, in one list: what the metadata, the status command and the
warehouse describe. Each comes from its domain's `Dataset` description (never restated)."""

from __future__ import annotations

from ingest_platform.core.dataset import Dataset
from ingest_platform.economic.schema import ECONOMIC_INDICATORS, ECONOMIC_RELEASE_CALENDAR
from ingest_platform.market.schema import (
    ALPHA_VANTAGE_DAILY_BARS,
    CORPORATE_ACTIONS,
    MARKET_BARS,
    POLYGON_DAILY_BARS,
    YAHOO_DAILY_BARS,
)
from ingest_platform.reference.schema import (
    EXCHANGE_HOLIDAYS,
    INDEX_MEMBERSHIP,
    INSTRUMENTS,
    TRADING_SESSIONS,
)
from ingest_platform.registry.schema import VARIABLE_MAPPINGS
from ingest_platform.streaming.kraken.schemas import KRAKEN_BOOK_MINUTE_BARS
from ingest_platform.variables.schema import VARIABLE_SERIES

DATASETS: tuple[Dataset, ...] = (
    INSTRUMENTS,
    INDEX_MEMBERSHIP,
    TRADING_SESSIONS,
    EXCHANGE_HOLIDAYS,
    YAHOO_DAILY_BARS,
    CORPORATE_ACTIONS,
    ALPHA_VANTAGE_DAILY_BARS,
    POLYGON_DAILY_BARS,
    MARKET_BARS,
    VARIABLE_MAPPINGS,
    ECONOMIC_INDICATORS,
    ECONOMIC_RELEASE_CALENDAR,
    VARIABLE_SERIES,
    KRAKEN_BOOK_MINUTE_BARS,
)

#: What SQL users query: the consolidated datasets and the reference data.
PUBLISHED: tuple[Dataset, ...] = (
    MARKET_BARS,
    CORPORATE_ACTIONS,
    ECONOMIC_INDICATORS,
    VARIABLE_MAPPINGS,
    VARIABLE_SERIES,
    INSTRUMENTS,
    INDEX_MEMBERSHIP,
    TRADING_SESSIONS,
    EXCHANGE_HOLIDAYS,
)

#: Call budgets the platform keeps, by source.
BUDGETED_SOURCES = ("alpha_vantage", "polygon", "fred", "worldbank")
