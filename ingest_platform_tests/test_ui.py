"""The Dagster UI, driven in a real browser: the graph loads and Materialize works.

`dagster dev` runs from the repository's workspace.yaml on a copy of its dagster.yaml (SQLite,
queued run coordinator) with the sandbox as every source, so clicking Materialize goes through
the daemon exactly as a user's click does. Chromium comes from Debian (`apt-get install
chromium`); a missing browser fails the test rather than skipping it. Screenshots land in
``test-artifacts/`` (git-ignored) for whoever reads a failed CI run.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from dagster import AssetKey, DagsterInstance, DagsterRun, DagsterRunStatus, RunsFilter

from ingest_platform.core.partitions import closed_partition_keys, market_day, market_day_partitions
from ingest_platform.core.settings import project_root
from ingest_platform.sandbox import Sandbox

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = project_root() / "test-artifacts"
#: Keys the sandbox accepts; the sources read them from the environment, as in production.
SANDBOX_KEYS = {
    k: "ui-test-key" for k in ("ALPHA_VANTAGE_API_KEY", "POLYGON_API_KEY", "FRED_API_KEY")
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: apt-get install chromium"
    home = tmp_path_factory.mktemp("ui-home")
    shutil.copy(project_root() / "dagster.yaml", home / "dagster.yaml")
    port = _free_port()
    sandbox = Sandbox()  # as of today: the UI's partition list runs on the real clock
    sandbox.start()
    env = {
        **os.environ,
        **SANDBOX_KEYS,
        **sandbox.env(),
        "DAGSTER_HOME": str(home),
        "INGEST_PLATFORM_DATA_DIR": str(home / "data"),
    }
    env.pop("INGEST_PLATFORM_NOW", None)
    dagster = Path(sys.executable).parent / "dagster"
    proc = subprocess.Popen(
        [
            str(dagster),
            "dev",
            "-w",
            str(project_root() / "workspace.yaml"),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=home,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(home / "dev.log", "w"),  # noqa: SIM115 - closed with the process
        start_new_session=True,  # webserver, daemon and code server share one process group
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert proc.poll() is None, (home / "dev.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("dagster dev did not start within 120 s")
        yield url, home
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        sandbox.stop()


@pytest.fixture
def page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            # Tall enough that the catalog's virtualised list renders every asset row at once.
            yield browser.new_page(viewport={"width": 1400, "height": 4000})
        finally:
            browser.close()


def _dismiss_welcome(page) -> None:
    """Close whatever dialog the UI opens on a fresh instance (welcome, what's new, ...).

    Dialogs can appear a moment after the page settles, so this keeps looking for a few
    seconds and closes each one it sees; a backdrop left open would swallow every click.
    """
    backdrop = page.locator(".bp5-overlay-backdrop")
    quiet_since = time.monotonic()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and time.monotonic() - quiet_since < 2:
        if backdrop.count() and backdrop.first.is_visible():
            for name in ("Skip", "Close", "Dismiss", "Got it", "Done"):
                button = page.get_by_role("button", name=name)
                if button.count() and button.first.is_visible():
                    button.first.click()
                    break
            else:
                page.keyboard.press("Escape")
            quiet_since = time.monotonic()
        page.wait_for_timeout(200)


def _wait_for_run(home: Path, asset: str, partition: str) -> DagsterRun:
    """The run of `asset`'s `partition` once it has finished (the warehouse's automation may
    launch runs of its own meanwhile, so the newest run is not necessarily ours)."""
    done = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
    with DagsterInstance.from_config(str(home)) as instance:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            runs = instance.get_runs(filters=RunsFilter(tags={"dagster/partition": partition}))
            mine = [r for r in runs if AssetKey(asset) in (r.asset_selection or ())]
            if mine and mine[0].status in done:
                return mine[0]
            time.sleep(1)
    pytest.fail(f"no finished run of {asset} {partition} within 180 s")


def test_the_catalog_shows_every_dataset(dagster_ui, page):
    url, _ = dagster_ui
    page.goto(f"{url}/assets", wait_until="networkidle")
    _dismiss_welcome(page)
    for asset in (
        "instruments",
        "trading_sessions",
        "yahoo_daily_bars",
        "market_bars",
        "kraken_order_book_stream",
        "economic_indicators",
        "variable_mappings",
        "dataset_metadata",
    ):
        # Long names are middle-truncated on screen; the link to the asset is what is stable.
        page.locator(f'a[href$="/assets/{asset}"]').first.wait_for(timeout=30_000)


def test_materialize_in_the_ui_runs_through_the_daemon_into_the_lake(dagster_ui, page, monkeypatch):
    url, home = dagster_ui
    monkeypatch.chdir(home)  # the instance config's storage paths are relative to its folder
    page.goto(f"{url}/assets/instruments", wait_until="networkidle")
    _dismiss_welcome(page)
    page.get_by_text("Materialize", exact=True).first.click()
    page.get_by_text("Launched run").wait_for(timeout=30_000)

    with DagsterInstance.from_config(str(home)) as instance:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            runs = instance.get_runs(limit=1)
            if runs and runs[0].status in (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE):
                break
            time.sleep(1)
        assert runs and runs[0].status == DagsterRunStatus.SUCCESS, runs
        assert runs[0].asset_selection and {
            k.to_user_string() for k in runs[0].asset_selection
        } == {"instruments"}
        latest = instance.get_latest_materialization_event(AssetKey("instruments"))
        reported = latest.asset_materialization.metadata["dagster/row_count"].value
    written = pq.read_metadata(home / "data" / "lake" / "instruments" / "all.parquet").num_rows
    assert reported == written > 500  # the S&P 500 constituents alone are ~500 rows


def test_materialize_one_partition_of_a_market_asset_and_read_its_checks(
    dagster_ui, page, monkeypatch
):
    """Materialize… on yahoo_daily_bars: pick one partition in the launch dialog, launch, and
    read the run's outcome and the asset's check results on its Checks tab."""
    url, home = dagster_ui
    monkeypatch.chdir(home)
    ARTIFACTS.mkdir(exist_ok=True)
    if not (home / "data" / "lake" / "instruments" / "all.parquet").exists():
        test_materialize_in_the_ui_runs_through_the_daemon_into_the_lake(
            dagster_ui, page, monkeypatch
        )
    if not (home / "data" / "lake" / "index_membership" / "all.parquet").exists():
        # The market assets read each day's members: without them the launch dialog first
        # warns of an upstream never materialized. Materialized through the CLI, same instance.
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "INGEST_PLATFORM_DATA_DIR": str(home / "data"),
        }
        dagster = Path(sys.executable).parent / "dagster"
        subprocess.run(
            [str(dagster), "asset", "materialize", "-m", "ingest_platform.definitions",
             "--select", "index_membership"],
            env=env, cwd=home, check=True, capture_output=True, timeout=300,
        )  # fmt: skip
    # the newest weekday partition whose window has closed and that New York traded
    closed = closed_partition_keys(market_day_partitions, dt.datetime.now(dt.UTC))
    partition = next(k for k in reversed(closed) if not market_day(k).market_closed)

    page.goto(f"{url}/assets/yahoo_daily_bars", wait_until="networkidle")
    _dismiss_welcome(page)
    page.locator("button", has_text="Materialize").first.click()  # "Materialize…": partitioned
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Partition selection").wait_for(timeout=30_000)
    box = dialog.locator("input[type=text], input:not([type])").first
    box.fill(partition)
    box.press("Enter")
    dialog.get_by_text("1 partition", exact=True).wait_for(timeout=10_000)
    page.get_by_role("button", name="Launch 1 run").click()
    page.get_by_text("Launched run").wait_for(timeout=30_000)

    run = _wait_for_run(home, "yahoo_daily_bars", partition)
    assert run.status == DagsterRunStatus.SUCCESS, run
    assert (home / "data" / "lake" / "yahoo_daily_bars").is_dir()

    # the UI shows the run succeeded ...
    page.goto(f"{url}/runs/{run.run_id}", wait_until="networkidle")
    page.get_by_text("Success", exact=True).first.wait_for(timeout=30_000)
    # ... and each check's result on the asset's Checks tab
    page.goto(f"{url}/assets/yahoo_daily_bars?view=checks", wait_until="networkidle")
    checks = (
        "bar_anomalies",
        "bar_coverage",
        "fetch_failure_rate",
        "partitions_present",
        "source_duplicates",
    )
    for check in checks:
        page.get_by_text(check, exact=True).first.wait_for(timeout=30_000)
    page.get_by_text("Passed", exact=True).first.wait_for(timeout=30_000)
    page.screenshot(path=str(ARTIFACTS / "ui-yahoo-daily-bars-checks.png"), full_page=True)
    body = page.locator("body").inner_text()
    assert "Not evaluated" not in body and "Execution failed" not in body, body[:2000]
    # the list beside the checks says each one's last evaluation succeeded; the open one, Passed
    assert body.count("Succeeded") == len(checks), body[:2000]
