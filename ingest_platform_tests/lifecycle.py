"""The real code location driven in process, run after run, as an operator's week would drive it.

`Platform` holds one data folder, one persistent SQLite instance, a reduced universe and the
sandbox at a movable clock. Its verbs are what happens to a deployment: a backfill, the daily
schedule's tick, a subset or refresh run, the clock moving past a split, a file corrupted, a tick
of the publish automation (run until nothing more is requested, as the daemon would over
successive ticks). Tests read its copies of the data through the same public interfaces an
operator has: the lake, the warehouse, `ingest-platform audit`, `asof`.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from dagster import (
    AssetKey,
    AssetSelection,
    DagsterInstance,
    Definitions,
    build_schedule_context,
    build_sensor_context,
    define_asset_job,
    evaluate_automation_conditions,
)

from ingest_platform.core import settings
from ingest_platform.core.lake import ParquetLake
from ingest_platform.definitions import build_definitions
from ingest_platform.publish.audit import AuditReport, run_audit
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

CHECKOUT = Path(__file__).resolve().parent.parent
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
SOURCE_OPS = ("yahoo_daily_bars", "alpha_vantage_daily_bars", "polygon_daily_bars")
#: The publish automation's assets: the warehouse tables.
PUBLISHED = AssetSelection.groups("warehouse")
#: The sensors that follow updates, and the asset each one runs.
FOLLOWERS = {
    "variable_series_after_updates": "variable_series",
    "dataset_metadata_after_updates": "dataset_metadata",
}


def small_reference(target: Path, keep: Mapping[str, Iterable[str]]) -> Path:
    """data/reference with each listed file cut to the given symbols (others emptied), and no
    S&P 500 history (a cut list cannot reconcile with it): header-only changes files."""
    shutil.copytree(CHECKOUT / "data" / "reference", target)
    for name in ("sp500_constituents.csv", "etfs.csv", "fx_pairs.csv", "indices.csv",
                 "commodities.csv"):  # fmt: skip
        frame = pd.read_csv(target / name, dtype=str, keep_default_na=False)
        wanted = set(keep.get(name, ()))
        frame[frame["symbol"].isin(wanted)].to_csv(target / name, index=False)
    for name in ("sp500_membership_changes.csv", "symbol_changes.csv"):
        if (target / name).exists():
            (target / name).write_text((target / name).read_text().splitlines(keepends=True)[0])
    return target


def execute(
    defs: Definitions,
    instance: DagsterInstance,
    assets: Iterable[str],
    *,
    first: str | None = None,
    last: str | None = None,
    config: Mapping[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
    checks: bool = True,
) -> Any:
    """Materialize `assets` (their checks included, unless `checks` is False) over
    [first, last] in process."""
    names = sorted(assets)
    name = "lifecycle_" + "_".join(names)[:60]
    selection = AssetSelection.assets(*names)
    job = define_asset_job(name, selection=selection if checks else selection.without_checks())
    resolved = Definitions.merge(defs, Definitions(jobs=[job])).resolve_job_def(name)
    range_tags = (
        {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}
        if first and last
        else {}
    )
    return resolved.execute_in_process(
        run_config={**QUIET, **(config or {})},
        instance=instance,
        tags={**range_tags, **(tags or {})},
        raise_on_error=False,
    )


def stretches(keys: Iterable[str | None], scheme: Any) -> list[tuple[str | None, str | None]]:
    """Requested partitions as runs of consecutive keys (None: an unpartitioned asset)."""
    chosen = {k for k in keys if k is not None}
    if not chosen:
        return [(None, None)]
    return [(first, last) for first, last, _ in scheme.runs(chosen)]


class Platform:
    """One deployment in a temporary folder (see the module docstring)."""

    def __init__(
        self,
        root: Path,
        monkeypatch: pytest.MonkeyPatch,
        keep: Mapping[str, Iterable[str]],
        clock: str,
        seed: int = 7,
        instance_config: Path | None = None,
    ) -> None:
        self.root = root
        self.seed = seed
        self.monkeypatch = monkeypatch
        self.reference = small_reference(root / "reference", keep)
        # A project folder as the CLI expects one: the repository's instance config (SQLite
        # under data/dagster, paths relative to it), the data folder, the working directory.
        shutil.copy(instance_config or CHECKOUT / "dagster.yaml", root / "dagster.yaml")
        monkeypatch.setenv("DAGSTER_HOME", str(root))
        monkeypatch.chdir(root)
        monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(root / "data"))
        monkeypatch.delenv("INGEST_PLATFORM_LAKE_ROOT", raising=False)
        monkeypatch.setenv("INGEST_PLATFORM_REFERENCE_DIR", str(self.reference))
        for key in ("ALPHA_VANTAGE_API_KEY", "POLYGON_API_KEY", "FRED_API_KEY"):
            monkeypatch.setenv(key, f"lifecycle-{key.lower()}")
        self.instance = DagsterInstance.get()
        self.sandbox: SandboxHTTPServer | None = None
        self.clock = pd.Timestamp(clock)
        self.set_clock(clock)
        self.defs = build_definitions()
        self.lake = ParquetLake(root=settings.lake_root())
        self.automation_cursor: Any = None
        self.sensor_cursors: dict[str, str | None] = {}
        # The daemon ticks from the moment the deployment starts: its first evaluation is the
        # baseline "updated since" is measured from.
        assert not self.publish_tick()

    # -- the world ---------------------------------------------------------------------------

    @property
    def today(self) -> dt.date:
        """The last date the sandbox has data for: the clock's New York date."""
        return self.clock.tz_convert("America/New_York").date()

    def set_clock(self, when: str | pd.Timestamp) -> None:
        """Move the platform's clock and the sandbox's world to `when`."""
        self.clock = pd.Timestamp(when).tz_convert("UTC")
        self.monkeypatch.setenv(settings.NOW_ENV, self.clock.isoformat())
        if self.sandbox is not None:
            self.sandbox.stop()
        truth = MarketSimulator(seed=self.seed, as_of=self.today, large_drifts=())
        self.sandbox = SandboxHTTPServer(truth)
        self.sandbox.start()
        self.monkeypatch.setenv(settings.SANDBOX_URL_ENV, self.sandbox.url)

    @property
    def truth(self) -> MarketSimulator:
        assert self.sandbox is not None
        return self.sandbox.market

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
        self.instance.dispose()

    # -- runs --------------------------------------------------------------------------------

    def run(self, assets: Iterable[str], first=None, last=None, config=None) -> Any:
        result = execute(self.defs, self.instance, assets, first=first, last=last, config=config)
        return result

    def reference_data(self) -> None:
        assert self.run(["instruments", "trading_sessions", "exchange_holidays"]).success
        # The market assets read each day's members. This universe's handful of members is far
        # outside the real index's count band, which `member_counts` rightly refuses: the
        # intervals are written without the index's own checks, and so published by hand (the
        # publish automation waits for those blocking checks to pass).
        for asset in ("index_membership", "warehouse_index_membership"):
            assert execute(self.defs, self.instance, [asset], checks=False).success, asset
        assert self.run(["variable_mappings"]).success

    def market(self, first: str, last: str, **config: Any) -> Any:
        """The market job's assets over [first, last]; `config` goes to every source op
        (``refresh``, ``symbols``) and `symbols` to the consolidation too."""
        ops: dict[str, Any] = {op: {"config": dict(config)} for op in SOURCE_OPS}
        if "symbols" in config:
            ops["market_bars"] = {"config": {"symbols": config["symbols"]}}
        assets = [*SOURCE_OPS, "corporate_actions", "market_bars"]
        return self.run(assets, first, last, {"ops": ops})

    def daily(self) -> Any:
        """The market schedule's tick at the clock, and its run."""
        schedule = self.defs.resolve_schedule_def("market_bars_daily")
        # The context is a context manager: it opens its own instance from the ref on first
        # use, and only leaving the block closes it (and Dagster's current-storage variable).
        with build_schedule_context(
            instance=self.instance,
            scheduled_execution_time=self.clock.to_pydatetime(),
            repository_def=self.defs.get_repository_def(),
        ) as context:
            result = schedule.evaluate_tick(context)
        if not result.run_requests:
            return None
        key = result.run_requests[0].partition_key
        return self.market(key, key)

    def publish_tick(self, rounds: int = 5) -> list[Any]:
        """Ticks of the publish automation and of the sensors that follow updates
        (variable_series, metadata.json), each request run, until nothing more is requested:
        the daemon's successive ticks."""
        results = []
        for _ in range(rounds):
            evaluation = evaluate_automation_conditions(
                self.defs,
                self.instance,
                asset_selection=PUBLISHED,
                cursor=self.automation_cursor,
            )
            self.automation_cursor = evaluation.cursor
            requested = 0
            for key in sorted(PUBLISHED.resolve(self.defs.resolve_asset_graph()), key=str):
                partitions = evaluation.get_requested_partitions(key)
                if not partitions:
                    continue
                requested += 1
                scheme = self._scheme(key)
                for first, last in stretches(partitions, scheme):
                    results.append(self.run([key.to_user_string()], first, last))
            for name, asset in FOLLOWERS.items():
                sensor = self.defs.resolve_sensor_def(name)
                with build_sensor_context(
                    instance=self.instance,
                    cursor=self.sensor_cursors.get(name),
                    repository_def=self.defs.get_repository_def(),
                ) as context:
                    tick = sensor.evaluate_tick(context)
                self.sensor_cursors[name] = tick.cursor
                for request in tick.run_requests or ():
                    requested += 1
                    results.append(
                        self.run(
                            [asset],
                            request.tags.get("dagster/asset_partition_range_start"),
                            request.tags.get("dagster/asset_partition_range_end"),
                        )
                    )
            if not requested:
                break
        return results

    def _scheme(self, key: AssetKey) -> Any:
        from ingest_platform.publish.catalogue import DATASETS

        name = key.to_user_string().removeprefix("warehouse_")
        dataset = next((d for d in DATASETS if d.name == name), None)
        return dataset.partitioning if dataset is not None else None

    def warehouse_engine(self) -> Any:
        """The warehouse as a run resolves it (its URL may come from the environment)."""
        warehouse = (self.defs.resources or {})["warehouse"]
        return warehouse.process_config_and_initialize().engine()

    def audit(self) -> AuditReport:
        return run_audit(self.lake, self.instance, self.warehouse_engine())

    def lake_schema(self, name: str) -> Any:
        from ingest_platform.publish.catalogue import DATASETS

        return next(d for d in DATASETS if d.name == name).arrow_schema

    def warehouse_frame(self, table: str) -> pd.DataFrame:
        return pd.read_sql_table(table, self.warehouse_engine())
