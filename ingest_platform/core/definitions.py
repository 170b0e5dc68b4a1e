"""What every domain's assets share: the lake, and how a run executes its steps.

Runs execute in process (one process per run, steps in order). A partitioned asset here runs
a whole range as one step (`BackfillPolicy.single_run()`), so a run has a handful of steps, and
the multiprocess executor's cost is a fresh interpreter per step that imports the whole code
location (yfinance, exchange-calendars, SQLAlchemy, every domain) before doing any work:
profiled, that was a third of a three-year market backfill's busy time, and the in-process
executor measured 40% faster on the same backfill (benchmarks/market_backfill.py
--in-process). Concurrency pools hold the same in process; what is given up is running two
sources' fetches of one run side by side, which the sources' own rate limits make small.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from ingest_platform.core import settings
from ingest_platform.core.lake import ParquetLake


def core_definitions() -> Definitions:
    return Definitions(
        resources={"lake": ParquetLake(root=settings.lake_root())},
        executor=in_process_executor,
    )
