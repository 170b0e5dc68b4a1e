"""Dagster's own floor: the market assets' shape (keys, partitions, deps, backfill policy) with
empty bodies. Timing a backfill of these through the same CLI and instance measures what
Dagster costs for that many partitions before any of our work (used by market_backfill.py)."""

from dagster import (
    AssetSpec,
    BackfillPolicy,
    Definitions,
    MaterializeResult,
    asset,
    in_process_executor,
    multi_asset,
)

from ingest_platform.core.partitions import market_day_partitions

_KW = {"partitions_def": market_day_partitions, "backfill_policy": BackfillPolicy.single_run()}


@multi_asset(specs=[AssetSpec("yahoo_daily_bars"), AssetSpec("corporate_actions")], **_KW)
def yahoo_daily_bars():
    yield MaterializeResult(asset_key="yahoo_daily_bars")
    yield MaterializeResult(asset_key="corporate_actions")


@asset(**_KW)
def alpha_vantage_daily_bars() -> MaterializeResult:
    return MaterializeResult()


@asset(**_KW)
def polygon_daily_bars() -> MaterializeResult:
    return MaterializeResult()


@asset(deps=[yahoo_daily_bars, alpha_vantage_daily_bars, polygon_daily_bars], **_KW)
def market_bars() -> MaterializeResult:
    return MaterializeResult()


# The same executor as the code location (in process): the floor is Dagster's cost for these
# partitions executed the way ours are.
defs = Definitions(
    assets=[yahoo_daily_bars, alpha_vantage_daily_bars, polygon_daily_bars, market_bars],
    executor=in_process_executor,
)
