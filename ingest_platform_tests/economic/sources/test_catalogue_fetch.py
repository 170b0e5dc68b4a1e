"""Every series of the catalogue through its source against the sandbox: one request each."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from ingest_platform.core import settings
from ingest_platform.core.http import HttpClient, RetryPolicy
from ingest_platform.economic.sources.batch import fetch_each
from ingest_platform.economic.sources.fred import FredSource
from ingest_platform.economic.sources.fred_frames import empty_observations
from ingest_platform.economic.sources.worldbank import WorldBankSource, empty_frame
from ingest_platform.registry.catalogue import (
    fred_series,
    load_series_catalogue,
    worldbank_series,
)
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

KEY = "catalogue-fred-key-0123456789ab"
AS_OF = dt.date(2026, 11, 20)


@pytest.fixture(scope="module")
def server():
    with SandboxHTTPServer(MarketSimulator(seed=7, as_of=AS_OF)) as running:
        yield running


def http(name: str, secrets=()) -> HttpClient:
    policy = RetryPolicy(max_attempts=2, backoff_base=0.01)
    return HttpClient(name, retry=policy, secrets=secrets, rng=random.Random(0))


@pytest.mark.slow
@pytest.mark.parametrize("start", [dt.date(2023, 1, 1), dt.date(2015, 1, 1)])
def test_every_fred_series_of_the_catalogue_in_one_request_unless_capped(server, start):
    server.counters.reset()
    catalogue = fred_series(load_series_catalogue(settings.reference_dir()))
    source = FredSource(http("fred", [KEY]), KEY, base_url=server.base_url("fred"))

    def one(series_id: str):
        return source.observations(series_id, start, vintages=catalogue[series_id])

    result = fetch_each("fred", sorted(catalogue), one, empty_observations, threads=2)
    assert result.failures == {} and set(result.frame["series_id"]) == set(catalogue)
    requests = server.counters.by_symbol("fred.observations")
    split = server.counters.by_symbol("fred.vintagedates")
    if start.year == 2023:  # three years of real time: never near the 2,000 cap
        assert requests == {s: 1 for s in catalogue} and split == {}
    else:  # since 2015 the daily series hold ~2,980 vintage dates: refused, then two chunks
        daily = {s for s in catalogue if catalogue[s] and requests[s] > 1}
        assert daily == {"DGS10", "DGS2", "DGS3MO", "DGS30", "DFF", "T10Y2Y", "T10Y3M", "T10YIE"}
        assert {requests[s] for s in daily} == {3} and split == {s: 1 for s in daily}
        assert all(requests[s] == 1 for s in catalogue if s not in daily)


def test_every_world_bank_pair_of_the_catalogue_in_one_request(server):
    server.counters.reset()
    pairs = worldbank_series(load_series_catalogue(settings.reference_dir()))
    source = WorldBankSource(http("worldbank"), base_url=server.base_url("worldbank"))

    def one(key: str):
        indicator, country = key.split("/")
        return source.indicator(indicator, country, 1990, 2030)

    keys = [f"{i}/{c}" for i, c in pairs]
    result = fetch_each("worldbank", keys, one, empty_frame, threads=2)
    assert result.failures == {}
    per_indicator = {i: sum(1 for j, _ in pairs if j == i) for i, _ in pairs}
    assert server.counters.by_symbol("worldbank.indicator") == per_indicator
    assert result.frame.groupby(["indicator", "country"]).ngroups == len(pairs)
