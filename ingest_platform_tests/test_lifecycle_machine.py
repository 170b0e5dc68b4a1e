"""A stateful property test of the whole life cycle: any sequence of what happens to a
deployment keeps its copies of the data in agreement.

Hypothesis drives the real code location in process against the sandbox (`lifecycle.Platform`)
through backfills, the daily schedule's runs, subset and refresh runs, the clock moving past
splits and dividends (NVDA 10:1 on 2024-06-10, CMG 50:1 on 2024-06-26, dividends of AAPL and
SPY), a partition file corrupted and then refreshed, ticks of the publish automation and
``dataset_metadata`` runs. After every step:

- no dataset holds a duplicate key, in the lake or (after a publish tick) in the warehouse;
- no symbol is on two split bases: its stored closes over the sandbox's truth at the clock are
  one ratio (1 once a run has seen the split, the split's ratio before any has);
- after each publish tick, `ingest-platform audit` finds every copy in agreement, and the
  warehouse is on one basis too;
- `variable_series` read through `asof` at any time shows nothing that was not known then, and
  its market closes are the truth's.

CI runs it derandomized (the same sequences every time) with a bounded number of steps. Explore
longer and wider with ``INGEST_PLATFORM_LIFECYCLE_EXPLORE=1
INGEST_PLATFORM_LIFECYCLE_EXAMPLES=20 INGEST_PLATFORM_LIFECYCLE_STEPS=40 pytest
ingest_platform_tests/test_lifecycle_machine.py --hypothesis-seed=1``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from ingest_platform import asof
from ingest_platform.core import calendars
from ingest_platform.publish.catalogue import DATASETS, PUBLISHED
from ingest_platform.sandbox.data import SPLITS
from ingest_platform_tests.lifecycle import Platform

pytestmark = pytest.mark.slow

UNIVERSE = {
    "sp500_constituents.csv": ["NVDA", "AAPL", "CMG"],
    "etfs.csv": ["SPY"],
    "fx_pairs.csv": ["EURUSD"],
    "indices.csv": ["^GSPC"],
    "commodities.csv": ["CL=F"],
}
FIRST_DAY = "2024-05-01"
#: The clock's moments: each weekday evening at 17:00 New York (21:00 UTC in summer: NYSE
#: settled, FX and futures not yet) and at 22:00 New York (everything settled).
DAYS = [d.isoformat() for d in calendars.sessions("2024-05-13", "2024-07-12", "24/5")]
MOMENTS = [
    pd.Timestamp(f"{day}T{hour}", tz="America/New_York").tz_convert("UTC")
    for day in DAYS
    for hour in ("17:00", "22:00")
]
EXAMPLES = int(os.environ.get("INGEST_PLATFORM_LIFECYCLE_EXAMPLES", "2"))
STEPS = int(os.environ.get("INGEST_PLATFORM_LIFECYCLE_STEPS", "10"))
#: Explore new sequences (with pytest's ``--hypothesis-seed=N`` to repeat one) instead of
#: CI's fixed ones.
EXPLORE = os.environ.get("INGEST_PLATFORM_LIFECYCLE_EXPLORE") == "1"
SPLIT_SYMBOLS = [s for s in ("NVDA", "CMG") if s in SPLITS]


class Lifecycle(RuleBasedStateMachine):
    """See the module docstring."""

    def __init__(self) -> None:
        super().__init__()
        self.folder = Path(tempfile.mkdtemp(prefix="lifecycle-"))
        self.monkeypatch = pytest.MonkeyPatch()
        self.moment = 6  # Wednesday 2024-05-15, 17:00 New York
        self.platform = Platform(
            self.folder, self.monkeypatch, UNIVERSE, clock=MOMENTS[self.moment].isoformat()
        )
        self.published = False

    @initialize()
    def reference_data(self) -> None:
        self.platform.reference_data()

    def teardown(self) -> None:
        self.platform.close()
        self.monkeypatch.undo()

    # -- what happens to a deployment ----------------------------------------------------------

    def _range(self, start: int, length: int) -> tuple[str, str]:
        keys = [d.isoformat() for d in calendars.sessions(FIRST_DAY, self.platform.today, "24/5")]
        first = keys[min(start, len(keys) - 1)]
        last = keys[min(keys.index(first) + length - 1, len(keys) - 1)]
        return first, last

    @rule(start=st.integers(0, 40), length=st.integers(1, 25))
    def backfill(self, start: int, length: int) -> None:
        first, last = self._range(start, length)
        assert self.platform.market(first, last).success
        self.published = False

    @rule()
    def daily_run(self) -> None:
        result = self.platform.daily()
        assert result is None or result.success
        self.published = False

    @rule(
        symbol=st.sampled_from(["NVDA", "AAPL", "CMG", "SPY", "EURUSD"]),
        start=st.integers(0, 40),
        length=st.integers(1, 10),
    )
    def subset_run(self, symbol: str, start: int, length: int) -> None:
        first, last = self._range(start, length)
        assert self.platform.market(first, last, symbols=[symbol]).success
        self.published = False

    @rule(start=st.integers(0, 40), length=st.integers(1, 10))
    def refresh_run(self, start: int, length: int) -> None:
        first, last = self._range(start, length)
        assert self.platform.market(first, last, refresh=True).success
        self.published = False

    @precondition(lambda self: self.moment < len(MOMENTS) - 1)
    @rule(steps=st.integers(1, 12))
    def clock_moves(self, steps: int) -> None:
        """Days pass: the sandbox's world moves with the clock, past splits and dividends."""
        self.moment = min(self.moment + steps, len(MOMENTS) - 1)
        self.platform.set_clock(MOMENTS[self.moment])

    @rule(dataset=st.sampled_from(["yahoo_daily_bars", "market_bars"]), which=st.integers(0, 99))
    def corrupt_then_refresh(self, dataset: str, which: int) -> None:
        keys = self.platform.lake.partition_keys(dataset)
        if not keys:
            return
        key = keys[which % len(keys)]
        path = Path(str(self.platform.lake.partition_path(dataset, key)))
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])  # a torn file, as a full disk leaves it
        assert self.platform.market(key, key, refresh=True).success
        self.published = False

    @rule()
    def publish_tick(self) -> None:
        runs = self.platform.publish_tick()
        assert all(r.success for r in runs), [r.dagster_run.job_name for r in runs]
        report = self.platform.audit()
        assert report.consistent, [d.line() for d in report.disagreements]
        self.published = True

    @rule()
    def dataset_metadata(self) -> None:
        assert self.platform.run(["dataset_metadata"]).success

    # -- what must always hold -----------------------------------------------------------------

    @invariant()
    def no_duplicate_key_in_the_lake(self) -> None:
        lake = self.platform.lake
        for dataset in DATASETS:
            if not dataset.partitioned and not lake.has_partition(dataset.name):
                continue
            frame = dataset.read(lake, columns=list(dataset.key))
            dupes = frame[frame.duplicated(list(dataset.key), keep=False)]
            assert dupes.empty, (dataset.name, dupes.head())

    @invariant()
    def no_duplicate_key_in_the_warehouse(self) -> None:
        if not self.published:
            return
        for dataset in PUBLISHED:
            try:
                frame = self.platform.warehouse_frame(dataset.name)
            except ValueError:  # no table yet
                continue
            assert not frame.duplicated(list(dataset.key)).any(), dataset.name

    def _one_basis(self, closes: pd.DataFrame, where: str) -> None:
        for symbol in SPLIT_SYMBOLS:
            rows = closes[closes["symbol"] == symbol]
            if rows.empty:
                continue
            dates = pd.to_datetime(rows["date"])
            truth = self.platform.truth.daily_bars(
                symbol, dates.min().date().isoformat(), dates.max().date().isoformat()
            )["close"]
            ratio = rows["close"].to_numpy() / truth.reindex(dates).to_numpy()
            assert np.isfinite(ratio).all(), (where, symbol)
            assert ratio.max() / ratio.min() == pytest.approx(1.0, rel=1e-6), (
                f"{symbol} in {where} is on two split bases: ratios "
                f"{sorted(set(np.round(ratio, 4)))} at {self.platform.clock}"
            )

    @invariant()
    def one_split_basis_in_the_lake(self) -> None:
        for name in ("yahoo_daily_bars", "market_bars"):
            dataset = next(d for d in DATASETS if d.name == name)
            closes = dataset.read(self.platform.lake, columns=["symbol", "date", "close"])
            self._one_basis(closes, f"the lake's {name}")

    @invariant()
    def one_split_basis_in_the_warehouse(self) -> None:
        if not self.published:
            return
        try:
            table = self.platform.warehouse_frame("market_bars")
        except ValueError:
            return
        self._one_basis(table[["symbol", "date", "close"]], "the warehouse's market_bars")

    @invariant()
    def asof_shows_nothing_not_yet_known(self) -> None:
        lake = self.platform.lake
        if not lake.partition_keys("variable_series"):
            return
        for moment in MOMENTS[: self.moment + 1 : 5]:
            seen = asof.read("variable_series", as_of=moment, lake=lake)
            if seen.empty:
                continue
            assert (pd.to_datetime(seen["known_at"], utc=True) <= moment).all()
            market = seen[seen["source"] == "market"]
            for symbol, rows in market.groupby("series_id"):
                truth = self.platform.truth.daily_bars(
                    str(symbol),
                    rows["date"].min().date().isoformat(),
                    rows["date"].max().date().isoformat(),
                )["close"]
                assert rows.set_index("date")["value"].tolist() == pytest.approx(
                    truth.reindex(rows["date"]).tolist(), rel=1e-9
                ), (symbol, moment)


Lifecycle.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=not EXPLORE,
    database=None,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)
#: Each step is a Dagster run or a few: give the whole sequence of examples its own time
#: budget instead of the suite's 300 s per test.
test_lifecycle = pytest.mark.timeout(max(900, EXAMPLES * STEPS * 20))(Lifecycle.TestCase)
