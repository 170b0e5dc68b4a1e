"""The market data checks end to end: sandbox faults trip the right check at the right
severity and name the symbol and date; a blocking ERROR holds downstream assets back until
the data is fixed; `ingest-platform check` runs them for CI with the documented exit codes.

The sandbox's clock ends on the last day of the window (2024-07-12), so "stale" means stale
relative to that day, exactly as in production relative to today.
"""

from __future__ import annotations

import datetime as dt
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from dagster import EnvVar, materialize

from ingest_platform.cli import main as cli
from ingest_platform.core import settings
from ingest_platform.core.lake import ParquetLake
from ingest_platform.market.assets import MARKET_ASSETS
from ingest_platform.market.checks import MARKET_CHECKS
from ingest_platform.market.ingest import load_universe
from ingest_platform.market.members import load_members
from ingest_platform.market.resources import AlphaVantage, Polygon, YahooFinance
from ingest_platform.market.rules import rotating_sample
from ingest_platform.reference.assets import index_membership, instruments
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.reference.universe import ASSET_CLASSES
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

pytestmark = pytest.mark.slow

START, END = "2024-06-03", "2024-07-12"
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


@pytest.fixture(scope="module")
def simulator() -> MarketSimulator:
    return MarketSimulator(seed=7, as_of=END, large_drifts=())


@pytest.fixture
def sandbox(simulator):
    with SandboxHTTPServer(simulator) as server:
        yield server


@pytest.fixture
def home(tmp_path, sandbox, monkeypatch) -> Path:
    """A project folder: instance config, data folder, the sandbox, a clock after the close."""
    shutil.copy(settings.project_root() / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("INGEST_PLATFORM_LAKE_ROOT", raising=False)
    monkeypatch.setenv(settings.SANDBOX_URL_ENV, sandbox.url)
    monkeypatch.setenv(settings.NOW_ENV, "2024-07-13T12:00:00+00:00")
    monkeypatch.setenv("ALPHA_VANTAGE_API_KEY", "check-test-key-1")
    monkeypatch.setenv("POLYGON_API_KEY", "check-test-key-2")
    monkeypatch.chdir(tmp_path)  # the CLI moves to the instance folder; restored afterwards
    return tmp_path


@pytest.fixture
def resources(home) -> dict:
    fast = {"backoff_base_seconds": 0.01, "max_attempts": 2, "timeout_seconds": 5.0}
    res = {
        "lake": ParquetLake(root=str(home / "data" / "lake")),
        "reference_files": ReferenceFiles(directory=str(settings.reference_dir())),
        "yahoo": YahooFinance(**fast),
        "alpha_vantage": AlphaVantage(api_key=EnvVar("ALPHA_VANTAGE_API_KEY"), **fast),
        "polygon": Polygon(api_key=EnvVar("POLYGON_API_KEY"), **fast),
    }
    assert materialize([instruments, index_membership], resources=res, run_config=QUIET).success
    return res


def backfill(resources, **config):
    ops = ("yahoo_daily_bars", "alpha_vantage_daily_bars", "polygon_daily_bars")
    return materialize(
        [*MARKET_ASSETS, *MARKET_CHECKS],
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": START,
            "dagster/asset_partition_range_end": END,
        },
        run_config={**QUIET, "ops": {op: {"config": config} for op in ops}} if config else QUIET,
        raise_on_error=False,
    )


def evaluations(result) -> dict[str, object]:
    return {
        f"{e.event_specific_data.asset_key.to_user_string()}:{e.event_specific_data.check_name}": (
            e.event_specific_data
        )
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    }


def polygon_sample(resources, day: str) -> list[str]:
    """The symbols Polygon's rotating sample picks on `day`: from the run's point-in-time
    universe (the members of some day of the range, former ones included)."""
    lake = resources["lake"]
    universe = load_universe(lake, list(ASSET_CLASSES), [], load_members(lake), [START, END])
    return [i.symbol for i in rotating_sample(universe, 25, dt.date.fromisoformat(day))]


def test_a_clean_backfill_passes_every_check_with_real_splits_and_dividends(resources):
    result = backfill(resources)
    assert result.success
    results = evaluations(result)
    expected = {
        "yahoo_daily_bars:bar_coverage",
        "yahoo_daily_bars:bar_anomalies",
        "market_bars:bar_coverage",
        "market_bars:bar_staleness",
        "market_bars:cross_source_drift",
        "market_bars:bar_anomalies",
        "market_bars:quality_score",
        "market_bars:universe_coverage",
    }
    assert expected <= set(results)
    failed = {k: v.description for k, v in results.items() if not v.passed}
    assert not failed  # NVDA's 10-for-1 split and every dividend in the window explained
    drift = results["market_bars:cross_source_drift"]
    assert drift.metadata["overlap"].value > 0 and drift.metadata["max_drift"].value < 0.005


def test_each_fault_trips_its_check_at_its_severity_and_names_symbol_and_date(resources, sandbox):
    drifting, doubled = polygon_sample(resources, END)[:2]
    sandbox.faults.add("stale", endpoint="yahoo.chart", symbol="KO", sessions=3)
    sandbox.faults.add("stale", endpoint="polygon.aggs", symbol="KO", sessions=3)
    sandbox.faults.add("stale", endpoint="alpha_vantage.daily", symbol="KO", sessions=3)
    sandbox.faults.add(
        "missing_days", endpoint="yahoo.chart", symbol="AAPL", start="2024-06-24", end="2024-07-12"
    )
    sandbox.faults.add(
        "drift", endpoint="polygon.aggs", symbol=drifting, relative=0.03, start="2024-07-10",
        end="2024-07-10",
    )  # fmt: skip
    sandbox.faults.add("duplicate_rows", endpoint="polygon.aggs", symbol=doubled)
    result = backfill(resources)
    results = evaluations(result)

    stale = results["market_bars:bar_staleness"]
    assert not stale.passed and stale.severity.value == "ERROR"
    assert "KO" in stale.description and "2024-07-09" in stale.description

    coverage = results["yahoo_daily_bars:bar_coverage"]
    assert not coverage.passed and coverage.severity.value == "ERROR"  # 15 of 30 sessions
    assert "AAPL" in coverage.description and "2024-06-24" in coverage.description

    drift = results["market_bars:cross_source_drift"]
    assert not drift.passed and drift.severity.value == "ERROR"
    assert drifting in drift.description and "2024-07-10" in drift.description

    duplicates = results["polygon_daily_bars:source_duplicates"]  # (yfinance dedupes itself)
    assert not duplicates.passed and duplicates.severity.value == "WARN"  # identical copies
    assert f"{doubled} 2024-06-03" in duplicates.description


def test_an_error_check_blocks_downstream_until_the_data_is_fixed(resources, sandbox):
    sandbox.faults.add("unadjusted", endpoint="yahoo.chart", symbol="NVDA")
    blocked = backfill(resources)
    assert not blocked.success
    anomalies = evaluations(blocked)["yahoo_daily_bars:bar_anomalies"]
    assert not anomalies.passed and anomalies.severity.value == "ERROR"
    assert "NVDA 2024-06-10 unadjusted split" in anomalies.description
    lake = resources["lake"]
    assert lake.partition_keys("market_bars") == []  # market_bars never ran

    sandbox.faults.clear()
    fixed = backfill(resources, refresh=True)  # the source fixed its history: fetch it again
    assert fixed.success
    assert evaluations(fixed)["yahoo_daily_bars:bar_anomalies"].passed
    assert len(lake.partition_keys("market_bars")) == 30


def test_the_ci_runner_exits_0_2_and_1_and_writes_junit(resources, sandbox, home, capsys):
    assert backfill(resources).success
    report = home / "checks.xml"
    code = cli(
        [
            *("check", "--select", "market_bars", "--partition-range", f"{START}...{END}"),
            *("--junit-xml", str(report), "--json", str(home / "checks.json")),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "cross_source_drift" in out and "PASS" in out
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and suite.get("tests") == "7" and suite.get("failures") == "0"
    assert {c.get("name") for c in suite.iter("testcase")} >= {
        f"cross_source_drift [{START}..{END}]"
    }

    drifting = polygon_sample(resources, END)[0]  # the sample of the run's last day
    sandbox.faults.add(
        "drift", endpoint="polygon.aggs", symbol=drifting, relative=0.02, start="2024-07-11",
        end="2024-07-11",
    )  # fmt: skip
    backfill(resources, refresh=True)
    code = cli(["check", "--select", "market_bars", "--junit-xml", str(report)])
    out = capsys.readouterr().out
    assert code == 2, out
    assert f"{drifting} 2024-07-11" in out
    failure = next(ET.parse(report).getroot().iter("failure"))
    assert drifting in (failure.text or "") and "2024-07-11" in (failure.text or "")

    assert cli(["check", "--select", "no_such_asset"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no_such_asset" in err[0]

    # A partition the range names that the lake lacks is a failed check naming it, not a
    # window that silently shrinks (nor "could not run": the data is missing, that is the news).
    assert cli(["check", "--select", "market_bars", "--partition", "2024-01-02"]) == 2
    assert "absent from the lake: 2024-01-02" in capsys.readouterr().out
    assert cli(["check", "--select", "market_bars", "--partition", "2020-01-02"]) == 1
    assert "market_bars has no partition 2020-01-02" in capsys.readouterr().err

    # bad options are "could not run" too, never 2, which means a check failed
    bad_options = (
        ["--fail-on", "never"],
        ["--partition", START, "--partition-range", "a...b"],
        ["--no-such-option"],
    )
    for bad in bad_options:
        with pytest.raises(SystemExit) as exited:
            cli(["check", *bad])
        assert exited.value.code == 1, bad


def test_a_range_whose_newest_partitions_are_missing_fails_as_named(resources, capsys):
    """The CI job checks "the last five closed weekdays"; the lake stopped updating three days
    before. The range is judged as named: each missing day is named, coverage counts them as
    missing and staleness is measured at the range's end, where they were due."""
    assert backfill(resources).success
    lake = resources["lake"]
    for key in ("2024-07-10", "2024-07-11", "2024-07-12"):
        assert lake.delete_partition("market_bars", key)
    code = cli(
        [
            *("check", "--select", "market_bars", "--partition-range", "2024-07-08...2024-07-12"),
            *("--fail-on", "warn"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 2, out
    failed = {line.split()[1] for line in out.splitlines() if line.startswith("FAILED")}
    assert {
        "market_bars:partitions_present",
        "market_bars:bar_coverage",
        "market_bars:bar_staleness",
    } <= failed, out
    assert (
        "3 of 5 expected partition(s) of 2024-07-08..2024-07-12 absent from the lake: "
        "2024-07-10...2024-07-12 (3)" in out
    )
    # The same range with every partition present passes: it was the missing days.
    assert backfill(resources).success
    assert (
        cli(["check", "--select", "market_bars", "--partition-range", "2024-07-08...2024-07-12"])
        == 0
    )


def test_the_recent_window_leaves_out_today_until_a_run_fills_it(resources, capsys, monkeypatch):
    """Monday 2024-07-15 at 23:00 UTC: the NYSE session has closed and settled (20:30 UTC),
    but FX has not, so the schedule has not filled the day yet and its partition's window is
    still open. `ingest-platform check` without a range judges the newest partitions the lake
    can be asked for: up to Friday, not a Monday that no run was due to fill (CI on a fresh
    clone that evening failed universe_coverage with "0 of 503 members" for today)."""
    assert backfill(resources).success
    monkeypatch.setenv(settings.NOW_ENV, "2024-07-15T23:00:00+00:00")
    code = cli(["check", "--select", "market_bars", "--fail-on", "warn"])
    out = capsys.readouterr().out
    assert code == 0, out
    windows = {line.split()[2] for line in out.splitlines() if " market_bars " in line}
    assert windows == {f"2024-06-13..{END}"}, out


def test_without_select_the_runner_checks_what_the_lake_holds_for_the_key(resources, capsys):
    """The CI lake has market data but no minute bars (today's stream day is still open), no
    economic data here either: no --select checks the rest and exits 0, naming the skipped."""
    assert backfill(resources).success
    code = cli(["check"])
    out = capsys.readouterr().out
    assert code == 0, out
    skipped = next(line for line in out.splitlines() if "nothing in the lake" in line)
    assert "kraken_book_minute_bars" in skipped and "economic_indicators" in skipped
    assert "market_bars:cross_source_drift" in out

    # a day is not a key of the monthly economic_indicators: skipped, not "could not run"
    code = cli(["check", "--partition", END])
    out = capsys.readouterr().out
    assert code == 0, out
    (line,) = [line for line in out.splitlines() if "not one of their partitions" in line]
    assert line == (  # the stream's days start in 2026
        f"skipped economic_indicators, kraken_book_minute_bars: {END} is not one of their "
        "partitions"
    )

    # asked for by name, an asset without that partition is a usage error naming both
    assert cli(["check", "--select", "economic_indicators", "--partition", END]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "economic_indicators" in err[0] and END in err[0]
    # and asked for by name, checks over nothing in the lake could not run
    assert cli(["check", "--select", "kraken_book_minute_bars"]) == 1
    assert "could not run" in capsys.readouterr().err
