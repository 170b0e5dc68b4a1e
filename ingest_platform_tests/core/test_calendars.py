"""Built calendars kept on disk: the next process loads the same calendar, never a stale one."""

from __future__ import annotations

import datetime as dt

import exchange_calendars as xcals
import pytest

from ingest_platform.core import calendars


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(tmp_path))
    calendars.exchange_calendar.cache_clear()
    yield calendars.calendar_cache_dir()
    calendars.exchange_calendar.cache_clear()


def test_a_built_calendar_is_kept_and_the_next_process_reads_it(cache, monkeypatch):
    first = calendars.sessions("2025-01-02", "2025-01-31", "XNYS")
    files = list(cache.glob("XNYS__*.pickle"))
    assert len(files) == 1 and xcals.__version__ in files[0].name
    calendars.exchange_calendar.cache_clear()  # a new process: only the disk remembers

    def never(*args, **kwargs):
        raise AssertionError("built again though the cache holds it")

    monkeypatch.setattr(calendars.xcals, "get_calendar", never)
    again = calendars.sessions("2025-01-02", "2025-01-31", "XNYS")
    assert again == first
    assert dt.date(2025, 1, 9) not in again  # the ad-hoc closure survives the round trip


def test_a_calendar_for_another_window_replaces_the_old_file(cache):
    calendars._on_disk("CMES", "2000-01-03", "2027-01-01")
    calendars._on_disk("CMES", "2000-01-03", "2027-01-02")
    names = sorted(p.name for p in cache.glob("CMES__*.pickle"))
    assert names == [f"CMES__2000-01-03__2027-01-02__xcals-{xcals.__version__}.pickle"]


def test_an_unreadable_file_is_rebuilt_over(cache):
    calendars.sessions("2025-01-02", "2025-01-03", "24/5")
    (path,) = cache.glob("24_5__*.pickle")
    path.write_bytes(b"torn")
    calendars.exchange_calendar.cache_clear()
    assert calendars.sessions("2025-01-02", "2025-01-03", "24/5") == [
        dt.date(2025, 1, 2),
        dt.date(2025, 1, 3),
    ]
    assert path.read_bytes() != b"torn"


def test_a_folder_that_cannot_be_written_costs_only_the_build(tmp_path, monkeypatch):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    monkeypatch.setenv("INGEST_PLATFORM_DATA_DIR", str(blocker))
    calendars.exchange_calendar.cache_clear()
    try:
        assert calendars.is_session("2025-01-02", "XNYS")
    finally:
        calendars.exchange_calendar.cache_clear()
