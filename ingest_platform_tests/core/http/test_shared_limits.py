"""Rate limits kept in the shared store: one window for every process, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing
import time

import pytest

from ingest_platform.core.http import (
    BudgetUnavailable,
    RateLimited,
    SharedRateLimiter,
    shared_rate_limiter,
)

CALLS, PERIOD = 5, 0.5  # five calls per half second
DRAWS = 12  # per process: 24 in all, so at least four full windows


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> str:
    """A fresh store per test: a SQLite file, or a throwaway PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "state.sqlite")
    return request.getfixturevalue("postgres_url")


def _draw(location: str, start, granted) -> None:
    """One worker process: wait for the start signal, then take DRAWS slots back to back,
    reporting when it asked and when it was granted (a loaded machine may deschedule it
    between the grant and the clock reading: the grant lies somewhere in between)."""
    limiter = shared_rate_limiter("polygon", [(CALLS, PERIOD)], location)
    start.wait(30)
    for _ in range(DRAWS):
        asked = time.time()
        limiter.acquire()
        granted.put((asked, time.time()))


def busiest_window(stamps: list[float], seconds: float) -> int:
    """The most stamps in any half-open window [t, t + seconds) starting at a stamp."""
    ordered = sorted(stamps)
    most, first = 0, 0
    for last, stamp in enumerate(ordered):
        while stamp - ordered[first] >= seconds:
            first += 1
        most = max(most, last - first + 1)
    return most


def surely_within(spans: list[tuple[float, float]], seconds: float) -> int:
    """The most grants that certainly fell in one window [t, t + seconds): a grant happened
    between its ask and its reading, so it certainly falls in the window only when both do."""
    return max(
        sum(1 for asked, read in spans if start <= asked and read < start + seconds)
        for start, _ in spans
    )


def test_busiest_window_counts_a_sliding_window():
    assert busiest_window([0.0, 0.1, 0.2, 1.05, 1.1], 1.0) == 3
    assert busiest_window([0.0, 0.5, 0.99, 1.0], 1.0) == 3
    assert surely_within([(0.0, 0.01), (0.1, 0.11), (0.2, 1.2)], 1.0) == 2


@pytest.mark.slow
def test_two_processes_share_one_rate_limit(store):
    context = multiprocessing.get_context("spawn")
    start, granted = context.Event(), context.Queue()
    workers = [context.Process(target=_draw, args=(store, start, granted)) for _ in range(2)]
    for worker in workers:
        worker.start()
    time.sleep(0.5)  # let both import and reach the start line
    began = time.time()
    start.set()
    spans = [granted.get(timeout=60) for _ in range(2 * DRAWS)]
    for worker in workers:
        worker.join(30)
        assert worker.exitcode == 0
    assert len(spans) == 2 * DRAWS
    # Never more than CALLS in any window, although each process alone would have sent two
    # windows' worth at once: the slots were shared.
    assert surely_within(spans, PERIOD) <= CALLS
    # …and the limit is a limit, not a stall: 24 calls at 5 per 0.5 s take about 2 s.
    assert time.time() - began < 2 * DRAWS / CALLS * PERIOD + 3


def test_a_wait_beyond_max_wait_fails_fast_naming_the_limit(store):
    limiter = SharedRateLimiter("alpha_vantage", [(1, 3600.0)], store, max_wait=5)
    assert limiter.acquire() == 0
    with pytest.raises(RateLimited, match=r"1/3600s would need a 3600 s wait"):
        SharedRateLimiter("alpha_vantage", [(1, 3600.0)], store, max_wait=5).acquire()


def test_a_rate_limit_store_deleted_mid_run_is_recreated(tmp_path):
    path = tmp_path / "budgets" / "state.sqlite"
    limiter = SharedRateLimiter("polygon", [(100, 60.0)], path)
    limiter.acquire()
    path.unlink()
    assert limiter.acquire() == 0  # no "no such table: rate_limit_source"
    assert path.is_file()


def test_an_unusable_store_is_named_in_the_error(tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the store's folder should be")
    with pytest.raises(BudgetUnavailable, match=r"rate limit store sqlite:///.*not_a_folder"):
        SharedRateLimiter("polygon", [(1, 1.0)], blocker / "state.sqlite").acquire()
