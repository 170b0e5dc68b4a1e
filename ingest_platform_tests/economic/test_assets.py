"""Economic indicators end to end against the sandbox: one run for three years, one request per
series, revisions in the month they were published, no look-ahead, failures named."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest
from dagster import materialize

from ingest_platform import asof
from ingest_platform.core import settings
from ingest_platform.definitions import build_definitions
from ingest_platform.economic.assets import economic_indicators, economic_release_calendar
from ingest_platform.economic.checks import economic_checks
from ingest_platform.reference.assets import instruments
from ingest_platform.registry.assets import variable_mappings
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

pytestmark = pytest.mark.slow

AS_OF = "2025-12-31"
NOW = "2026-01-01T08:00:00+00:00"
FRED_KEY = "fred-test+key/4d2=a9"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
RESOURCES = ("lake", "reference_files", "kraken_stream", "fred", "worldbank")


@pytest.fixture(scope="module")
def simulator() -> MarketSimulator:
    return MarketSimulator(seed=7, as_of=AS_OF, large_drifts=())


@pytest.fixture
def sandbox(simulator):
    with SandboxHTTPServer(simulator) as server:
        yield server


@pytest.fixture
def resources(sandbox, tmp_path, monkeypatch) -> dict:
    monkeypatch.setenv(settings.SANDBOX_URL_ENV, sandbox.url)
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("INGEST_PLATFORM_LAKE_ROOT", raising=False)
    monkeypatch.setenv("FRED_API_KEY", FRED_KEY)
    monkeypatch.setenv(settings.NOW_ENV, NOW)
    defs = build_definitions()
    res = {k: v for k, v in (defs.resources or {}).items() if k in RESOURCES}
    setup = materialize(
        [instruments, variable_mappings, economic_release_calendar], resources=res, run_config=QUIET
    )
    assert setup.success
    sandbox.counters.reset()
    return res


def backfill(resources, start="2023-01-01", end="2025-12-01", with_checks=False, **config):
    return materialize(
        [economic_indicators, *([economic_checks] if with_checks else [])],
        resources=resources,
        run_config={**QUIET, "ops": {"economic_indicators": {"config": config}}}
        if config
        else QUIET,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
        raise_on_error=False,
    )


def digest(lake, dataset: str, keys: list[str]) -> dict[str, str]:
    return {
        k: hashlib.sha256(Path(lake.partition_path(dataset, k).path).read_bytes()).hexdigest()
        for k in keys
    }


def mapped(resources, source: str) -> list[str]:
    mappings = resources["lake"].read("variable_mappings")
    return sorted(mappings.loc[mappings["source"] == source, "series_id"])


def test_three_years_are_one_run_with_one_request_per_series(resources, sandbox):
    result = backfill(resources, with_checks=True)
    assert result.success
    fred, worldbank = mapped(resources, "fred"), mapped(resources, "worldbank")
    assert sandbox.counters.by_symbol("fred.observations") == dict.fromkeys(fred, 1)
    assert sum(sandbox.counters.by_symbol("worldbank.indicator").values()) == len(worldbank)
    lake = resources["lake"]
    keys = lake.partition_keys("economic_indicators")
    assert keys[0] == "2023-01-01" and keys[-1] == "2025-12-01" and len(keys) == 36
    frame = lake.read("economic_indicators")
    assert set(frame["variable"]) >= {"cpi_headline", "unemployment_rate", "gdp_growth_usa_annual"}
    # Each row sits in the month it became known (the first month also holds older knowledge).
    for key in ("2024-03-01", "2025-07-01"):
        month = lake.read("economic_indicators", [key])
        assert (month["known_at"].dt.strftime("%Y-%m-01") == key).all()
    checks = {
        e.event_specific_data.check_name: e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }
    assert all(c.passed for c in checks.values()), {k: c.description for k, c in checks.items()}


def test_a_finished_month_is_never_rewritten_by_a_later_revision(resources, sandbox):
    lake = resources["lake"]
    assert backfill(resources, "2025-01-01", "2025-11-01").success
    before = digest(lake, "economic_indicators", lake.partition_keys("economic_indicators"))
    assert backfill(resources, "2025-12-01", "2025-12-01").success  # December's revisions
    after = digest(lake, "economic_indicators", sorted(before))
    assert after == before
    december = lake.read("economic_indicators", ["2025-12-01"])
    revised = december.merge(
        lake.read("economic_indicators", ["2025-11-01"]), on=["series_id", "date"]
    )
    assert len(revised), "December revises values first published in November"
    # And a re-run changes nothing at all, December included.
    again = digest(lake, "economic_indicators", lake.partition_keys("economic_indicators"))
    assert backfill(resources, "2025-01-01", "2025-12-01").success
    assert digest(lake, "economic_indicators", sorted(again)) == again


def test_no_look_ahead_at_a_revision_through_known_at_and_read(resources):
    assert backfill(resources).success
    frame = resources["lake"].read("economic_indicators")
    cpi = frame[frame["series_id"] == "CPIAUCSL"].sort_values(["date", "realtime_start"])
    vintages = cpi.groupby("date").filter(lambda g: len(g) >= 2)
    day = vintages["date"].iloc[-1]
    first, revised = vintages[vintages["date"] == day].iloc[:2].itertuples(index=False)
    revision = revised.realtime_start
    cases = {
        revision - pd.Timedelta(days=1): first.value,  # the day before: the first release
        revision: revised.value,  # on the day: ALFRED counts it known that day
        revision + pd.Timedelta(days=1): revised.value,
    }
    for as_of, expected in cases.items():
        row = asof.known_at(cpi, as_of.date())
        assert row.loc[row["date"] == day, "value"].item() == expected, as_of
        read = asof.read("economic_indicators", as_of.date(), variables=["cpi_headline"])
        assert read.loc[read["date"] == day, "value"].item() == expected, as_of
    before_release = asof.read(
        "economic_indicators", first.realtime_start - pd.Timedelta(days=1),
        variables=["cpi_headline"],
    )  # fmt: skip
    assert day not in set(before_release["date"])  # not yet known: absent, not guessed
    # before anything was known a registered variable is an empty answer, not an error ...
    assert asof.read("economic_indicators", "2020-01-31", variables=["cpi_headline"]).empty
    # ... and a name the registry does not hold is an error naming it, whatever the date
    for as_of in ("2020-01-31", None):
        with pytest.raises(ValueError, match=r"no such variable.*cpi_headlin"):
            asof.read("economic_indicators", as_of, variables=["cpi_headlin"])


def test_a_known_missing_value_stays_null(resources):
    assert backfill(resources, "2025-01-01", "2025-12-01").success
    rows = resources["lake"].read("economic_indicators")
    holiday = rows[(rows["series_id"] == "DGS10") & rows["value"].isna()].iloc[-1]
    read = asof.read("economic_indicators", variables=["ust_10y_yield"])
    day = read[read["date"] == holiday["date"]]
    assert len(day) == 1 and day["value"].isna().item()  # present, null, never yesterday's


def test_a_failing_series_is_named_and_keeps_its_rows(resources, sandbox):
    lake = resources["lake"]
    assert backfill(resources, "2025-06-01", "2025-06-01").success
    june = lake.read("economic_indicators", ["2025-06-01"])
    sandbox.counters.reset()
    sandbox.faults.add("server_error", endpoint="fred.observations", symbol="UNRATE")
    sandbox.faults.add("rate_limit", endpoint="fred.observations", symbol="PAYEMS", times=1)
    sandbox.faults.add("truncated_json", endpoint="fred.observations", symbol="CPIAUCSL", times=1)
    result = backfill(resources, "2025-06-01", "2025-06-01", max_failure_rate=0.05)
    assert result.success
    check = next(
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "fetch_failure_rate"
    )
    assert check.passed and "UNRATE" in check.metadata["failed"].value
    assert "HTTP 503" in check.metadata["failed"].value
    observations = sandbox.counters.by_symbol("fred.observations")
    assert observations["PAYEMS"] == 2 and observations["CPIAUCSL"] == 2  # retried, then fine
    after = lake.read("economic_indicators", ["2025-06-01"])
    assert len(after[after["series_id"] == "UNRATE"]) == len(june[june["series_id"] == "UNRATE"])
    strict = backfill(resources, "2025-06-01", "2025-06-01")  # default: nothing may fail
    assert not strict.success


def test_a_late_release_trips_the_staleness_check_naming_the_variable(resources, sandbox):
    sandbox.faults.add("stale", endpoint="fred.observations", symbol="UNRATE", sessions=2)
    result = backfill(resources, "2025-09-01", "2025-12-01", with_checks=True)
    stale = next(
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "indicator_staleness"
    )
    assert not stale.passed and stale.severity.value == "ERROR"
    assert "unemployment_rate" in stale.description
