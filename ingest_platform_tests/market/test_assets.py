"""Market-bar assets end to end: real yfinance and HTTP clients against the sandbox.

Each test materializes a range through Dagster with the sandbox standing in for every provider,
then checks the lake, the run's metadata and the sandbox's request counters.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from urllib.parse import quote, quote_plus

import pandas as pd
import pyarrow.parquet as pq
import pytest
from dagster import DagsterInstance, EnvVar, materialize

from ingest_platform.core import calendars, settings
from ingest_platform.market.assets import MARKET_ASSETS
from ingest_platform.market.resources import AlphaVantage, Polygon, YahooFinance
from ingest_platform.reference.assets import index_membership, instruments
from ingest_platform.reference.resources import ReferenceFiles
from ingest_platform.reference.schema import INSTRUMENTS
from ingest_platform.reference.universe import load_instruments
from ingest_platform.sandbox.data import MarketSimulator
from ingest_platform.sandbox.http import SandboxHTTPServer

pytestmark = pytest.mark.slow

AS_OF = "2026-11-20"
# Keys with URL-unsafe characters: redaction must catch their percent-encoded spellings too.
AV_KEY = "av-test+key/7f3e=9a1c55"
POLYGON_KEY = "pg-test+key/2b8d=4e6f90"
SYMBOLS = ["AAPL", "MSFT", "NVDA", "BRK.B", "JNJ", "SPY", "QQQ", "EURUSD", "USDJPY", "IBM"]
START, END = "2024-06-03", "2024-07-12"
SESSIONS = calendars.sessions(START, END)  # 28: Juneteenth and July 4th fall in the range


@pytest.fixture(scope="module")
def simulator() -> MarketSimulator:
    return MarketSimulator(seed=7, as_of=AS_OF)


@pytest.fixture
def sandbox(simulator):
    with SandboxHTTPServer(simulator) as server:
        yield server


FAST = {
    "backoff_base_seconds": 0.01,
    "backoff_cap_seconds": 0.05,
    "max_retry_after_seconds": 5.0,
    "timeout_seconds": 2.0,
    "max_attempts": 3,
}


@pytest.fixture
def resources(sandbox, lake, tmp_path, monkeypatch):
    """The market resources as the code location builds them, pointed at the sandbox by the
    environment (as `ingest-platform sandbox` prints it), with fast retries."""
    monkeypatch.setenv(settings.SANDBOX_URL_ENV, sandbox.url)
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("ALPHA_VANTAGE_API_KEY", AV_KEY)
    monkeypatch.setenv("POLYGON_API_KEY", POLYGON_KEY)
    res = {
        "lake": lake,
        "reference_files": ReferenceFiles(directory=str(settings.reference_dir())),
        "yahoo": YahooFinance(**FAST),
        "alpha_vantage": AlphaVantage(
            api_key=EnvVar("ALPHA_VANTAGE_API_KEY"), note_retry_after_seconds=0.05, **FAST
        ),
        "polygon": Polygon(api_key=EnvVar("POLYGON_API_KEY"), **FAST),
    }
    assert materialize([instruments, index_membership], resources=res).success
    return res


def run_range(resources, start=START, end=END, symbols=SYMBOLS, instance=None, **config):
    source_config = {"symbols": symbols, **config}
    return materialize(
        MARKET_ASSETS,
        resources=resources,
        instance=instance,
        tags={
            "dagster/asset_partition_range_start": start,
            "dagster/asset_partition_range_end": end,
        },
        run_config={
            "ops": {
                "yahoo_daily_bars": {"config": source_config},
                "alpha_vantage_daily_bars": {"config": source_config},
                "polygon_daily_bars": {"config": source_config},
                "market_bars": {"config": {"symbols": symbols}},
            }
        },
        raise_on_error=False,
    )


def materializations(result, asset: str) -> dict[str, dict]:
    return {
        e.materialization.partition: {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.materialization.asset_key.to_user_string() == asset
    }


def run_meta(result, asset: str) -> dict:
    """The run's own figures: recorded once, on the newest partition of the run."""
    meta = materializations(result, asset)
    return meta[max(meta)]


def error_text(error) -> str:
    """A Dagster error with every cause in its chain, as one string."""
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return " / ".join(parts)


def lake_digest(lake) -> dict[str, str]:
    root = Path(lake.root)
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.parquet"))
    }


def test_a_range_backfill_makes_one_request_per_symbol_per_source(
    resources, sandbox, simulator, lake
):
    result = run_range(resources)
    assert result.success

    yahoo = sandbox.counters.by_symbol("yahoo.chart")
    assert yahoo == {
        s.replace(".", "-") + ("=X" if s in ("EURUSD", "USDJPY") else ""): 1 for s in SYMBOLS
    }
    # Alpha Vantage covers listed securities only; Polygon covers everything.
    assert sorted(sandbox.counters.by_symbol("alpha_vantage.daily").values()) == [1] * 8
    assert sorted(sandbox.counters.by_symbol("polygon.aggs").values()) == [1] * 10

    bars = lake.read("market_bars")
    assert set(bars["source"]) == {"yahoo"}
    truth = simulator.daily_bars("AAPL", START, END)
    aapl = bars[bars.symbol == "AAPL"].set_index("date")
    assert list(aapl.index) == list(truth.index)
    assert aapl["close"].tolist() == pytest.approx(truth["close"].tolist(), rel=1e-12)
    assert aapl["adj_close"].tolist() == pytest.approx(truth["adj_close"].tolist(), rel=1e-12)

    actions = lake.read("corporate_actions")
    nvda_split = actions[(actions.symbol == "NVDA") & (actions.action == "split")]
    assert nvda_split[["date", "value"]].values.tolist() == [[pd.Timestamp("2024-06-10"), 10.0]]

    meta = materializations(result, "market_bars")
    assert len(meta) == 30  # 2024-06-03..2024-07-12 weekdays
    ordinary = meta["2024-07-11"]
    assert ordinary["dagster/row_count"] == 10 and ordinary["missing_count"] == 0
    assert ordinary["market_closed"] is False


def test_a_holiday_partition_is_closed_not_failed(resources, lake):
    equities = run_range(resources, "2024-07-04", "2024-07-04", symbols=["AAPL", "SPY"])
    assert equities.success
    meta = materializations(equities, "yahoo_daily_bars")["2024-07-04"]
    assert meta["market_closed"] is True
    assert meta["dagster/row_count"] == 0 and meta["expected_symbols"] == 0
    assert lake.read("yahoo_daily_bars", ["2024-07-04"]).empty

    with_fx = run_range(resources, "2024-07-04", "2024-07-04", symbols=["AAPL", "EURUSD"])
    assert with_fx.success
    fx_meta = materializations(with_fx, "market_bars")["2024-07-04"]
    assert fx_meta["market_closed"] is True and fx_meta["dagster/row_count"] == 1
    assert lake.read("market_bars", ["2024-07-04"])["symbol"].tolist() == ["EURUSD"]


def test_indices_and_futures_come_from_the_sources_that_carry_them(
    resources, sandbox, simulator, lake
):
    listed = ["^GSPC", "^VIX", "CL=F", "GC=F"]
    result = run_range(resources, "2024-07-01", "2024-07-05", symbols=listed)
    assert result.success
    assert sandbox.counters.by_symbol("yahoo.chart") == {s: 1 for s in listed}
    assert sandbox.counters.by_symbol("polygon.aggs") == {"I:SPX": 1, "I:VIX": 1}
    assert sandbox.counters.get("alpha_vantage.daily") == 0

    bars = lake.read("market_bars")
    july_4 = bars[bars.date == "2024-07-04"]
    assert sorted(july_4["symbol"]) == ["CL=F", "GC=F"]  # CME trades, NYSE is closed
    assert materializations(result, "market_bars")["2024-07-04"]["market_closed"] is True
    crude = bars[bars.symbol == "CL=F"].set_index("date")["close"]
    truth = simulator.daily_bars("CL=F", "2024-07-01", "2024-07-05")["close"]
    assert crude.tolist() == pytest.approx(truth.tolist(), rel=1e-12)
    assert (bars.loc[bars.symbol == "^VIX", "volume"] == 0).all()
    polygon = lake.read("polygon_daily_bars")
    assert set(polygon["symbol"]) == {"^GSPC", "^VIX"} and (polygon["volume"] == 0).all()


def test_rerunning_a_range_leaves_the_lake_unchanged(resources, sandbox, lake):
    assert run_range(resources).success
    before = lake_digest(lake)
    requests_before = sandbox.counters.get("yahoo.chart")

    again = run_range(resources)  # default: fetch only what is missing
    assert again.success
    assert sandbox.counters.get("yahoo.chart") == requests_before  # nothing was missing
    assert lake_digest(lake) == before

    refreshed = run_range(resources, refresh=True)  # fetch everything again
    assert refreshed.success
    assert sandbox.counters.get("yahoo.chart") == requests_before + len(SYMBOLS)
    assert lake_digest(lake) == before
    meta = run_meta(refreshed, "yahoo_daily_bars")
    assert meta["partitions_unchanged"] == 30 and meta["partitions_written"] == 0


def test_the_daily_run_fetches_only_the_new_day(resources, lake, monkeypatch):
    assert run_range(resources, START, "2024-07-11").success
    before = lake_digest(lake)
    # The evening run of 2024-07-12 (a request reaches forward to "today", so the clock says
    # which day that is: asked in 2026, it would reach to 2026 to learn its answer's basis).
    monkeypatch.setenv(settings.NOW_ENV, "2024-07-13T02:00:00+00:00")
    daily = run_range(resources, "2024-07-12", "2024-07-12")
    assert daily.success
    meta = materializations(daily, "yahoo_daily_bars")["2024-07-12"]
    assert meta["fetched_range"] == "2024-07-12..2024-07-12"
    assert meta["requested_symbols"] == len(SYMBOLS) and meta["dagster/row_count"] == len(SYMBOLS)
    after = lake_digest(lake)
    assert {k: v for k, v in after.items() if k in before} == before  # older days untouched


def test_throttling_and_outages_are_retried_within_bounds(resources, sandbox, lake):
    sandbox.faults.add("rate_limit", endpoint="yahoo.chart", symbol="AAPL", times=1, retry_after=1)
    sandbox.faults.add("server_error", endpoint="polygon.aggs", symbol="MSFT", times=2)
    sandbox.faults.add("rate_limit", endpoint="polygon.aggs", symbol="SPY", times=1, retry_after=1)
    sandbox.faults.add("truncated_json", endpoint="alpha_vantage.daily", symbol="JNJ", times=1)
    sandbox.faults.add("throttle_note", endpoint="alpha_vantage.daily", symbol="IBM", times=1)

    result = run_range(resources)
    assert result.success
    polygon = sandbox.counters.by_symbol("polygon.aggs")
    assert polygon["MSFT"] == 3 and polygon["SPY"] == 2
    av = sandbox.counters.by_symbol("alpha_vantage.daily")
    assert av["JNJ"] == 2 and av["IBM"] == 2
    assert sandbox.counters.by_symbol("yahoo.chart")["AAPL"] >= 2
    for asset in ("yahoo_daily_bars", "polygon_daily_bars", "alpha_vantage_daily_bars"):
        assert run_meta(result, asset)["failed_count"] == 0, asset
    assert len(lake.read("polygon_daily_bars").query("symbol == 'MSFT'")) == len(SESSIONS)


def _add_delisted_instrument(lake):
    frame = load_instruments(settings.reference_dir())
    extra = frame[frame.symbol == "AAPL"].assign(
        symbol="ZZZQ", yahoo_symbol="ZZZQ", isin=None, instrument_id="ZZZQ@2018-01-01"
    )
    INSTRUMENTS.write_all(lake, pd.concat([frame, extra], ignore_index=True))


def test_a_failing_symbol_is_named_and_the_rest_is_written(resources, sandbox, lake):
    _add_delisted_instrument(lake)
    sandbox.faults.add("server_error", endpoint="polygon.aggs", symbol="NVDA")  # never heals
    symbols = [*SYMBOLS, "ZZZQ"]

    result = run_range(resources, symbols=symbols, max_failure_rate=0.5)
    assert result.success
    yahoo_meta = run_meta(result, "yahoo_daily_bars")
    assert yahoo_meta["failed_count"] == 1
    assert "| ZZZQ | No data found, symbol may be delisted" in (yahoo_meta["failed_symbols"])
    polygon_meta = run_meta(result, "polygon_daily_bars")
    assert polygon_meta["failed_count"] == 2 and "| ZZZQ |" in polygon_meta["failed_symbols"]
    nvda = next(line for line in polygon_meta["failed_symbols"].splitlines() if "| NVDA |" in line)
    assert "HTTP 503" in nvda and "gave up after 3 attempt(s)" in nvda
    assert sandbox.counters.by_symbol("polygon.aggs")["NVDA"] == 3  # bounded

    day = materializations(result, "yahoo_daily_bars")["2024-07-11"]
    assert day["missing_symbols"] == "`ZZZQ`" and day["dagster/row_count"] == len(SYMBOLS)
    assert "ZZZQ" not in set(lake.read("market_bars")["symbol"])


def test_too_many_failures_fail_the_run_after_recording_the_good_data(
    resources, sandbox, lake, tmp_path
):
    _add_delisted_instrument(lake)
    with DagsterInstance.ephemeral() as instance:
        result = run_range(
            resources, symbols=[*SYMBOLS, "ZZZQ"], max_failure_rate=0.0, instance=instance
        )
        assert not result.success
        check = next(
            e.event_specific_data
            for e in result.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
            and e.event_specific_data.asset_key.to_user_string() == "yahoo_daily_bars"
        )
        assert not check.passed and "ZZZQ" in check.metadata["failed"].value
        # The good partitions are recorded and complete; the consolidated asset did not run.
        assert len(materializations(result, "yahoo_daily_bars")) == 30
        assert "market_bars" not in {
            e.materialization.asset_key.to_user_string()
            for e in result.get_asset_materialization_events()
        }
    assert len(lake.partition_keys("yahoo_daily_bars")) == 30
    assert lake.partition_keys("market_bars") == []


def test_nothing_is_half_written_after_faults(resources, sandbox, lake):
    sandbox.faults.add("truncated_json", endpoint="polygon.aggs", symbol="AAPL")
    sandbox.faults.add("timeout", endpoint="alpha_vantage.daily", symbol="MSFT", delay=3)
    result = run_range(resources, max_failure_rate=0.5)
    assert result.success
    polygon_failed = run_meta(result, "polygon_daily_bars")["failed_symbols"]
    assert "invalid JSON" in next(x for x in polygon_failed.splitlines() if "| AAPL |" in x)
    av_failed = run_meta(result, "alpha_vantage_daily_bars")["failed_symbols"]
    assert "timed out" in next(x for x in av_failed.splitlines() if "| MSFT |" in x)

    root = Path(lake.root)
    assert not [p for p in root.rglob("*") if p.name.startswith(".")]  # no temp files left
    for path in root.rglob("*.parquet"):
        pq.read_table(path)  # every partition is a complete Parquet file
    polygon = lake.read("polygon_daily_bars")
    assert "AAPL" not in set(polygon["symbol"])
    assert len(polygon) == 7 * len(SESSIONS) + 2 * 30  # 7 listed symbols, 2 FX pairs (24/5)


def _spellings(secret: str) -> list[bytes]:
    return [v.encode() for v in {secret, quote(secret, safe=""), quote_plus(secret, safe="")}]


def test_api_keys_never_reach_metadata_logs_or_files(resources, sandbox, lake, tmp_path, caplog):
    """A full fault run in which providers echo the keys back: no key, in any spelling, in
    any event, log line or file written."""
    caplog.set_level(logging.DEBUG)
    sandbox.faults.add("server_error", endpoint="alpha_vantage.daily", symbol="IBM")
    sandbox.faults.add("echo_key", endpoint="alpha_vantage.daily", symbol="MSFT")
    sandbox.faults.add("throttle_information", endpoint="alpha_vantage.daily", symbol="JNJ")
    sandbox.faults.add("echo_key", endpoint="polygon.aggs", symbol="AAPL")
    sandbox.faults.add("truncated_json", endpoint="polygon.aggs", symbol="SPY")
    sandbox.faults.add("echo_key", endpoint="yahoo.chart", symbol="NVDA", times=1)
    with DagsterInstance.ephemeral() as instance:
        result = run_range(resources, max_failure_rate=0.9, instance=instance)
        assert result.success
        records = instance.get_records_for_run(result.run_id).records
        text = "\n".join(
            json.dumps(
                r.event_log_entry.to_dict()
                if hasattr(r.event_log_entry, "to_dict")
                else str(r.event_log_entry),
                default=str,
            )
            for r in records
        )
    assert "IBM" in text and "apikey=***" in text  # the failure is reported, redacted
    assert "We have detected your API key as ***" in text  # the quota notice, scrubbed
    assert "Unknown API Key '***'" in text  # Polygon's echo, scrubbed
    logged = caplog.text
    for key in (AV_KEY, POLYGON_KEY):
        for spelling in _spellings(key):
            assert spelling.decode() not in text
            assert spelling.decode() not in logged
            for path in tmp_path.rglob("*"):
                if path.is_file():
                    assert spelling not in path.read_bytes(), path


def test_alpha_vantage_notices_are_told_apart_end_to_end(resources, sandbox):
    """A burst notice is waited out; the daily quota stops every later call of the day; the
    premium notice is a configuration error named as such, never retried."""
    sandbox.faults.add(
        "throttle_information",
        endpoint="alpha_vantage.daily",
        symbol="IBM",
        times=1,
        variant="burst",
    )
    sandbox.faults.add(
        "throttle_information", endpoint="alpha_vantage.daily", symbol="MSFT", variant="premium"
    )
    first = run_range(resources, "2024-07-08", "2024-07-12", max_failure_rate=0.5)
    assert first.success
    av = sandbox.counters.by_symbol("alpha_vantage.daily")
    assert av["IBM"] == 2 and av["MSFT"] == 1  # burst retried once; premium not retried
    failed = run_meta(first, "alpha_vantage_daily_bars")["failed_symbols"]
    assert "premium only" in next(x for x in failed.splitlines() if "| MSFT |" in x)

    sandbox.counters.reset()
    sandbox.faults.add("throttle_information", endpoint="alpha_vantage.daily", variant="daily")
    second = run_range(resources, "2024-07-15", "2024-07-19", max_failure_rate=1.0)
    assert second.success
    assert sum(sandbox.counters.by_symbol("alpha_vantage.daily").values()) == 1
    meta = run_meta(second, "alpha_vantage_daily_bars")
    assert meta["budget_remaining_today"] == 0
    assert "daily quota" in meta["failed_symbols"]


def test_a_secondary_source_never_plans_beyond_its_daily_budget(resources, sandbox):
    budgeted = {
        **resources,
        "alpha_vantage": AlphaVantage(
            api_key=EnvVar("ALPHA_VANTAGE_API_KEY"),
            daily_call_limit=3,
            sample_size=20,
            backoff_base_seconds=0.01,
        ),
    }
    first = run_range(budgeted, "2024-07-08", "2024-07-12")
    assert first.success
    assert sandbox.counters.get("alpha_vantage.daily") == 3
    meta = run_meta(first, "alpha_vantage_daily_bars")
    assert meta["sample"].count("`") == 2 * 3 and meta["budget_remaining_today"] == 0

    spent = run_range(budgeted, "2024-07-15", "2024-07-19")
    assert spent.success  # a spent budget means no sample today, not a failed run
    assert sandbox.counters.get("alpha_vantage.daily") == 3
    assert run_meta(spent, "alpha_vantage_daily_bars")["sample"] == "_none_"


def _members_in_force(intervals: pd.DataFrame, day: str) -> set[str]:
    """The tickers in force of the S&P 500 members on `day`, straight from the reconciled
    intervals (the oracle the partitions are compared with)."""
    at = pd.Timestamp(day)
    on = (intervals["added"] <= at) & (intervals["removed"].isna() | (intervals["removed"] > at))
    return set(intervals.loc[on, "symbol"])


def test_three_years_of_the_point_in_time_universe_in_one_run(resources, sandbox, lake):
    """Issue #4's bar with issue 17's universe: 2023-01-02...2025-12-31, one history request
    per symbol per source, former members included; each partition holds that day's members."""
    first, last = "2023-01-02", "2025-12-31"
    with DagsterInstance.ephemeral() as instance:
        result = materialize(
            MARKET_ASSETS,
            resources=resources,
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
            },
            run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}},
            raise_on_error=False,
        )
    assert result.success
    everything = lake.read("instruments")
    intervals = lake.read("index_membership")
    touching = intervals[
        (intervals["added"] <= pd.Timestamp(last))
        & (intervals["removed"].isna() | (intervals["removed"] > pd.Timestamp(first)))
    ]
    # ETFs, FX, indices, futures, and every equity that was a member on some day of the range
    # (a member that joined in 2026, CIEN say, is not asked for).
    universe = everything[
        (everything["asset_class"] != "equity")
        | everything["instrument_id"].isin(touching["instrument_id"])
    ]
    assert (~universe["active"]).sum() > 50  # former members are part of the run
    assert "CIEN" in set(everything["symbol"]) - set(universe["symbol"])

    yahoo = sandbox.counters.by_symbol("yahoo.chart")
    assert set(yahoo) == set(universe["yahoo_symbol"]) and set(yahoo.values()) == {1}
    for endpoint in ("alpha_vantage.daily", "polygon.aggs"):
        assert set(sandbox.counters.by_symbol(endpoint).values()) == {1}, endpoint

    # Delisted answers, both forms, are recorded as unavailable with Yahoo's reason, not failed.
    meta = run_meta(result, "yahoo_daily_bars")
    assert meta["failed_count"] == 0
    record = lake.read_json("unavailable_yahoo.json")["symbols"]
    assert record["DISH"]["reason"] == "No data found, symbol may be delisted"  # a 404
    assert (
        record["DISH"]["first_date"] == "2023-01-03"  # the range's first session
        and record["DISH"]["last_date"] == "2023-06-16"  # then Juneteenth, then gone
    )
    assert "empty chart" in record["ATVI"]["reason"]  # a 200 with no bars
    assert record["ATVI"]["instrument_id"] == "ATVI@2018-01-01"
    assert meta["unavailable_recorded"] == len(record) > 0
    assert "DISH" in meta["unavailable_from_source"]
    unavailable = {r["instrument_id"]: r for r in record.values()}

    bars = lake.read("market_bars", columns=["symbol", "date", "instrument_id"])
    equities = set(everything.loc[everything["asset_class"] == "equity", "instrument_id"])
    keys = lake.partition_keys("market_bars")
    assert keys[0] == first and len(keys) == 783
    by_day = bars.groupby("date")
    for key in keys:
        if not calendars.is_session(key):
            continue
        day = by_day.get_group(pd.Timestamp(key))
        held = set(day.loc[day["instrument_id"].isin(equities), "symbol"])
        gaps = {
            s
            for s, i in zip(intervals["symbol"], intervals["instrument_id"], strict=True)
            if i in unavailable
            and unavailable[i]["first_date"] <= key <= unavailable[i]["last_date"]
        }
        assert held == _members_in_force(intervals, key) - gaps, key

    def holds(symbol: str, day: str) -> bool:
        return bool(((bars["symbol"] == symbol) & (bars["date"] == pd.Timestamp(day))).any())

    # Joined later: absent before its date. Removed: present before its removal, gone after.
    assert not holds("UBER", "2023-12-15") and holds("UBER", "2023-12-18")
    assert holds("SEDG", "2023-12-15") and not holds("SEDG", "2023-12-18")
    assert not bars.loc[bars["symbol"] == "SEDG", "date"].gt(pd.Timestamp("2023-12-15")).any()
    # A rename (twice: FISV -> FI -> FISV) is one instrument under the ticker of each day.
    fiserv = bars[bars["instrument_id"] == "FISV@2018-01-01"].set_index("date")["symbol"]
    assert fiserv[pd.Timestamp("2023-06-06")] == "FISV"
    assert fiserv[pd.Timestamp("2023-06-07")] == "FI"
    assert fiserv[pd.Timestamp("2025-11-10")] == "FI"
    assert fiserv[pd.Timestamp("2025-11-11")] == "FISV"
    assert len(fiserv) == len(calendars.sessions(first, last))  # no day lost at either change
    assert not bars.duplicated(["symbol", "date"]).any()


def test_secondary_rows_fill_a_yahoo_hole_on_the_split_adjusted_basis(
    resources, sandbox, simulator, lake
):
    """NVDA split 10-for-1 on 2024-06-10. Yahoo misses NVDA's first week (before the split)
    and Polygon fails on NVDA, so market_bars takes Alpha Vantage's as-traded bars there:
    they must land divided by 10, on the basis of every other NVDA row."""
    sandbox.faults.add(
        "missing_days", endpoint="yahoo.chart", symbol="NVDA", start="2024-06-03", end="2024-06-07"
    )
    sandbox.faults.add("server_error", endpoint="polygon.aggs", symbol="NVDA")
    assert run_range(resources, max_failure_rate=0.5).success

    bars = lake.read("market_bars").query("symbol == 'NVDA'").set_index("date")
    truth = simulator.daily_bars("NVDA", START, END)
    hole = bars.loc["2024-06-03":"2024-06-07"]
    assert set(hole["source"]) == {"alpha_vantage"} and len(hole) == 5
    assert set(bars.loc["2024-06-10":, "source"]) == {"yahoo"}
    assert hole["close"].tolist() == pytest.approx(
        truth.loc["2024-06-03":"2024-06-07", "close"].tolist(),
        rel=1e-3,  # sources drift a little
    )
    raw = lake.read("alpha_vantage_daily_bars").query("symbol == 'NVDA'").set_index("date")
    assert raw.loc["2024-06-07", "close"] == pytest.approx(10 * hole.loc["2024-06-07", "close"])


def test_a_subset_run_merges_into_the_partition_and_never_deletes_other_symbols(resources, lake):
    assert run_range(resources).success
    before = lake.read("market_bars")
    subset = run_range(resources, symbols=["AAPL"], refresh=True)
    assert subset.success
    after = lake.read("market_bars")
    assert len(after) == len(before) and set(after["symbol"]) == set(SYMBOLS)
    assert materializations(subset, "market_bars")["2024-07-11"]["missing_count"] == 0


def test_a_corrupt_partition_fails_the_run_by_name_and_a_refresh_rewrites_it(resources, lake):
    assert run_range(resources, "2024-07-08", "2024-07-12").success
    path = Path(lake.partition_path("yahoo_daily_bars", "2024-07-10").path)
    rows = len(lake.read("yahoo_daily_bars", ["2024-07-10"]))
    path.write_bytes(path.read_bytes()[:100])  # a torn file, as a failing disk leaves one

    failed = run_range(resources, "2024-07-08", "2024-07-12")
    assert not failed.success
    errors = [error_text(e.step_failure_data.error) for e in failed.all_events if e.is_step_failure]
    assert any("2024-07-10.parquet" in m and "refresh: true" in m for m in errors), errors

    repaired = run_range(resources, "2024-07-08", "2024-07-12", refresh=True)
    assert repaired.success
    assert len(lake.read("yahoo_daily_bars", ["2024-07-10"])) == rows


def test_yahoo_throttling_is_governed_by_our_retry_policy_and_contained(resources, sandbox, caplog):
    """A persistent 429 with Retry-After on one symbol: exactly max_attempts requests (not
    yfinance's two per attempt), each retry waiting at least the Retry-After, and every other
    symbol still one request (no global cookie-strategy flip making them pay)."""
    caplog.set_level(logging.INFO, logger="ingest_platform.core.http.retry")
    sandbox.faults.add("rate_limit", endpoint="yahoo.chart", symbol="AAPL", retry_after=1)
    sandbox.faults.add("server_error", endpoint="yahoo.chart", symbol="MSFT", times=1)
    result = run_range(resources, "2024-07-08", "2024-07-12", max_failure_rate=0.5)
    assert result.success
    yahoo = sandbox.counters.by_symbol("yahoo.chart")
    assert yahoo["AAPL"] == FAST["max_attempts"]
    assert yahoo["MSFT"] == 2  # one 503, one retry
    assert {s: n for s, n in yahoo.items() if s not in ("AAPL", "MSFT")} == dict.fromkeys(
        [s for s in yahoo if s not in ("AAPL", "MSFT")], 1
    )
    waits = [
        float(r.getMessage().split(" in ")[1].split(" s ")[0])
        for r in caplog.records
        if "yahoo AAPL: retry" in r.getMessage()
    ]
    assert len(waits) == FAST["max_attempts"] - 1 and min(waits) >= 1.0
    failed = run_meta(result, "yahoo_daily_bars")["failed_symbols"]
    assert "HTTP 429" in next(x for x in failed.splitlines() if "| AAPL |" in x)


def test_a_session_is_stored_only_once_it_has_closed_and_settled(resources, lake, monkeypatch):
    """Runs at 14:00 New York (mid-session), 17:00 (NYSE settled, FX still trading) and the
    next morning: the day's bars land in that order, never as a partial bar."""
    day = "2024-07-10"
    monkeypatch.setenv(settings.NOW_ENV, "2024-07-10T14:00:00-04:00")
    mid = run_range(resources, "2024-07-08", day)
    assert mid.success
    assert day not in lake.partition_keys("yahoo_daily_bars")  # left missing, not empty
    assert day not in lake.partition_keys("market_bars")
    assert run_meta(mid, "yahoo_daily_bars")["unsettled_rows_dropped"] == len(SYMBOLS)
    assert materializations(mid, "yahoo_daily_bars")[day]["stored"] is False

    monkeypatch.setenv(settings.NOW_ENV, "2024-07-10T17:00:00-04:00")
    evening = run_range(resources, day, day)
    assert evening.success
    stored = set(lake.read("market_bars", [day])["symbol"])
    assert stored == set(SYMBOLS) - {"EURUSD", "USDJPY"}  # FX's session ends at 00:00 UTC
    assert materializations(evening, "market_bars")[day]["missing_count"] == 2

    monkeypatch.setenv(settings.NOW_ENV, "2024-07-11T01:00:00-04:00")
    assert run_range(resources, day, day).success
    assert set(lake.read("market_bars", [day])["symbol"]) == set(SYMBOLS)


def test_a_stale_source_in_a_multi_day_run_is_named(resources, sandbox, lake):
    sandbox.faults.add(
        "missing_days", endpoint="yahoo.chart", symbol="AAPL", start="2024-07-11", end=END
    )
    with DagsterInstance.ephemeral() as instance:
        result = run_range(resources, instance=instance)
        assert result.success
        logged = [
            r.event_log_entry.user_message
            for r in instance.get_records_for_run(result.run_id).records
        ]
    meta = run_meta(result, "yahoo_daily_bars")
    assert meta["stale_count"] == 1
    assert "| AAPL | 2024-07-10 | 2024-07-12 |" in meta["stale_symbols"]
    assert any("yahoo AAPL: stale: newest bar 2024-07-10" in m for m in logged)


def test_yahoo_bars_and_corporate_actions_materialize_alone(resources, lake):
    from ingest_platform.market.assets import yahoo_daily_bars

    tags = {
        "dagster/asset_partition_range_start": "2024-06-03",
        "dagster/asset_partition_range_end": "2024-06-14",
    }
    config = {"ops": {"yahoo_daily_bars": {"config": {"symbols": ["NVDA", "AAPL"]}}}}
    bars_only = materialize(
        [yahoo_daily_bars], selection=["yahoo_daily_bars"], resources=resources, tags=tags,
        run_config=config,
    )  # fmt: skip
    assert bars_only.success
    assert lake.partition_keys("corporate_actions") == []
    assert len(lake.read("yahoo_daily_bars")) == 20

    actions_only = materialize(
        [yahoo_daily_bars], selection=["corporate_actions"], resources=resources, tags=tags,
        run_config=config,
    )  # fmt: skip
    assert actions_only.success
    actions = lake.read("corporate_actions")
    assert actions.query("symbol == 'NVDA' and action == 'split'")["value"].tolist() == [10.0]
    assert {
        e.materialization.asset_key.to_user_string()
        for e in actions_only.get_asset_materialization_events()
    } == {"corporate_actions"}
